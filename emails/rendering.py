"""Rendering an outbox row's kind and context into subject, text and HTML, from templates/<kind>/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    Undefined,
    select_autoescape,
)
from markupsafe import Markup

from tasks.domain.money import format_money

TEMPLATES = Path(__file__).resolve().parent / "templates"
# What a template shows when the seller's colour is not a plain hex colour (the column is checked too).
DEFAULT_BRAND_COLOR = "#1f6feb"
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class UnknownEmailKind(LookupError):
    """An outbox row whose kind has no templates."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(kind: str, context: dict[str, Any]) -> RenderedEmail:
    """Subject (one line), text and HTML for this kind; a missing context value raises UndefinedError."""
    if not _is_kind_name(kind):
        raise UnknownEmailKind(f"no email templates for kind {kind!r}")
    env = _environment()
    try:
        parts = [env.get_template(f"{kind}/{name}") for name in ("subject.txt", "body.txt", "body.html")]
    except TemplateNotFound as missing:
        raise UnknownEmailKind(f"no email templates for kind {kind!r} ({missing.name})") from None
    subject, text, html = (template.render(**context) for template in parts)
    return RenderedEmail(" ".join(subject.split()), _tidy_text(text), html)


def render_page(name: str, context: dict[str, Any]) -> str:
    """A standalone HTML page from templates/<name>/<name>.html (a receipt), escaped like the emails."""
    if not _is_kind_name(name):
        raise UnknownEmailKind(f"no page template {name!r}")
    return _environment().get_template(f"{name}/{name}.html").render(**context)


def money(amount_minor: int, currency: str) -> str:
    """Jinja filter: `{{ amount_minor|money(currency) }}`."""
    return format_money(_defined(amount_minor), _defined(currency))


def long_date(value: Any) -> str:
    """Jinja filter: "November 22, 2026" from a date, an ISO string or a Unix timestamp; "" for None."""
    if _defined(value) is None or value == "":
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    return f"{value:%B} {value.day}, {value.year}"


def brand_color(value: Any) -> str:
    """Jinja filter: the seller's colour if it is a #rrggbb colour, so it can never break out of a style."""
    return value if isinstance(value, str) and _HEX_COLOR.match(value) else DEFAULT_BRAND_COLOR


def http_url(value: Any) -> str:
    """Jinja filter: the URL if it is http(s), else "" (no javascript: or data: in a src)."""
    return value if isinstance(value, str) and value.lower().startswith(("https://", "http://")) else ""


def css_string(value: Any) -> Markup:
    """Jinja filter: text for inside a CSS string ("..."), every character but letters, digits and spaces
    written as a CSS escape, so no quote, backslash or tag can end the string or the style. The space after
    each escape ends it and is not shown."""
    text = str(_defined(value))
    return Markup("".join(c if c.isalnum() and c.isascii() or c == " " else f"\\{ord(c):06x} " for c in text))


def method_label(method: dict[str, Any]) -> str:
    """Jinja filter: "Visa ending in 4242" or "STRIPE TEST BANK account ending in 6789"."""
    method = _defined(method)
    if not method.get("last4"):  # a payment made wholly from the account's credit
        return "account credit"
    if method.get("kind") == "us_bank_account":
        return f"{method.get('bank_name') or 'Bank'} account ending in {method['last4']}"
    return f"{(method.get('brand') or 'card').title()} ending in {method['last4']}"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        # HTML is escaped; plain text and subjects are not (they are never read as markup).
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        money=money,
        date=long_date,
        brand_color=brand_color,
        http_url=http_url,
        method_label=method_label,
        css_string=css_string,
    )
    return env


def _defined(value: Any) -> Any:
    """Filters receive an Undefined instead of failing; make them fail like StrictUndefined does."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


def _is_kind_name(kind: str) -> bool:
    return bool(re.fullmatch(r"[a-z][a-z_]*", kind or ""))


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, and none at either end."""
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines())).strip() + "\n"
