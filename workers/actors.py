"""Every actor module, imported so that a Dramatiq worker process knows every actor."""

from workers import broker  # noqa: F401  (the broker must exist before any actor is declared)
from tasks import maintenance, payments  # noqa: F401

try:
    from tasks import webhooks  # noqa: F401
except ImportError:  # the webhooks queue lands separately
    pass
