"""Dead letters: a real final failure is listed with its traceback, retried once by a CSRF-checked POST."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import dramatiq
from sqlalchemy import select

from db.models import FailedJob
from tests.workers.dashboard.conftest import Client
from tests.workers.dashboard.support import ago, row_cells
from workers import broker as _broker  # noqa: F401  (the Remit broker exists before the test actor)

ACTOR = "dashboard_test_always_fails"


@dramatiq.actor(actor_name=ACTOR, queue_name="maintenance", max_retries=0, time_limit=5_000)
def always_fails(order_id: int, note: str = "") -> None:
    raise RuntimeError(f"order {order_id} is broken <b>{note}</b>")


def _wait(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := predicate()) is not None:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def _job(db, **where) -> FailedJob | None:
    with db() as session:
        return session.scalar(select(FailedJob).filter_by(**where))


def _waiting(broker, queue: str = "maintenance") -> list[dramatiq.Message]:
    key = f"{broker.namespace}:{queue}"
    ids = broker.client.lrange(key, 0, -1)
    return [dramatiq.Message.decode(broker.client.hget(f"{key}.msgs", i)) for i in ids]


def _dead_row(db, n: int, **overrides) -> int:
    values = dict(
        message_id=f"msg-{n}",
        queue="maintenance",
        actor=ACTOR,
        args=[n],
        kwargs={},
        error=f"RuntimeError: number {n}",
        traceback="Traceback (most recent call last):\n  ...",
        attempts=1,
        status="dead",
    )
    with db() as session:
        row = FailedJob(**{**values, **overrides})
        session.add(row)
        session.commit()
        return row.id


def test_a_real_failure_is_listed_with_its_traceback_and_retried_once(client, db, broker, worker, clock):
    message = always_fails.send_with_options(args=(42,), kwargs={"note": "pallets"})
    job = _wait(lambda: _job(db, message_id=message.message_id))
    worker.stop()  # nothing consumes the retried message, so it can be seen waiting

    overview = client.get("/").body
    cells, alert = row_cells(overview, "maintenance")
    assert (cells[5], cells[6], alert) == ("1", "1", True)  # Redis dead letter and failed_jobs row

    listing = client.get("/failed").body
    cells, _ = row_cells(listing, str(job.id))
    assert cells[2:7] == ["maintenance", ACTOR, "[42]", "1", "dead"]
    assert cells[7] == "RuntimeError: order 42 is broken <b>pallets</b>"
    assert "&lt;b&gt;pallets&lt;/b&gt;" in listing

    page = client.get(f"/failed/{job.id}")
    assert "Traceback (most recent call last)" in page.body and "always_fails" in page.body
    assert "&#34;note&#34;: &#34;pallets&#34;" in page.body and "<b>pallets" not in page.body

    assert client.post(f"/failed/{job.id}/retry").status == 403
    assert client.post(f"/failed/{job.id}/retry", {"csrf": "0" * 64}).status == 403
    assert _waiting(broker) == [] and _job(db, id=job.id).status == "dead"

    answer = client.post(f"/failed/{job.id}/retry", {"csrf": page.csrf})
    assert (answer.status, answer.header("Location")) == (
        303,
        f"/failed/{job.id}?done=retried&moved=1&skipped=0",
    )
    [sent] = _waiting(broker)
    assert (sent.actor_name, sent.args, sent.kwargs) == (ACTOR, (42,), {"note": "pallets"})
    row = _job(db, id=job.id)
    assert (row.status, row.retried_at) == ("retried", clock.now)
    assert "1 retried." in client.get(answer.header("Location")).body

    again = client.post(f"/failed/{job.id}/retry", {"csrf": page.csrf})
    assert again.header("Location") == f"/failed/{job.id}?done=retried&moved=0&skipped=1"
    assert len(_waiting(broker)) == 1
    assert "1 already retried or discarded (nothing sent again)" in client.get(again.header("Location")).body


def test_two_simultaneous_retry_clicks_send_one_message(dashboard_app, client, db, broker):
    job_id = _dead_row(db, 1)
    csrf = client.get(f"/failed/{job_id}").csrf

    def click(_):
        return Client(dashboard_app, cookies=dict(client.cookies)).post(
            f"/failed/{job_id}/retry", {"csrf": csrf}
        )

    with ThreadPoolExecutor(4) as pool:
        locations = sorted(a.header("Location") for a in pool.map(click, range(4)))
    assert locations.count(f"/failed/{job_id}?done=retried&moved=1&skipped=0") == 1
    assert locations.count(f"/failed/{job_id}?done=retried&moved=0&skipped=1") == 3
    assert len(_waiting(broker)) == 1


def test_bearer_clients_need_the_csrf_token_too(dashboard_app, db, broker):
    job_id = _dead_row(db, 1)
    api = Client(dashboard_app, bearer="dashboard-test-token-0123456789")
    assert api.post(f"/failed/{job_id}/retry").status == 403
    csrf = api.get(f"/failed/{job_id}").csrf
    assert api.post(f"/failed/{job_id}/retry", {"csrf": csrf}).status == 303
    assert len(_waiting(broker)) == 1


def test_discard_marks_a_dead_row_and_a_discarded_row_can_still_be_retried(client, db, broker):
    job_id = _dead_row(db, 1)
    csrf = client.get("/failed").csrf
    assert client.post(f"/failed/{job_id}/discard").status == 403
    assert (
        client.post(f"/failed/{job_id}/discard", {"csrf": csrf})
        .header("Location")
        .endswith("moved=1&skipped=0")
    )
    assert _job(db, id=job_id).status == "discarded" and _waiting(broker) == []
    assert (
        client.post(f"/failed/{job_id}/discard", {"csrf": csrf})
        .header("Location")
        .endswith("done=discarded&moved=0&skipped=1")
    )
    retried = client.post(f"/failed/{job_id}/retry", {"csrf": csrf}).header("Location")
    assert retried.endswith("done=retried&moved=1&skipped=0")
    assert _job(db, id=job_id).status == "retried" and len(_waiting(broker)) == 1


def test_retry_of_an_unknown_actor_sends_nothing_and_leaves_the_row_dead(client, db, broker):
    job_id = _dead_row(db, 1, actor="renamed_long_ago")
    csrf = client.get("/failed").csrf
    answer = client.post(f"/failed/{job_id}/retry", {"csrf": csrf})
    assert answer.header("Location").endswith("moved=0&skipped=0&unknown=1")
    assert _job(db, id=job_id).status == "dead" and _waiting(broker) == []
    assert "left dead: no actor by that name is declared here" in client.get(answer.header("Location")).body


def test_retry_of_a_missing_row_says_so(client):
    csrf = client.get("/failed").csrf
    assert client.post("/failed/999/retry", {"csrf": csrf}).status == 404
    assert client.get("/failed/999").status == 404
    assert client.get("/failed/99999999999999").status == 404
    assert client.get("/failed/abc").status == 404


def test_list_is_newest_first_filtered_and_paginated(client, db, clock):
    for n in range(1, 53):
        _dead_row(db, n, failed_at=ago(clock.now, minutes=100 - n))
    _dead_row(db, 100, queue="payments", actor="execute_payment", status="retried")
    _dead_row(db, 101, queue="emails", actor="send_email", status="discarded")

    first = client.get("/failed").body
    ids = [int(i) for i in re.findall(r'<a href="/failed/(\d+)">', first)]
    assert len(ids) == 50 and ids[:4] == [54, 53, 52, 51]  # the last two failed "now", after the others
    assert "page 1 of 2 (54 rows)" in first
    second = client.get("/failed?page=2").body
    assert "page 2 of 2" in second

    assert row_cells(client.get("/failed?queue=payments").body, "53")[0][3] == "execute_payment"
    assert "1 row" in client.get("/failed?status=discarded").body
    assert "52 rows" in client.get(f"/failed?actor={ACTOR}&status=dead").body
    assert "No failed jobs match." in client.get("/failed?actor=nobody").body
