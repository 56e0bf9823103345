"""The `/v1` request pipeline: auth, rate limit, faults, idempotency, then the handler under the lock."""

import base64
import json
import re
from dataclasses import dataclass, field

from . import errors, routes
from .forms import parse_form
from .ids import new_id
from .state import API_VERSION, Call

_KEYED_METHODS = ("POST", "DELETE")
# What Stripe.js may do with a publishable key and a client secret; anything else needs a secret key.
_PUBLISHABLE_CALLS = (
    ("GET", re.compile(r"^/v1/payment_intents/[A-Za-z0-9_]+$")),
    ("POST", re.compile(r"^/v1/payment_intents/[A-Za-z0-9_]+/confirm$")),
)


@dataclass
class Response:
    """What the HTTP layer writes, or `drop` to close the socket without answering."""

    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    drop: bool = False


def process(emu, method, path, query, body, headers):
    """Answer one API request."""
    record = emu._log_request(method, path, headers.get("Idempotency-Key"))
    response = _process(emu, method, path, query, body, headers, record)
    record["status"] = None if response.drop else response.status
    return response


def _process(emu, method, path, query, body, headers, record):
    request_id = new_id("req")
    try:
        publishable = _authenticate(emu, headers.get("Authorization"))
        if publishable:
            _check_publishable(method, path)
        params = parse_form(body.decode() if method == "POST" else query)
    except errors.StripeError as exc:
        return _error_response(exc, request_id)
    key = headers.get("Idempotency-Key") if method in _KEYED_METHODS else None
    with emu.lock:
        early = _admit(emu, method, path, params, key, request_id, record)
    if early is not None:
        return early
    if record["fault"] == "hang" and not emu._hang():
        _abandon(emu, key)
        return Response(0, drop=True)
    response = _execute(emu, Call(method, path, params, (), request_id, key, publishable), record["fault"])
    return Response(0, drop=True) if record["fault"] == "drop_after_commit" else response


def _authenticate(emu, header):
    if not header:
        raise errors.StripeError(
            401, "invalid_request_error", "You did not provide an API key.", stored=False
        )
    token = header.split(" ", 1)[-1].strip()
    if header.lower().startswith("basic "):
        token = base64.b64decode(token).decode().split(":", 1)[0]
    if token.startswith("pk_test_"):
        return True
    valid = token == emu.api_key if emu.api_key else token.startswith(("sk_test_", "rk_test_"))
    if not valid:
        masked = token[:8] + "*" * max(0, len(token) - 12) + token[-4:]
        raise errors.StripeError(
            401, "invalid_request_error", f"Invalid API Key provided: {masked}", stored=False
        )
    return False


def _check_publishable(method, path):
    if not any(method == allowed and pattern.match(path) for allowed, pattern in _PUBLISHABLE_CALLS):
        raise errors.StripeError(
            401,
            "invalid_request_error",
            "This API call cannot be made with a publishable API key. Please use a secret API key. "
            "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.",
            stored=False,
        )


def _admit(emu, method, path, params, key, request_id, record):
    """An early answer (rate limit, fault, unknown URL, replay, conflict), or None to run the handler."""
    try:
        if not emu._rate.allow(routes.endpoint(method, path)):
            raise errors.rate_limited()
        record["fault"] = emu._faults.take(method, path)
        _raise_injected(record["fault"])
        routes.route(method, path)
        if key is None:
            return None
        stored = emu._keys.begin(key, method, path, params, request_id, emu.clock.time())
    except errors.StripeError as exc:
        return _error_response(exc, request_id)
    if stored is None:
        return None
    record["replayed"] = True
    headers = dict(
        stored.headers,
        **{
            "Request-Id": request_id,
            "Idempotent-Replayed": "true",
            "Original-Request": stored.request_id,
            "Idempotency-Key": key,
        },
    )
    return Response(stored.status, stored.body, headers)


def _raise_injected(fault):
    if fault == "500":
        raise errors.api_error()
    if fault == "429":
        raise errors.rate_limited()
    if fault == "429_retry":
        raise errors.rate_limited("lock_timeout", retry=True)


def _execute(emu, call, fault=None):
    with emu.lock:
        emu.state.call = call
        try:
            if fault == "500_stored":  # the endpoint started and failed having done nothing: kept for the key
                raise errors.api_error(stored=True)
            handler, call.args = routes.route(call.method, call.path)
            response, stored = _json_response(200, handler(emu.state, call), call.request_id), True
        except errors.StripeError as exc:
            response, stored = _error_response(exc, call.request_id), exc.stored
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer like Stripe's 500
            emu.crashes.append(repr(exc))
            response, stored = (
                _error_response(errors.api_error(f"Emulator error: {exc!r}"), call.request_id),
                True,
            )
        finally:
            emu.state.call = None
        if call.idempotency_key:
            response.headers["Idempotency-Key"] = call.idempotency_key
            response.headers["Original-Request"] = call.request_id
            _store_or_abandon(emu, call.idempotency_key, response, stored)
        return response


def _store_or_abandon(emu, key, response, stored):
    if stored:
        kept = {k: v for k, v in response.headers.items() if k not in ("Request-Id",)}
        emu._keys.finish(key, response.status, response.body, kept)
    else:
        emu._keys.abandon(key)


def _abandon(emu, key):
    if key:
        with emu.lock:
            emu._keys.abandon(key)


def _json_response(status, payload, request_id, extra=None):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Request-Id": request_id, "Stripe-Version": API_VERSION}
    headers.update(extra or {})
    return Response(status, body, headers)


def _error_response(exc, request_id):
    return _json_response(exc.status, exc.body(), request_id, exc.headers)
