"""Just enough HTTP over WSGI for the dashboard: a parsed request and a response to start."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode

# Dashboard forms carry a few short fields; anything bigger is not ours.
MAX_FORM_BYTES = 64 * 1024

# No script anywhere: the pages are plain forms (a <meta> refresh keeps the overview live), so none may run.
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
# An email's HTML preview may show its inline images, nothing else.
PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; sandbox"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class Request:
    """The parts of a WSGI environ the dashboard reads."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    form: dict[str, str]
    address: str
    query_string: str = ""
    form_lists: dict[str, list[str]] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The path with its query string, as a sign-in returns to it."""
        return self.path + ("?" + self.query_string if self.query_string else "")

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        cookie = SimpleCookie()
        form = parse_qs(_read_form(environ), keep_blank_values=True) if method == "POST" else {}
        try:
            cookie.load(environ.get("HTTP_COOKIE", ""))
        except CookieError:  # a malformed cookie header is treated as no cookies at all
            cookie = SimpleCookie()
        return cls(
            method=method,
            path=environ.get("PATH_INFO", "") or "/",
            query=_single(environ.get("QUERY_STRING", "")),
            headers=headers,
            cookies={k: m.value for k, m in cookie.items()},
            form={k: v[0] for k, v in form.items()},
            form_lists=form,
            query_string=environ.get("QUERY_STRING", ""),
            # The peer's address, never X-Forwarded-For: a client-written header cannot pick its own throttle.
            address=environ.get("REMOTE_ADDR", "") or "unknown",
        )


def _single(raw: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _read_form(environ: dict[str, Any]) -> str:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 or length > MAX_FORM_BYTES:
        return ""
    return environ["wsgi.input"].read(length).decode("utf-8", "replace")


@dataclass
class Response:
    """A status, headers and a body; bodies are small enough to build in memory."""

    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    csp: str = CSP

    def __call__(self, start_response: StartResponse) -> Iterable[bytes]:
        phrase = HTTPStatus(self.status).phrase
        headers = [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", "no-store"),
            ("X-Frame-Options", "DENY"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("Content-Security-Policy", self.csp),
            # No script anywhere: the pages are plain forms, so none is allowed to run.
            *self.headers,
        ]
        start_response(f"{self.status} {phrase}", headers)
        return [self.body]


def text(status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, body.encode(), content_type)


def redirect(location: str, **query: str) -> Response:
    target = f"{location}?{urlencode(query)}" if query else location
    return Response(303, b"", headers=[("Location", target)])
