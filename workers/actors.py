"""Every actor module, imported so that a Dramatiq worker process knows every actor."""

from tasks import ach, balances, emails, feed, maintenance, payments, webhooks  # noqa: F401
from workers import broker  # noqa: F401  (the broker must exist before any actor is declared)
