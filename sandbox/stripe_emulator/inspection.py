"""Read-only views of the emulator's state and scenario helpers that act as Stripe or the customer would."""

import copy

from . import confirmation, mandates, payment_methods


class Inspection:
    """Mixed into `Emulator`: what tests and invariant checks look at, and out-of-band events."""

    def requests(self):
        """Every API request received: method, path, key, status, replayed, fault, at."""
        with self.lock:
            return [dict(r) for r in self._requests]

    def _inspect(self, kind):
        with self.lock:
            return copy.deepcopy(self.state.store.all(kind))

    def payment_intents(self):
        """Every PaymentIntent, oldest first."""
        return self._inspect("payment_intent")

    def customers(self):
        """Every customer, oldest first."""
        return self._inspect("customer")

    def charges(self):
        """Every charge, oldest first."""
        return self._inspect("charge")

    def refunds(self):
        """Every refund, oldest first."""
        return self._inspect("refund")

    def disputes(self):
        """Every dispute, oldest first."""
        return self._inspect("dispute")

    def setup_intents(self):
        """Every SetupIntent, oldest first."""
        return self._inspect("setup_intent")

    def payment_methods(self):
        """Every payment method, oldest first."""
        return self._inspect("payment_method")

    # -- scenario helpers ------------------------------------------------------------------------

    def update_card(self, payment_method_id, exp_month, exp_year, last4=None):
        """New card details from the network: emits `payment_method.automatically_updated`."""
        with self.lock:
            return copy.deepcopy(
                payment_methods.update_card_details(self.state, payment_method_id, exp_month, exp_year, last4)
            )

    def authenticate(self, payment_intent_id, success=True):
        """The customer completes (or fails) 3D Secure for an intent in `requires_action`."""
        with self.lock:
            intent = self.state.store.get("payment_intent", payment_intent_id)
            confirmation.authenticate(self.state, intent, success)
            return copy.deepcopy(intent)

    def revoke_mandate(self, payment_method_id):
        """The customer revoked the ACH mandate at the bank: emits `mandate.updated`."""
        with self.lock:
            return copy.deepcopy(mandates.revoke(self.state, payment_method_id))
