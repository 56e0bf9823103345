"""An in-process Stripe for tests and demos: the real `stripe` SDK talks to it through `base_addresses`."""

from .emulator import Emulator
from .serve import serve

__all__ = ["Emulator", "serve"]
