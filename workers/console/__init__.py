"""The operations console: server-rendered pages at `/console` to see the fleet and fix what failed.

`make_console(runtime)` (app.py) builds it; one module per page family; templates/ and static/
hold the Jinja2 templates, the stylesheet and the one small script (no front-end build).
"""
