"""Editing a saved method: its nickname here; billing details and a card's expiry at Stripe, after commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tasks.api import methods as saved_methods
from tasks.api import selection
from tasks.api.guard import api_transaction
from tasks.domain import method_edits as rules
from tasks.domain.dates import seller_today
from tasks.flows import messages


def update_payment_method(
    account_id: int,
    payment_method_id: int,
    *,
    nickname: str | None = None,
    billing_details: dict[str, Any] | None = None,
    exp_month: int | None = None,
    exp_year: int | None = None,
    now: datetime | None = None,
) -> saved_methods.SavedMethod:
    """Change what the customer may change; nickname "" clears it. Stripe's part goes out after commit
    (update_payment_method on the `ach` queue, with a key per edit), so the method shows the edit at once.
    Setting the same values again is harmless: it is one more edit with the same content."""
    saved_methods.check_ids(account_id, payment_method_id)
    with api_transaction() as session:
        account, seller = selection.load_account(session, account_id, lock=False)
        method = saved_methods.method_of(session, account, payment_method_id)
        rules.check_editable(method.status, method.saved)
        today = seller_today(seller, now or datetime.now(UTC))
        edit = rules.check_edit(nickname, billing_details, exp_month, exp_year, method.kind, today)
        if edit.nickname is not None:
            method.nickname = edit.nickname or None
        if edit.billing_details is not None:
            method.billing_details = rules.merged_billing(method.billing_details, edit.billing_details)
        if edit.exp_month is not None:
            method.exp_month, method.exp_year = edit.exp_month, edit.exp_year
        if edit.for_stripe:
            method.update_version += 1
            method.verification_error = None
            messages.send_after_commit(session, "update_payment_method", [(method.id, method.update_version)])
        return saved_methods.view(method)
