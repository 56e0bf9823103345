"""Stripe's idempotency layer: replay stored results, refuse reuse with other parameters, 409 in flight."""

from dataclasses import dataclass, field

from .errors import StripeError

# Stripe accepts keys up to this many characters.
MAX_KEY_LENGTH = 255
# Stripe prunes keys once they are at least 24 hours old.
DEFAULT_KEY_TTL_SECONDS = 24 * 3600


@dataclass
class Record:
    """What a key saw: the request's fingerprint and, once finished, its answer."""

    method: str
    path: str
    params: dict
    request_id: str
    created: float
    status: int | None = None
    body: bytes | None = None
    headers: dict = field(default_factory=dict)


class Keys:
    """Idempotency records by key; callers hold the emulator lock."""

    def __init__(self):
        self.records = {}
        self.ttl_seconds = DEFAULT_KEY_TTL_SECONDS

    def begin(self, key, method, path, params, request_id, now):
        """A finished Record to replay, or None after marking `key` in flight; raises on conflicts."""
        if len(key) > MAX_KEY_LENGTH:
            raise _error(
                400, "invalid_request_error", f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters."
            )
        record = self.records.get(key)
        if record is None:
            self.records[key] = Record(method, path, params, request_id, now)
            return None
        if (record.method, record.path) != (method, path):
            raise _error(
                400,
                "idempotency_error",
                (
                    "Keys for idempotent requests can only be used for the same endpoint they were first "
                    f"used for ('{record.method} {record.path}' vs '{method} {path}'). "
                    f"Try using a key other than '{key}' "
                    "if you meant to execute a different request."
                ),
            )
        if record.params != params:
            raise _error(
                400,
                "idempotency_error",
                (
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' "
                    "if you meant to execute a different request."
                ),
            )
        if record.status is None:
            raise _error(
                409,
                "idempotency_error",
                (
                    "There is currently another in-progress request using this idempotent key (that probably "
                    f"means you submitted twice, and the other request is still going through): {key}. "
                    "Please try again later."
                ),
                code="idempotency_key_in_use",
            )
        return record

    def finish(self, key, status, body, headers):
        """Store the answer of the request that holds `key`."""
        record = self.records.get(key)
        if record is not None:
            record.status, record.body, record.headers = status, body, dict(headers)

    def abandon(self, key):
        """Forget a key whose request ended without a result worth storing."""
        record = self.records.get(key)
        if record is not None and record.status is None:
            del self.records[key]

    def in_flight(self):
        """Keys whose first request is still running."""
        return [key for key, record in self.records.items() if record.status is None]

    def prune(self, now):
        """Drop finished keys older than the TTL; returns how many went."""
        old = [
            k for k, r in self.records.items() if r.status is not None and now - r.created >= self.ttl_seconds
        ]
        for key in old:
            del self.records[key]
        return len(old)


def _error(status, type_, message, code=None):
    return StripeError(status, type_, message, code=code, stored=False)
