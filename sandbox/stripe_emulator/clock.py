"""The emulator's clock: real time plus an offset that tests move forward."""

import time


class Clock:
    """Unix time that can be advanced but never goes back."""

    def __init__(self, offset=0.0):
        self.offset = offset

    def time(self):
        """Emulator time as a float."""
        return time.time() + self.offset

    def now(self):
        """Emulator time in whole seconds, as Stripe's `created` fields."""
        return int(self.time())

    def advance(self, seconds):
        """Move the clock forward."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds
