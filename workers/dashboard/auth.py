"""Who may look: named operators' tokens as Bearer header or session cookie, CSRF tokens, a guess throttle."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from workers.dashboard.http import Request
from workers.settings import Operator

COOKIE_NAME = "remit_dashboard"
# An ops shift; after that the browser asks for the token again.
SESSION_SECONDS = 12 * 3600
# Someone mistyping the token gets a few tries a minute; a guesser from one address gets no more.
FAILURES_PER_ADDRESS = 5
# Guesses spread over many addresses: under one a second overall, hopeless against 16+ characters.
FAILURES_OVERALL = 50
# The window both limits count in; Retry-After is what is left of it.
THROTTLE_WINDOW_SECONDS = 60

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """A signed-in operator and what they came with: a session cookie, or "bearer" for a header."""

    operator: Operator
    credential: str

    @property
    def bearer(self) -> bool:
        return self.credential == "bearer"

    @property
    def key(self) -> str:
        """What the CSRF token is bound to: the session, or the operator for a Bearer header."""
        return f"bearer:{self.operator.name}" if self.bearer else self.credential


class Auth:
    """Checks credentials against the operators' tokens; every comparison constant-time, every session
    server-side, naming its operator."""

    def __init__(self, operators: Sequence[Operator], state, clock=time.time) -> None:
        self._operators = {o.name: o for o in operators}
        # Cookies and CSRF tokens are signed with every token: changing any of them signs everyone out.
        self._key = hashlib.sha256("\0".join(sorted(o.token for o in operators)).encode()).digest()
        self._state = state
        self._clock = clock

    def operator_for(self, candidate: str) -> Operator | None:
        """The operator whose token this is; every token is compared, so timing tells nothing."""
        found = None
        for operator in self._operators.values():
            if hmac.compare_digest(_digest(operator.token), _digest(candidate)):
                found = operator
        return found

    def new_session(self, operator: Operator) -> str:
        """A cookie value: issue time, a random session id recorded in the state, and an HMAC of both."""
        issued, session_id = str(int(self._clock())), secrets.token_hex(16)
        self._state.open_session(session_id, SESSION_SECONDS, operator.name)
        return f"{issued}.{session_id}.{self._sign(f'session|{issued}|{session_id}')}"

    def end_session(self, subject: Subject) -> None:
        """Forget the session, so its cookie stops working wherever it was copied to."""
        if not subject.bearer:
            self._state.close_session(subject.credential.split(".")[1])

    @staticmethod
    def bearer(request: Request) -> str | None:
        """The token an `Authorization: Bearer` header offers, or None without one."""
        header = request.headers.get("authorization", "")
        return header[7:].strip() if header[:7].lower() == "bearer " else None

    def session(self, request: Request) -> Subject | None:
        """The operator of a live session cookie, or None."""
        cookie = request.cookies.get(COOKIE_NAME, "")
        operator = self._session_operator(cookie)
        return Subject(operator, cookie) if operator else None

    def csrf_token(self, subject: Subject) -> str:
        return self._sign("csrf|" + subject.key)

    def csrf_valid(self, subject: Subject, candidate: str) -> bool:
        return hmac.compare_digest(self.csrf_token(subject), candidate or "")

    def _session_operator(self, cookie: str) -> Operator | None:
        issued, session_id, signature = (cookie.split(".") + ["", ""])[:3]
        if not (issued.isascii() and issued.isdigit()) or not hmac.compare_digest(
            self._sign(f"session|{issued}|{session_id}"), signature
        ):
            return None
        if not 0 <= self._clock() - int(issued) < SESSION_SECONDS:
            return None
        try:
            name = self._state.session_operator(session_id)
        except RedisError:  # no Redis, no sessions: Bearer still works
            log.warning("dashboard: Redis did not answer; session cookies are refused until it does")
            return None
        return self._operators.get(name or "")  # an operator removed from the settings is signed out

    def _sign(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()


def _digest(value: str) -> bytes:
    # Comparing fixed-length digests keeps even a token's length out of the timing.
    return hashlib.sha256(value.encode()).digest()


class Throttle:
    """Counts failed sign-ins per client address and overall; past a limit nothing is even compared."""

    def __init__(self, state) -> None:
        self._state = state

    def wait_seconds(self, address: str) -> int:
        """Seconds until this address may try a token again; 0 when it may now."""
        try:
            for name, limit in ((f"signin:{address}", FAILURES_PER_ADDRESS), ("signin", FAILURES_OVERALL)):
                failures, left = self._state.counted(name)
                if failures >= limit:
                    return left
        except RedisError:  # ops must still get in during a Redis outage; the token is still required
            log.warning("dashboard: Redis did not answer; sign-in attempts are not throttled")
        return 0

    def failed(self, address: str) -> None:
        try:
            for name in (f"signin:{address}", "signin"):
                self._state.count(name, THROTTLE_WINDOW_SECONDS)
        except RedisError:  # as above
            log.warning("dashboard: Redis did not answer; a failed sign-in was not counted")


def session_cookie(value: str, *, secure: bool, max_age: int = SESSION_SECONDS) -> str:
    """A Set-Cookie value the browser keeps from scripts and never sends from other sites."""
    flags = f"Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return f"{COOKIE_NAME}={value}; {flags}" + ("; Secure" if secure else "")
