"""The `/_emulator/...` JSON control API, so a demo or another process can drive the emulator."""

import json

from .api import Response

_LISTS = (
    "payment_intents",
    "customers",
    "charges",
    "refunds",
    "disputes",
    "setup_intents",
    "payment_methods",
    "events",
    "requests",
    "deliveries",
)
_SETTINGS = ("ach_settle_after_seconds", "key_ttl_seconds", "hang_seconds", "webhook_retry_delays")


def _advance(emu, body):
    fired = emu.advance(int(body.get("seconds", 0)))
    return {"now": emu.now(), "fired": fired}


def _settings(emu, body):
    for name in _SETTINGS:
        if name in body:
            setattr(emu, name, body[name])
    return {name: getattr(emu, name) for name in _SETTINGS}


_POSTS = {
    "reset": lambda emu, body: emu.reset(),
    "advance": _advance,
    "faults": lambda emu, body: emu.inject_fault(
        body["kind"], body.get("count", 1), body.get("path"), body.get("method", "POST")
    ),
    "faults/clear": lambda emu, body: emu.clear_faults(),
    "rate_limit": lambda emu, body: emu.set_rate_limit(
        body.get("requests_per_second"),
        body.get("endpoint_requests_per_second"),
        body.get("search_requests_per_second"),
        body.get("endpoints"),
    ),
    "webhook_endpoints": lambda emu, body: {
        "id": emu.add_webhook_endpoint(body["url"], body.get("secrets", []))
    },
    "webhook_options": lambda emu, body: emu.webhook_options(**body),
    "release_held": lambda emu, body: {"released": emu.release_held()},
    "drop_held": lambda emu, body: {"dropped": emu.drop_held()},
    "release_hangs": lambda emu, body: emu.release_hangs(),
    "wait_for_deliveries": lambda emu, body: {
        "done": emu.wait_for_deliveries(float(body.get("timeout", 10)))
    },
    "settings": _settings,
    "update_card": lambda emu, body: emu.update_card(
        body["payment_method"], body["exp_month"], body["exp_year"], body.get("last4")
    ),
    "authenticate": lambda emu, body: emu.authenticate(body["payment_intent"], body.get("success", True)),
    "revoke_mandate": lambda emu, body: emu.revoke_mandate(body["payment_method"]),
    "open_dispute": lambda emu, body: emu.open_dispute(
        body["payment_intent"], body.get("reason", "fraudulent"), bool(body.get("inquiry", False))
    ),
    "close_dispute": lambda emu, body: emu.close_dispute(body["dispute"], body["outcome"]),
}


def process(emu, method, path, query, body):
    """Answer one control request with JSON."""
    name = path[len("/_emulator/") :].strip("/")
    try:
        payload = json.loads(body or b"{}")
        if method == "GET" and name in _LISTS:
            result = {"data": getattr(emu, name)()}
        elif method == "GET" and name == "now":
            result = {"now": emu.now()}
        elif method == "GET" and name == "settings":
            result = _settings(emu, {})
        elif method == "POST" and name in _POSTS:
            result = _POSTS[name](emu, payload)
        else:
            return _json(404, {"error": f"unknown control call {method} {path}"})
    except (KeyError, TypeError, ValueError) as exc:
        return _json(400, {"error": f"{type(exc).__name__}: {exc}"})
    return _json(200, result if result is not None else {"ok": True})


def _json(status, payload):
    return Response(status, json.dumps(payload, default=str).encode(), {"Content-Type": "application/json"})
