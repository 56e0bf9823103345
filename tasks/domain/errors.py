"""Remit's exceptions: refusals for the web tier, and the three kinds of failure in workers."""

from __future__ import annotations

# A refusal's message is for a person; whatever a caller sent, it never grows past this.
MAX_MESSAGE_LENGTH = 500


class RemitError(Exception):
    """A refusal the web tier shows to a person: a stable code and a readable message.

    The message is cut at MAX_MESSAGE_LENGTH, so no input is ever echoed back unbounded.
    """

    def __init__(self, code: str, message: str):
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"RemitError({self.code!r}, {self.message!r})"


class TransientError(Exception):
    """Something outside us failed in a way that may work later: retry with backoff."""


class StripeUnavailable(TransientError):
    """Stripe did not give a definite answer (network, timeout, 5xx, 409, 429)."""


class StripeRefused(Exception):
    """Stripe refused the request as invalid (4xx other than a decline): a bug or a stale reference."""

    def __init__(self, code: str | None, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code or "invalid_request"
        self.message = message
        self.status = status


class StripeMisconfigured(Exception):
    """Stripe refused our credentials or our idempotency key: someone must look."""


class SignatureInvalid(Exception):
    """A webhook body whose signature does not verify against any configured secret."""
