"""Issue 13, item 3: one lock order everywhere (account, then invoices or payment), the worker's too.

A failed last look used to lock payment -> invoices -> account while a money request locks
account -> invoices: a real inversion that PostgreSQL broke by killing one side as a deadlock.
"""

from __future__ import annotations

import threading

import psycopg

from db.session import libpq_url
from tasks.domain.attempts import FailedAtLastLook
from tasks.flows import payments as execution
from tests.helpers import wait_until
from tests.tasks.handlers.support import now, world


def _waiting_on_a_lock(database_url: str) -> bool:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
        return row[0] > 0


def test_a_failing_last_look_waits_for_a_money_request_instead_of_deadlocking_with_it(db, database_url):
    ids = world(db, status="pending")
    invoice = ids["invoices"][0]
    with psycopg.connect(libpq_url(database_url)) as request:  # what pay_invoices does first: the account
        request.execute("SET lock_timeout = '10s'")
        request.execute("UPDATE invoices SET voided = true WHERE id = ANY(%s)", (ids["invoices"],))
        request.commit()  # every invoice was voided: the last look will fail the payment
        request.execute("SELECT id FROM accounts WHERE id = %s FOR UPDATE", (ids["account"],))
        outcome: list = []
        worker = threading.Thread(
            target=lambda: outcome.append(execution.execute_payment(ids["payment"], now()))
        )
        worker.start()
        assert wait_until(lambda: _waiting_on_a_lock(database_url), timeout_s=10)
        # ... and then the invoices. The worker must not be holding them while it waits for the account.
        request.execute("SELECT id FROM invoices WHERE id = %s FOR UPDATE", (invoice,))
        request.commit()
    worker.join(timeout=30)
    assert outcome == [FailedAtLastLook("nothing_owed")]
