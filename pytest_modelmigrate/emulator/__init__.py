"""A local emulator of the OpenAI and Anthropic HTTP APIs, driven by a script of per-model rules.

    from pytest_modelmigrate.emulator import Emulator

    with Emulator("emulator.yaml", time_scale=0.01) as emu:
        client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x")
        client = anthropic.Anthropic(base_url=emu.url, api_key="x")

See ``docs/emulator.md`` for the script format.
"""

from __future__ import annotations

from .script import Script, ScriptError, load_script
from .server import Emulator, ServedRequest

__all__ = ["Emulator", "Script", "ScriptError", "ServedRequest", "load_script"]
