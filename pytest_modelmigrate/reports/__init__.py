"""Renderers for a migration run: terminal, JSON (with its schema), Markdown, HTML."""
