"""Jinja2 templates (autoescape on) for the H5 pages and the console page.

The environment is built on first render: console API calls render nothing, and Jinja2
would add ~35 ms to every cold start.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

_HERE = Path(__file__).parent


@functools.cache
def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader(_HERE / "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context) -> str:
    return _environment().get_template(template).render(**context)


def static_text(name: str) -> str:
    return (_HERE / "static" / name).read_text(encoding="utf-8")


ASSETS = {"console.css": "text/css; charset=utf-8", "h5.css": "text/css; charset=utf-8",
          "poster.css": "text/css; charset=utf-8", "poster.js": "text/javascript; charset=utf-8",
          "pay.css": "text/css; charset=utf-8", "pay.js": "text/javascript; charset=utf-8"}
"""The static files the pages load (no inline script or style: the pages' CSP forbids it)."""


def static_asset(name: str) -> tuple[str, str] | None:
    """(text, content type) of a served static file, or None for any other name."""
    if name not in ASSETS:
        return None
    return static_text(name), ASSETS[name]


CONSOLE_MODULES = _HERE / "static" / "console"
"""The console's native ES modules (no build step), served as /static/console/<name>.js."""
_MODULE_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}\.js")


def console_module(name: str) -> tuple[str, str] | None:
    """(text, content type) of one console module, or None: only a plain lower-case file name
    of that folder is served, so no path or dot-dot can reach any other file."""
    if not _MODULE_NAME.fullmatch(name) or not (CONSOLE_MODULES / name).is_file():
        return None
    return (CONSOLE_MODULES / name).read_text(encoding="utf-8"), "text/javascript; charset=utf-8"
