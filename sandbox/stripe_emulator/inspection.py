"""Read-only views of the emulator's state and scenario helpers that act as Stripe or the customer would."""

import copy

from . import confirmation, disputes, mandates, payment_methods


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

    def open_dispute(self, payment_intent_id, reason="fraudulent", inquiry=False):
        """The customer disputes a succeeded payment (a chargeback, or an inquiry): emits what Stripe does."""
        with self.lock:
            intent = self.state.store.get("payment_intent", payment_intent_id)
            if intent["status"] != "succeeded":
                raise ValueError(f"PaymentIntent {payment_intent_id} has no succeeded charge to dispute")
            charge = self.state.store.get("charge", intent["latest_charge"])
            return copy.deepcopy(disputes.open_dispute(self.state, charge, reason, inquiry=inquiry))

    def close_dispute(self, dispute_id, outcome):
        """The card network decides: a chargeback is won or lost; an inquiry won closes, lost escalates."""
        if outcome not in ("won", "lost"):
            raise ValueError("outcome must be won or lost")
        with self.lock:
            dispute = self.state.store.get("dispute", dispute_id)
            if dispute["status"] in disputes.CLOSED:
                raise ValueError(f"dispute {dispute_id} is already closed")
            disputes.settle(self.state, dispute, outcome)
            return copy.deepcopy(dispute)

    def revoke_mandate(self, payment_method_id):
        """The customer revoked the ACH mandate at the bank: emits `mandate.updated`."""
        with self.lock:
            return copy.deepcopy(mandates.revoke(self.state, payment_method_id))
