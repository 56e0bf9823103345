"""Who may look: the DASHBOARD_TOKEN as a Bearer header or a signed session cookie, and CSRF tokens for POSTs."""

from __future__ import annotations

import hashlib
import hmac
import time

from workers.dashboard.http import Request

COOKIE_NAME = "remit_dashboard"
# An ops shift; after that the browser asks for the token again.
SESSION_SECONDS = 12 * 3600
BEARER_SUBJECT = "bearer"


class Auth:
    """Checks credentials against one token; every comparison is constant-time."""

    def __init__(self, token: str, clock=time.time) -> None:
        self._key = token.encode()
        self._clock = clock

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(_digest(self._key, "token"), _digest(candidate.encode(), "token"))

    def new_session(self) -> str:
        """A cookie value: its issue time and an HMAC of it under the token."""
        issued = str(int(self._clock()))
        return f"{issued}.{self._sign('session|' + issued)}"

    def subject(self, request: Request) -> str | None:
        """The authenticated session (cookie value or "bearer"), or None when the request carries neither."""
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return BEARER_SUBJECT if self.token_matches(header[7:].strip()) else None
        cookie = request.cookies.get(COOKIE_NAME, "")
        return cookie if self._session_valid(cookie) else None

    def csrf_token(self, subject: str) -> str:
        return self._sign("csrf|" + subject)

    def csrf_valid(self, subject: str, candidate: str) -> bool:
        return hmac.compare_digest(self.csrf_token(subject), candidate or "")

    def _session_valid(self, cookie: str) -> bool:
        issued, _, signature = cookie.partition(".")
        if not (issued.isascii() and issued.isdigit()) or not hmac.compare_digest(
            self._sign("session|" + issued), signature
        ):
            return False
        return 0 <= self._clock() - int(issued) < SESSION_SECONDS

    def _sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()


def _digest(key: bytes, message: str) -> bytes:
    # Comparing fixed-length digests keeps even the token's length out of the timing.
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def session_cookie(value: str, *, secure: bool, max_age: int = SESSION_SECONDS) -> str:
    """A Set-Cookie value the browser keeps from scripts and never sends from other sites."""
    flags = f"Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return f"{COOKIE_NAME}={value}; {flags}" + ("; Secure" if secure else "")
