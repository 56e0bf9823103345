"""The seller's ledger feed for its ERP: polled (list_ledger_events) or pushed to an endpoint set here."""

from __future__ import annotations

import secrets as random
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from db.queries import accounts as account_rows
from db.queries import feed_endpoints as endpoint_rows
from db.queries import ledger_events as event_rows
from tasks.api.guard import api_transaction
from tasks.domain import requests as checks
from tasks.domain.errors import RemitError
from tasks.flows import feed_delivery, messages

# A page an ERP reads in one call; past this it asks again after the last sequence it got.
MAX_EVENTS_PER_PAGE = 1000
# Secrets an endpoint is signed with at once: the new one and a few still rolling out.
MAX_SECRETS = 5
MAX_URL_CHARS = 2000
# A replay is an ops action on a range a receiver lost, not a re-export of the whole ledger.
MAX_REPLAY_EVENTS = 100_000


@dataclass(frozen=True)
class LedgerEventView:
    id: int
    sequence: int
    type: str
    created_at: datetime
    data: dict[str, Any]


def list_ledger_events(seller_id: int, after_sequence: int = 0, limit: int = 100) -> list[LedgerEventView]:
    """The seller's ledger events numbered after after_sequence, in order; the same events the feed posts."""
    seller_id = checks.check_id(seller_id, "seller_not_found", "Seller")
    if not _whole(after_sequence) or after_sequence < 0:
        raise RemitError("invalid_sequence", "after_sequence must be a whole number, 0 or more.")
    if not _whole(limit) or not 1 <= limit <= MAX_EVENTS_PER_PAGE:
        raise RemitError("invalid_limit", f"limit must be a whole number from 1 to {MAX_EVENTS_PER_PAGE}.")
    with api_transaction() as session:
        _seller(session, seller_id)
        rows = event_rows.list_events_after(session, seller_id, after_sequence, limit)
        return [LedgerEventView(r.id, r.sequence, r.type, r.created_at, r.data) for r in rows]


def set_feed_endpoint(seller_id: int, url: str, secret: str | None = None) -> str:
    """Post the seller's feed to url, signed with secret (new if None) and any still rolling; the secret."""
    seller_id = checks.check_id(seller_id, "seller_not_found", "Seller")
    _check_url(url)
    secret = secret if secret is not None else new_secret()
    _check_secret(secret)
    with api_transaction() as session:
        _seller(session, seller_id)
        current = endpoint_rows.lock_endpoint(session, seller_id)
        kept = [s for s in (current.secrets if current else []) if s != secret]
        endpoint_rows.upsert_endpoint(session, seller_id, url, [secret, *kept][:MAX_SECRETS])
        messages.send_after_commit(session, "deliver_ledger_events", [(seller_id,)])  # what waited for it
    return secret


def retire_feed_secrets(seller_id: int, keep: str) -> None:
    """Sign with keep alone from now on: the end of a secret's roll-out."""
    seller_id = checks.check_id(seller_id, "seller_not_found", "Seller")
    with api_transaction() as session:
        endpoint = endpoint_rows.lock_endpoint(session, seller_id)
        if endpoint is None:
            raise RemitError("endpoint_not_found", f"Seller {seller_id} has no feed endpoint.")
        if keep not in endpoint.secrets:
            raise RemitError("secret_not_found", "That secret is not one the endpoint signs with.")
        endpoint.secrets = [keep]


def feed_status(failing_only: bool = False) -> list[dict[str, Any]]:
    """Every seller's endpoint: how far behind it is and the delivery failing now, if any (the ops view)."""
    with api_transaction() as session:
        return [dict(row._mapping) for row in endpoint_rows.list_endpoint_status(session, failing_only)]


def replay_ledger_events(seller_id: int, first: int, last: int) -> tuple[int, int]:
    """Post the seller's events first..last again, now and in order; (delivered, failed)."""
    seller_id = checks.check_id(seller_id, "seller_not_found", "Seller")
    if not (_whole(first) and _whole(last)) or not 1 <= first <= last:
        raise RemitError("invalid_range", "first and last must be sequence numbers, 1 <= first <= last.")
    if last - first >= MAX_REPLAY_EVENTS:
        raise RemitError("invalid_range", f"A replay covers at most {MAX_REPLAY_EVENTS} events.")
    with api_transaction() as session:
        if endpoint_rows.lock_endpoint(session, seller_id) is None:
            raise RemitError("endpoint_not_found", f"Seller {seller_id} has no feed endpoint.")
    return feed_delivery.replay(seller_id, first, last)


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, prefixed so it is recognisable in a config file."""
    return "rfsec_" + random.token_hex(32)


def _seller(session, seller_id: int) -> None:
    if account_rows.find_seller(session, seller_id) is None:
        raise RemitError("seller_not_found", f"Seller {seller_id} was not found.")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value <= checks.MAX_ID


def _check_url(url: object) -> None:
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= MAX_URL_CHARS else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise RemitError("invalid_url", "The endpoint must be an http(s) URL without credentials in it.")


def _check_secret(secret: object) -> None:
    if (
        not isinstance(secret, str)
        or not 16 <= len(secret) <= 200
        or not secret.isprintable()
        or " " in secret
    ):
        raise RemitError("invalid_secret", "A secret is 16 to 200 printable characters without spaces.")
