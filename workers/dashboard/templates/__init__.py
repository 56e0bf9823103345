"""The dashboard's Jinja2 templates (HTML autoescaped, undefined names are errors) and their filters.

A package, so the *.html beside this file ship with it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tasks.domain.money import format_money


def age(seconds: float | None) -> str:
    """A duration as ops read it at a glance: "42s", "3m 10s", "2h 5m", "4d 3h"."""
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def since(then: datetime | None, now: datetime) -> str:
    return age((now - then).total_seconds()) if then else "–"


def stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z") if value else "–"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def first_line(value: str | None) -> str:
    """The first non-empty line: an error's summary, whatever follows it (SQL, a traceback)."""
    lines = (value or "").strip().splitlines()
    return lines[0] if lines else ""


def last_line(value: str | None) -> str:
    lines = (value or "").strip().splitlines()
    return lines[-1] if lines else ""


_env = Environment(
    loader=PackageLoader("workers.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    age=age, money=format_money, stamp=stamp, json=pretty_json, first_line=first_line, last_line=last_line
)
_env.globals.update(since=since)


def render(name: str, **context: Any) -> str:
    return _env.get_template(name).render(**context)
