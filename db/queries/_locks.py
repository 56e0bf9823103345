"""Which accounts the session's open transaction already holds FOR KEY SHARE (or stronger).

A row lock lasts until its transaction ends, so a statement that only takes that lock again, in a
transaction known to hold it, is skipped: execute_payment locks its payment's account first and marks the
account's balance stale at the end of the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

_KEY = "accounts_held_shared"


def held_accounts(session: Session) -> set[int]:
    """The accounts this session's current transaction has locked (as noted by note_held); a new
    transaction starts with none."""
    transaction = session.get_transaction()
    noted = session.info.get(_KEY)
    if noted is None or noted[0] is not transaction:
        noted = (transaction, set())
        session.info[_KEY] = noted
    return noted[1]


def note_held(session: Session, account_ids: Iterable[int]) -> None:
    """These accounts are locked FOR KEY SHARE or stronger until the current transaction ends."""
    held_accounts(session).update(account_ids)
