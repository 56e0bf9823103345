"""Queue `emails`: send_email delivers one outbox row over SMTP; the row says what and to whom."""

from datetime import UTC, datetime

import dramatiq

from tasks.flows import emails as outbox
from tasks.gateways.mail import MailRejected
from workers import broker  # noqa: F401  (declares the broker before any actor)

# 10 s, 20 s, 40 s ... capped at 5 min: about 10 minutes of retries ride out a relay restart;
# sweep_emails takes over after that, ever more slowly, for up to a day.
MAX_RETRIES = 6
MIN_BACKOFF_MS = 10_000
MAX_BACKOFF_MS = 300_000
# Connect, STARTTLS, login and DATA each wait at most 20 s (tasks.gateways.mail); this bounds the lot.
TIME_LIMIT_MS = 90_000


@dramatiq.actor(
    queue_name="emails",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(MailRejected,),
)
def send_email(email_id: int) -> None:
    """Send the queued email once; a refused one is marked failed and not retried."""
    outbox.deliver_email(email_id, now=datetime.now(UTC))
