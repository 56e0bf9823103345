"""An in-process Stripe for tests and demos: the real `stripe` SDK talks to it through `base_addresses`.

    emu = Emulator().start()
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": emu.url})

Run it as a command with `python -m sandbox.stripe_emulator --port 12111`; see STRIPE.md for the behaviour.
Stripe.js's side (a publishable key with a client secret, the test 3-D Secure page) is driven by
`sandbox.stripe_js`.

Known differences from Stripe: refunding an ACH payment still processing is refused instead of
cancelling the debit; SetupIntents with authentication-required cards succeed at once;
`verification_method` is ignored (raw bank details always need microdeposits, `pm_usBankAccount_*`
tokens are already verified); unknown parameters are accepted silently (but by cancel); search understands
`field:'value'` clauses joined by AND only; webhook endpoints are registered through the control
API, not `/v1/webhook_endpoints`; no manual capture (`requires_capture`); a publishable key
retrieves the whole PaymentIntent (Stripe shows it a subset).
"""

from .emulator import Emulator
from .serve import serve

__all__ = ["Emulator", "serve"]
