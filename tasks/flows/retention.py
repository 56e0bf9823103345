"""Personal data past its retention, redacted in place: payloads, email contexts and mandate details.

What stays is what the money needs: ids, kinds, amounts and states (tasks.domain.retention).
"""

from __future__ import annotations

from datetime import datetime

from db.queries import emails as email_rows
from db.queries import inbox, methods
from db.session import transaction
from tasks.domain.retention import redacted, retention_cutoff
from workers.settings import Settings, get_settings

# Rows of each kind per pass, each kind in its own short transaction: a payload is a few KB, so a
# batch stays well under a second and never holds many locks while webhooks arrive.
PURGE_LIMIT = 1000


def purge_personal_data(
    now: datetime, settings: Settings | None = None, limit: int = PURGE_LIMIT
) -> dict[str, int]:
    """Redact up to `limit` rows of each kind past its retention; return how many of each."""
    settings = settings or get_settings()
    with transaction() as session:
        events = inbox.lock_payloads_to_redact(
            session, retention_cutoff(now, settings.webhook_payload_retention_days), limit
        )
        inbox.replace_payloads(session, [(event_id, redacted(payload)) for event_id, payload in events])
    with transaction() as session:
        emails = email_rows.lock_contexts_to_redact(
            session, retention_cutoff(now, settings.email_context_retention_days), limit
        )
        email_rows.replace_contexts(session, [(email_id, redacted(context)) for email_id, context in emails])
    with transaction() as session:
        mandates = methods.clear_old_mandate_details(
            session, retention_cutoff(now, settings.mandate_retention_days), limit
        )
    return {"webhook_payloads": len(events), "email_contexts": len(emails), "mandates": mandates}
