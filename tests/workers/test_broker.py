"""Messages go through the real Redis broker to a real worker; final failures land in failed_jobs."""

import dramatiq
from sqlalchemy import select

from db.models import FailedJob
from tests.helpers import wait_until
from workers.broker import QUEUES, build_middleware

processed: list[int] = []


class BusinessOutcome(Exception):
    pass


@dramatiq.actor(queue_name="maintenance", max_retries=0, time_limit=5_000)
def record_number(n: int) -> None:
    processed.append(n)


@dramatiq.actor(queue_name="maintenance", max_retries=1, min_backoff=10, max_backoff=20, time_limit=5_000)
def always_broken(n: int) -> None:
    raise ValueError(f"broken invariant for {n}")


@dramatiq.actor(queue_name="maintenance", max_retries=3, time_limit=5_000, throws=(BusinessOutcome,))
def declines(n: int) -> None:
    raise BusinessOutcome("card declined")


def test_every_queue_of_the_design_is_declared(broker):
    assert set(QUEUES) <= broker.get_declared_queues()


def test_retries_middleware_runs_after_failed_job_recorder():
    names = [type(m).__name__ for m in build_middleware()]
    # after-hooks run in reverse order, so the recorder sees message.failed set by Retries
    assert names.index("RecordFailedJobs") < names.index("Retries")


def test_message_is_processed_by_a_real_worker(broker, worker):
    processed.clear()
    record_number.send(7)
    broker.join("maintenance", timeout=10_000)
    worker.join()
    assert processed == [7]


def test_final_failure_is_recorded_with_traceback(db, broker, worker):
    message = always_broken.send(42)
    wait_until(lambda: _failed(db, message.message_id) is not None, timeout_s=10.0)
    job = _failed(db, message.message_id)
    assert job.actor == "always_broken"
    assert job.queue == "maintenance"
    assert job.args == [42]
    assert "ValueError: broken invariant for 42" in job.error
    assert "Traceback" in job.traceback and "always_broken" in job.traceback
    assert job.status == "dead"


def test_business_outcome_in_throws_is_not_a_dead_letter(db, broker, worker):
    message = declines.send(1)
    broker.join("maintenance", timeout=10_000)
    worker.join()
    assert _failed(db, message.message_id) is None


def _failed(db, message_id):
    with db() as session:
        return session.scalar(select(FailedJob).where(FailedJob.message_id == message_id))


def test_an_amqp_url_builds_a_rabbitmq_broker_with_every_queue():
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from workers.broker import build_broker
    from workers.settings import load_settings

    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://app@db/remit",
            "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/",
            "STRIPE_API_KEY": "sk_test_x",
            "STRIPE_WEBHOOK_SECRETS": "whsec_x",
        }
    )
    rabbit = build_broker(settings)  # connects lazily: nothing is sent here
    assert isinstance(rabbit, RabbitmqBroker)
    assert set(QUEUES) <= rabbit.get_declared_queues()
    assert [type(m).__name__ for m in rabbit.middleware][-2:] == ["RecordFailedJobs", "Retries"]


def test_dead_letter_mirror_records_what_the_middleware_missed(db, broker, worker):
    from sqlalchemy import delete

    from tasks.flows.dead_letters import mirror_dead_letters

    message = always_broken.send(7)
    wait_until(lambda: _failed(db, message.message_id) is not None, timeout_s=10.0)
    worker.join()
    with db() as session:  # as if the database had been down when the job failed for good
        session.execute(delete(FailedJob))
        session.commit()
    assert mirror_dead_letters(broker, QUEUES) == {"seen": 1, "recorded": 1}
    job = _failed(db, message.message_id)
    assert (job.actor, job.args, job.status) == ("always_broken", [7], "dead")
    assert "ValueError: broken invariant for 7" in job.error and "Traceback" in job.traceback
    assert mirror_dead_letters(broker, QUEUES) == {"seen": 1, "recorded": 0}


def test_send_all_enqueues_every_message_once_in_one_pipeline_and_runs_the_enqueue_hooks(
    broker, worker, monkeypatch
):
    from workers.broker import send_all

    pipelines, hooks, direct = [], [], []
    real_pipeline, real_emit_before, real_emit_after = (
        broker.client.pipeline,
        broker.emit_before,
        broker.emit_after,
    )

    def counting_pipeline(*args, **kwargs):
        pipelines.append(kwargs)
        return real_pipeline(*args, **kwargs)

    def before(signal, *args, **kwargs):
        if signal == "enqueue":
            hooks.append(("before", args[0].message_id))
        return real_emit_before(signal, *args, **kwargs)

    def after(signal, *args, **kwargs):
        if signal == "enqueue":
            hooks.append(("after", args[0].message_id))
        return real_emit_after(signal, *args, **kwargs)

    monkeypatch.setattr(broker.client, "pipeline", counting_pipeline)
    monkeypatch.setattr(broker, "emit_before", before)
    monkeypatch.setattr(broker, "emit_after", after)
    monkeypatch.setattr(broker, "enqueue", lambda *a, **k: direct.append(a))
    processed.clear()
    messages = [record_number.message(n) for n in range(25)]
    send_all(messages)
    assert len(pipelines) == 1 and direct == []
    ids = [m.message_id for m in messages]
    assert hooks == [("before", i) for i in ids] + [("after", i) for i in ids]
    broker.join("maintenance", timeout=10_000)
    worker.join()
    assert sorted(processed) == list(range(25))


def test_send_all_of_one_message_or_none(broker, worker):
    from workers.broker import send_all

    processed.clear()
    send_all([])
    send_all([record_number.message(3)])
    broker.join("maintenance", timeout=10_000)
    worker.join()
    assert processed == [3]


def test_send_all_on_another_broker_enqueues_one_by_one_in_order(monkeypatch):
    from dramatiq.brokers.stub import StubBroker

    import workers.broker as remit_broker

    other = StubBroker()
    other.declare_queue("maintenance")
    monkeypatch.setattr(remit_broker.dramatiq, "get_broker", lambda: other)
    messages = [record_number.message(n) for n in range(3)]
    remit_broker.send_all(messages)
    queued = [other.queues["maintenance"].get_nowait() for _ in range(3)]
    assert [dramatiq.Message.decode(m).args for m in queued] == [(0,), (1,), (2,)]
    assert other.queues["maintenance"].empty()
