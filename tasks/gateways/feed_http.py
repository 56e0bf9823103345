"""Posting a signed ledger event to a seller's endpoint: the answer's status code, or why there was none."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import requests

from tasks.domain.feed import SIGNATURE_HEADER

# An ERP that has not answered in this long is treated as down: the event is retried with backoff.
TIMEOUT_S = 10.0
# What of an error answer is kept on the delivery row for ops.
ERROR_EXCERPT_CHARS = 300
_local = threading.local()


@dataclass(frozen=True)
class Posted:
    status_code: int | None
    error: str | None


def post_event(url: str, body: bytes, signature: str) -> Posted:
    """POST body with its signature over a kept-alive connection; never raises for the receiver's fault."""
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature, "User-Agent": "Remit-Feed/1"}
    try:
        answer = _session().post(url, data=body, headers=headers, timeout=TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as exc:
        return Posted(None, f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT_CHARS])
    error = None if 200 <= answer.status_code < 300 else answer.text[:ERROR_EXCERPT_CHARS]
    return Posted(answer.status_code, error)


def _session() -> requests.Session:
    """One session per thread: requests.Session keeps connections alive but is not shared across threads."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session
