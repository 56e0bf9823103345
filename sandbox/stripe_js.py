"""What Stripe.js does in the customer's browser for the portal, against the emulator: with a publishable key
and the client secret get_payment hands out, confirm the intent on-session (confirmCardPayment) and go
through the test 3-D Secure page its next action names (handleNextAction). For tests and the demo only."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

PUBLISHABLE_KEY = "pk_test_emulator"


class StripeJsError(Exception):
    """Stripe answered Stripe.js with an error (its JSON body is in .error)."""

    def __init__(self, status: int, error: dict[str, Any]):
        super().__init__(f"{status}: {error.get('message')}")
        self.status, self.error = status, error


class StripeJs:
    def __init__(self, api_base: str, publishable_key: str = PUBLISHABLE_KEY, timeout_s: float = 10.0):
        self.api_base, self.key, self.timeout_s = api_base.rstrip("/"), publishable_key, timeout_s

    def confirm_card_payment(self, client_secret: str, payment_method: str | None = None) -> dict[str, Any]:
        """POST /v1/payment_intents/{id}/confirm as confirmCardPayment sends it (before any 3-D Secure)."""
        params = {"client_secret": client_secret}
        if payment_method:
            params["payment_method"] = payment_method
        return self._api("POST", f"/v1/payment_intents/{_intent_id(client_secret)}/confirm", params)

    def retrieve(self, client_secret: str) -> dict[str, Any]:
        """GET /v1/payment_intents/{id}?client_secret=...: how Stripe.js learns where the intent is now."""
        query = urlencode({"client_secret": client_secret})
        return self._api("GET", f"/v1/payment_intents/{_intent_id(client_secret)}?{query}", None)

    def handle_next_action(self, client_secret: str, complete: bool = True) -> dict[str, Any]:
        """The customer completes (or fails) the 3-D Secure page of a use_stripe_sdk next action."""
        intent = self.retrieve(client_secret)
        action = intent.get("next_action") or {}
        if action.get("type") != "use_stripe_sdk":
            return intent
        page = action["use_stripe_sdk"]["stripe_js"]
        body = urlencode({"outcome": "complete" if complete else "fail"}).encode()
        with urlopen(Request(page, data=body, method="POST"), timeout=self.timeout_s):
            pass
        return self.retrieve(client_secret)

    def pay(self, client_secret: str, next_action: str, payment_method: str, complete: bool = True) -> dict:
        """What the portal's page does with get_payment's action: confirm when asked, then authenticate."""
        if next_action == "confirm_on_session":
            intent = self.confirm_card_payment(client_secret, payment_method)
            if intent["status"] != "requires_action":
                return intent
        return self.handle_next_action(client_secret, complete)

    def _api(self, method: str, path: str, params: dict[str, str] | None) -> dict[str, Any]:
        token = base64.b64encode(f"{self.key}:".encode()).decode()
        data = urlencode(params).encode() if params is not None else None
        request = Request(self.api_base + path, data=data, method=method)
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except HTTPError as exc:
            raise StripeJsError(exc.code, json.loads(exc.read() or b"{}").get("error", {})) from None


def _intent_id(client_secret: str) -> str:
    return client_secret.split("_secret_", 1)[0]
