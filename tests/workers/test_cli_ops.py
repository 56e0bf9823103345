"""`remit failed|run|payment|queues` against the real database and Redis, each run in its own process."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest

from db.models import FailedJob, PaymentEvent
from db.queries import dashboard as dashboard_rows
from tasks.domain.dead_letters import DeadLetterFilter
from tests import factories

ONLY_DATABASE = ("BROKER_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS")


def remit(*args, stdin=None, drop=(), **env):
    environ = {k: v for k, v in {**os.environ, **env}.items() if k not in drop}
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    return result.returncode, result.stdout, result.stderr


def dead(db, n: int, **overrides) -> int:
    values = dict(
        message_id=f"msg-{n}",
        queue="emails",
        actor="send_email",
        args=[n],
        kwargs={},
        error=f"SMTPServerDisconnected: timeout talking to mail {n}\nsecond line",
        traceback="Traceback (most recent call last):\n  File x\nSMTPServerDisconnected: timeout",
        attempts=6,
        status="dead",
    )
    with db() as session:
        row = FailedJob(**{**values, **overrides})
        session.add(row)
        session.commit()
        return row.id


def statuses(db) -> dict[int, str]:
    with db() as session:
        return dict(session.query(FailedJob.id, FailedJob.status).all())


def listed(out: str) -> list[int]:
    """The ids a `remit failed list` shows, in its order (between the header and the count line)."""
    return [int(line.split()[0]) for line in out.splitlines()[1:-1]]


def queued(broker, queue: str) -> list[dramatiq.Message]:
    key = f"{broker.namespace}:{queue}"
    return [
        dramatiq.Message.decode(broker.client.hget(f"{key}.msgs", i))
        for i in broker.client.lrange(key, 0, -1)
    ]


def test_failed_list_filters_by_actor_substring_error_text_and_queue(db):
    first = dead(db, 1)
    dead(db, 2, actor="recompute_balance", queue="balances", error="DeadlockDetected")
    dead(db, 3, status="retried")

    code, out, err = remit("failed", "list", "--actor", "EMAIL", drop=ONLY_DATABASE)
    assert code == 0, err
    assert f"{first:>6}  dead" in out and "recompute_balance" not in out
    assert "timeout talking to mail 1" in out and "second line" not in out
    assert "1 of 1 failed job(s) shown" in out

    code, out, _ = remit("failed", "list", "--error", "deadlock", "--queue", "balances", drop=ONLY_DATABASE)
    assert "recompute_balance" in out and "1 of 1" in out
    assert "3 of 3" in remit("failed", "list", "--status", "any", drop=ONLY_DATABASE)[1]
    assert "0 of 0" in remit("failed", "list", "--since", "2020-01-01T00:00", "--actor", "nobody")[1]


def test_failed_show_prints_arguments_and_the_whole_traceback(db):
    job = dead(db, 7, kwargs={"note": "pallets"})
    code, out, err = remit("failed", "show", str(job), drop=ONLY_DATABASE)
    assert code == 0, err
    assert "actor:      send_email" in out and "args:       [7]" in out and '{"note": "pallets"}' in out
    assert "File x" in out
    code, _, err = remit("failed", "show", "999")
    assert code == 2 and err.strip() == "remit: no failed job 999"


def test_failed_retry_by_id_sends_the_message_once_and_is_safe_twice(db, broker):
    job = dead(db, 5)
    code, out, err = remit("failed", "retry", str(job))
    assert code == 0, err
    assert out.strip() == "retried 1"
    assert [(m.actor_name, m.args) for m in queued(broker, "emails")] == [("send_email", (5,))]
    assert statuses(db)[job] == "retried"

    code, out, _ = remit("failed", "retry", str(job))
    assert code == 0 and out.strip() == "already_retried 1"
    assert len(queued(broker, "emails")) == 1


def test_a_bulk_selection_is_confirmed_or_refused_and_acts_only_on_matches(db, broker):
    timeouts = [dead(db, n) for n in range(1, 6)]
    other = dead(db, 9, error="KeyError: 'x'", traceback="Traceback (most recent call last):\nKeyError: 'x'")

    code, _, err = remit("failed", "discard", "--error", "timeout")
    assert code == 2 and "add --yes to go ahead" in err
    assert set(statuses(db).values()) == {"dead"}

    code, out, err = remit("failed", "discard", "--error", "timeout", stdin="n\n")
    assert code == 2  # no terminal: refused, not asked

    code, out, err = remit("failed", "discard", "--error", "TIMEOUT", "--yes")
    assert code == 0, err
    assert out.strip() == "discarded 5"
    assert "discard: 5 of 5 done" in err
    assert {statuses(db)[i] for i in timeouts} == {"discarded"} and statuses(db)[other] == "dead"

    code, out, err = remit("failed", "retry", "--all", "--status", "discarded", "--yes")
    assert code == 0, err
    assert out.strip() == "retried 5"
    assert len(queued(broker, "emails")) == 5
    assert remit("failed", "retry", "--all", "--actor", "nobody", "--yes")[1].strip() == "nothing matched"


def test_a_selection_takes_a_queue_substring_a_since_and_any_status(db, broker):
    old = dead(db, 1, failed_at=datetime.now(UTC) - timedelta(days=30))
    recent = dead(db, 2)
    bulk = dead(db, 3, queue="Emails-Bulk", status="discarded")
    retried = dead(db, 4, status="retried")
    other = dead(db, 5, queue="balances", actor="recompute_balance")
    selection = ("--queue", "MAIL", "--since", "7d", "--status", "any")

    code, out, err = remit("failed", "list", *selection, drop=ONLY_DATABASE)
    assert code == 0, err
    assert listed(out) == [retried, bulk, recent]  # newest first

    code, _, err = remit("failed", "retry", *selection)
    assert code == 2 and "retry 3 failed job(s) (status any, queue ~ 'MAIL', since " in err
    code, out, err = remit("failed", "retry", *selection, "--yes")
    assert code == 0, err
    assert out.strip() == "already_retried 1, retried 2"
    assert statuses(db) == {
        old: "dead",
        recent: "retried",
        bulk: "retried",
        retried: "retried",
        other: "dead",
    }


@pytest.mark.parametrize(
    ("options", "f"),
    [
        (["--queue", "MAIL"], DeadLetterFilter(queue="MAIL", status="dead")),
        (["--error", "TIMEOUT", "--status", "any"], DeadLetterFilter(error="TIMEOUT")),
        (
            ["--actor", "Balance", "--since", "7d", "--status", "any"],
            DeadLetterFilter(actor="Balance", since=datetime.now(UTC) - timedelta(days=7)),
        ),
    ],
)
def test_the_command_selects_what_the_dashboard_shows_for_the_same_filter(db, options, f):
    month_ago = datetime.now(UTC) - timedelta(days=30)
    dead(db, 1)
    dead(db, 2, queue="Emails-Bulk", error="KeyError: 'to'")  # timeout in its traceback only
    dead(db, 3, queue="balances", actor="recompute_balance", error="DeadlockDetected", traceback=None)
    dead(db, 4, queue="balances", actor="recompute_balance", status="retried", failed_at=month_ago)
    dead(db, 5, status="discarded", failed_at=month_ago)

    code, out, err = remit("failed", "list", *options, drop=ONLY_DATABASE)
    assert code == 0, err
    with db() as session:
        shown = [job.id for job in dashboard_rows.list_failed_jobs(session, f).rows]
    assert 0 < len(shown) < 5  # the filter tells rows apart
    assert listed(out) == shown


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["retry"], "name the failed jobs to retry: ids, filters (see --help), or --all"),
        (["discard", "3", "--all"], "name ids or a selection (filters, --all) to discard, not both"),
        (["list", "--since", "yesterday"], "--since 'yesterday' is neither a duration"),
    ],
)
def test_a_bad_failed_command_is_refused_in_one_line(db, args, complaint):
    code, _, err = remit("failed", *args)
    assert code == 2 and err.strip().startswith(f"remit: {complaint}")
    assert len(err.strip().splitlines()) == 1


def test_run_sends_a_maintenance_job_now(broker):
    code, out, err = remit(
        "run", "sweep-emails", drop=("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS", "DATABASE_URL")
    )
    assert code == 0, err
    assert out.strip() == "sent sweep_emails to the maintenance queue; a bulk worker runs it"
    assert [m.actor_name for m in queued(broker, "maintenance")] == ["sweep_emails"]
    broker.flush_all()

    code, out, err = remit("run", "reconcile")
    assert code == 0 and out.startswith("sent reconcile_stripe to the maintenance queue"), err
    code, _, err = remit("run", "sweep-everything")
    assert code == 2 and "'sweep-everything' is no job; the jobs are: dispatch-due-payments, " in err
    code, _, err = remit("run", "sweep")
    assert code == 2 and "'sweep' names several jobs" in err


def test_payment_show_finds_a_payment_by_id_or_payment_intent(db):
    with db() as session:
        account = factories.account(session)
        card = factories.method(session, account, last4="4242")
        invoice = factories.invoice(session, account, total_minor=12_345, number="INV-77")
        payment = factories.payment(
            session, account, card, 12_345, status="succeeded", stripe_payment_intent_id="pi_cli_1"
        )
        factories.allocation(session, payment, invoice, state="applied")
        session.add(
            PaymentEvent(payment_id=payment.id, from_status="pending", to_status="succeeded", source="pi")
        )
        session.commit()
        payment_id = payment.id

    code, out, err = remit("payment", "show", "pi_cli_1", drop=ONLY_DATABASE)
    assert code == 0, err
    assert out.startswith(f"payment {payment_id}: succeeded, $123.45 invoices")
    assert "....4242" in out and "invoice INV-77" in out and "applied" in out
    assert "pending -> succeeded" in out
    assert remit("payment", "show", str(payment_id))[1] == out

    assert remit("payment", "show", "pi_nope")[2].strip() == "remit: no payment pi_nope"
    assert "neither a payment id" in remit("payment", "show", "ch_1")[2]


def test_queues_shows_depth_age_and_the_clients_alive(broker):
    code, out, err = remit("run", "sweep-payments")
    assert code == 0, err
    code, out, err = remit("queues", drop=("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS", "DATABASE_URL"))
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("maintenance"))
    assert row.split()[1:5] == ["1", "0", "0", "0"] and row.endswith(" s")
    assert "broker client(s) by heartbeat" in out and "last beat" in out

    code, _, err = remit("queues", BROKER_URL="redis://127.0.0.1:1/0")
    assert code == 2 and err.startswith("remit: cannot reach Redis at redis://127.0.0.1:1/0")


def test_a_bulk_selection_asks_on_a_terminal_and_does_nothing_unless_told_yes(db, broker):
    jobs = [dead(db, n) for n in range(1, 4)]
    for answer, expected in (("n\n", "dead"), ("y\n", "discarded")):
        primary, terminal = os.openpty()
        with os.fdopen(primary, "wb", buffering=0) as keyboard:
            keyboard.write(answer.encode())
            done = subprocess.run(
                [sys.executable, "-m", "workers.cli", "failed", "discard", "--actor", "send_email"],
                stdin=terminal,
                capture_output=True,
                text=True,
                timeout=60,
            )
        os.close(terminal)
        assert {statuses(db)[job] for job in jobs} == {expected}, done.stderr
    assert "discard 3 failed job(s) (status dead, actor ~ 'send_email')? [y/N]" in done.stdout
    assert done.stdout.strip().endswith("discarded 3")
