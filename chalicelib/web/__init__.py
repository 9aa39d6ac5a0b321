"""Jinja2 templates (autoescape on) for the H5 pages and the console page."""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

_HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context) -> str:
    return _env.get_template(template).render(**context)


def static_text(name: str) -> str:
    return (_HERE / "static" / name).read_text(encoding="utf-8")
