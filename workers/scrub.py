"""What leaves a process about itself: URLs without their passwords, Sentry events without personal data.

Pure functions over strings and plain dicts, so a table test holds every rule.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
FILTERED = "[Filtered]"
# Query-string and conninfo keys that carry a credential (libpq takes ?password=, Redis ?password= too).
SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "pass", "secret", "token", "api_key", "apikey", "sslpassword"}
)
# Keys whose value is personal data or a whole body wherever they appear in an event: Remit's own column
# and context names, Stripe's billing details, and request parts that carry credentials.
PERSONAL_KEYS = frozenset(
    {
        "email", "billing_email", "support_email", "recipient", "reply_to", "to", "name", "customer_name",
        "account_name", "address", "line1", "line2", "city", "postal_code", "phone", "billing_details",
        "mandate_ip", "mandate_user_agent", "ip_address", "user_agent", "context", "payload", "body", "data",
        "text", "html", "routing_number", "account_number", "params", "parameters", "cookies", "cookie",
        "authorization", "stripe-signature",
    }
)  # fmt: skip
# Sentry's own descriptions of the process: nothing personal, and "name" there is a runtime's name.
SDK_CONTEXTS = frozenset({"os", "runtime", "device", "app", "trace", "otel", "culture"})

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_PAIR = re.compile(r"(?i)\b(" + "|".join(sorted(SECRET_KEYS)) + r")=([^&\s'\"]+)")
_EMAIL = re.compile(r"[^\s@'\"<>(),;:\[\]]+@[^\s@'\"<>(),;:\[\]]+\.[A-Za-z0-9-]+")
# SQLAlchemy appends the bound values to a DBAPI error; PostgreSQL's DETAIL repeats row values.
# SQLAlchemy prints them on a line of their own, whose repr may hold brackets: the whole line goes.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_ROW_VALUES = re.compile(r"(Key \([^)]*\)=|Failing row contains )\(.*?\)(?=\.?\s*(?:$|\n|\[))", re.MULTILINE)


def redact_url(url: str) -> str:
    """The URL with the password of its userinfo, and any credential in its query string, masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = "&".join(_redact_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    return parts._replace(netloc=netloc, query=query).geturl()


def _redact_pair(pair: str) -> str:
    key, equals, _ = pair.partition("=")
    return f"{key}={MASK}" if equals and unquote(key).lower() in SECRET_KEYS else pair


def scrub_text(text: str) -> str:
    """Free text (an error message, a log line) without credentials, URLs' passwords, emails or SQL values."""
    text = _URL.sub(lambda found: redact_url(found.group(0)), text)
    text = _SECRET_PAIR.sub(lambda found: f"{found.group(1)}={MASK}", text)
    text = _SQL_PARAMETERS.sub("[parameters: redacted]", text)
    text = _ROW_VALUES.sub(lambda found: f"{found.group(1)}(redacted)", text)
    return _EMAIL.sub("[email]", text)


def scrub_event(event: dict[str, Any], hint: object = None) -> dict[str, Any]:
    """Sentry's before_send: the event without local variables, bodies, personal fields or SQL values."""
    contexts = event.get("contexts") or {}
    scrubbed = {key: _scrub(value) for key, value in event.items() if key != "contexts"}
    scrubbed["contexts"] = {
        name: value if name in SDK_CONTEXTS else _scrub(value) for name, value in contexts.items()
    }
    if isinstance(event.get("user"), dict):
        scrubbed["user"] = {key: value for key, value in event["user"].items() if key == "id"}
    return scrubbed


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: FILTERED if str(key).lower() in PERSONAL_KEYS else _scrub(item)
            for key, item in value.items()
            if key != "vars"
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value
