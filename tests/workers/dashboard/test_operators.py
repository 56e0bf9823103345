"""Named operators: each signs in with their own token, reads or acts by role, and every action is audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from db.models import AuditEntry, FailedJob
from tests.workers.dashboard.conftest import Client
from tests.workers.dashboard.test_failed_jobs import ACTOR, _dead_row, _waiting
from workers.settings import Operator

ALICE = Operator("alice", "alice-token-0123456789", "admin")
BOB = Operator("bob", "bob-token-0123456789ab", "read")


def _app(db, broker, clock):
    from workers.broker import QUEUES
    from workers.dashboard.app import make_app

    for key in broker.client.scan_iter(f"{broker.namespace}:dashboard:*"):
        broker.client.delete(key)
    return make_app([ALICE, BOB], db, broker, QUEUES, clock=clock, https=False)


def _signed_in(app, operator: Operator) -> Client:
    client = Client(app)
    assert client.post("/login", {"token": operator.token}).status == 303
    return client


def _status(db, job_id: int) -> str:
    with db() as session:
        return session.get(FailedJob, job_id).status


def test_a_read_operator_sees_everything_but_cannot_act(db, broker, clock):
    app = _app(db, broker, clock)
    job_id = _dead_row(db, 1)
    bob = _signed_in(app, BOB)
    page = bob.get(f"/failed/{job_id}")
    assert page.status == 200 and "bob (read)" in page.body and "Retry:" not in page.body
    listing = bob.get("/failed").body
    assert "Retry selected" not in listing
    for path, form in [
        (f"/failed/{job_id}/retry", {}),
        (f"/failed/{job_id}/discard", {}),
        ("/failed/bulk", {"do": "retry:matching"}),
    ]:
        answer = bob.post(path, {"csrf": page.csrf, **form})
        assert answer.status == 403 and "A read operator cannot act." in answer.body, path
    assert _status(db, job_id) == "dead" and _waiting(broker) == []
    assert bob.post("/logout", {"csrf": page.csrf}).status == 303  # signing out is not acting


def test_each_action_is_recorded_under_the_operator_who_took_it(db, broker, clock):
    app = _app(db, broker, clock)
    first, second, third = (_dead_row(db, n) for n in (1, 2, 3))
    alice = _signed_in(app, ALICE)
    csrf = alice.get("/failed").csrf

    answer = alice.post("/failed/bulk", {"csrf": csrf, "do": "retry:selected", "id": str(first)})
    assert answer.header("Location").endswith("done=retried&moved=1&skipped=0")
    body = alice.request(
        "POST",
        "/failed/bulk",
        body=f"csrf={csrf}&do=discard%3Aselected&id={second}&id={third}".encode(),
    )
    assert "moved=2" in body.header("Location")
    assert [_status(db, i) for i in (first, second, third)] == ["retried", "discarded", "discarded"]

    with db() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.operator, e.action, e.detail["ids"]) for e in entries] == [
        ("alice", "retry_dead_letters", [first]),
        ("alice", "discard_dead_letters", [second, third]),
    ]
    audit = _signed_in(app, BOB).get("/audit?operator=alice").body
    assert "discard_dead_letters" in audit and "2 failed_jobs" in audit and "2 entries" in audit


def test_retry_everything_matching_a_search_from_the_list(db, broker, clock):
    app = _app(db, broker, clock)
    for n in range(1, 4):
        _dead_row(db, n, error=f"TimeoutError: smtp {n}")
    other = _dead_row(db, 9, error="KeyError: x")
    alice = _signed_in(app, ALICE)
    listing = alice.get("/failed?q=error%3Atimeout").body
    assert "3 rows" in listing and "Retry all 3 matching" in listing
    answer = alice.post(
        "/failed/bulk", {"csrf": alice.get("/").csrf, "do": "retry:matching", "q": "error:timeout"}
    )
    assert answer.header("Location") == "/failed?q=error%3Atimeout&done=retried&moved=3&skipped=0"
    assert "3 retried." in alice.get(answer.header("Location")).body
    assert len(_waiting(broker)) == 3 and _status(db, other) == "dead"
    assert "1 row" in alice.get(f"/failed?actor={ACTOR[:12]}&status=dead").body  # actor matches a substring


def test_sign_in_from_a_deep_link_returns_there_and_never_to_another_site(db, broker, clock):
    app = _app(db, broker, clock)
    anonymous = Client(app)
    page = anonymous.get("/failed?status=dead")
    assert page.status == 401
    target = re.search(r'name="next" value="([^"]*)"', page.body).group(1)
    assert target == "/failed?status=dead"
    answer = anonymous.post("/login", {"token": ALICE.token, "next": "/failed?status=dead"})
    assert answer.header("Location") == "/failed?status=dead"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert Client(app).post("/login", {"token": ALICE.token, "next": evil}).header("Location") == "/"


def test_a_lone_dashboard_token_is_the_admin_operator(client):
    page = client.get("/")
    assert "admin (admin)" in page.body
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.body


def test_a_session_of_an_operator_removed_from_the_settings_stops_working(db, broker, clock):
    from workers.broker import QUEUES
    from workers.dashboard.app import make_app

    bob = _signed_in(_app(db, broker, clock), BOB)
    only_alice = make_app([ALICE, Operator("bob2", BOB.token + "x", "read")], db, broker, QUEUES, https=False)
    assert Client(only_alice, cookies=dict(bob.cookies)).get("/").status == 401
