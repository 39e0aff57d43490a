"""Tickets the prompt tests share."""

DOUBLE_CHARGE = (
    "Hi, I'm dana@example.com. Order A-1042: I was charged twice for an Acme Router X2. "
    "Please refund one charge today."
)
OUTAGE = (
    "Acme Drive has been down for our whole office since 9am, nobody can open files. "
    "This is urgent! -- ops@globex.example"
)
MULTI_ISSUE = (
    "Three things: (1) order A-2210 for an Acme Cam 4K arrived without its mount, (2) the app asks "
    "me to log in every hour, and (3) can the mount ship separately? Thanks, priya@example.org"
)
