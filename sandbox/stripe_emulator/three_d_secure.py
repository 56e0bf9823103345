"""Stripe's test 3-D Secure page (hooks.stripe.com/3d_secure_2/hosted): the `stripe_js` address of an intent's
`use_stripe_sdk` next action, which Stripe.js opens in a frame for the customer to complete or fail.

GET shows the page; POST with outcome=complete or outcome=fail is the customer pressing its button. Stripe.js
then retrieves the intent with its client secret and finds it succeeded, or back in requires_payment_method.
"""

import html
import json
from urllib.parse import parse_qs

from . import confirmation
from .api import Response
from .errors import StripeError

PATH = "/3d_secure_2/hosted"
_OUTCOMES = {"complete": True, "fail": False}


def process(emu, method, query, body):
    """Answer the page, or the customer's choice on it."""
    intent_id = (parse_qs(query).get("payment_intent") or [""])[0]
    with emu.lock:
        intent = emu.state.store.objects["payment_intent"].get(intent_id)
        if intent is None:
            return _page(404, f"No such PaymentIntent: {intent_id!r}")
        if method == "GET":
            return _page(200, _choice(intent_id))
        outcome = (parse_qs(body.decode()).get("outcome") or [""])[0]
        if outcome not in _OUTCOMES:
            return _page(400, "outcome must be complete or fail")
        try:
            confirmation.authenticate(emu.state, intent, _OUTCOMES[outcome])
        except StripeError as exc:
            return _page(400, exc.message)
        return _page(200, json.dumps({"payment_intent": intent_id, "status": intent["status"]}))


def _choice(intent_id):
    form = '<form method="post"><button name="outcome" value="{0}">{1} authentication</button></form>'
    return (
        f"<h1>3D Secure 2 Test Page</h1><p>{html.escape(intent_id)}</p>"
        + form.format("complete", "Complete")
        + form.format("fail", "Fail")
    )


def _page(status, text):
    body = f"<!doctype html><html><body>{text}</body></html>".encode()
    return Response(status, body, {"Content-Type": "text/html; charset=utf-8"})
