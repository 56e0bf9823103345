"""An in-process Stripe for tests and demos: the real `stripe` SDK talks to it through `base_addresses`.

    emu = Emulator().start()
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": emu.url})

Run it as a command with `python -m sandbox.stripe_emulator --port 12111`; see STRIPE.md for the behaviour.
"""

from .emulator import Emulator
from .serve import serve

__all__ = ["Emulator", "serve"]
