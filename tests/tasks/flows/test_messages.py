"""The one place that sends messages: its actor table is the broker's, and nothing goes out before commit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tasks.flows import messages
from tests.helpers import queued_messages

ROOT = Path(__file__).resolve().parents[3]
ACTOR_MODULES = {
    "tasks.payments",
    "tasks.webhooks",
    "tasks.ach",
    "tasks.emails",
    "tasks.balances",
    "tasks.maintenance",
    "workers.actors",
}


def test_the_actor_table_is_every_registered_actor_with_its_queue(broker):
    import workers.actors  # noqa: F401  (registers every actor)

    actors = [broker.get_actor(name) for name in broker.get_declared_actors()]
    # Other tests declare actors of their own on the same broker: only Remit's queue modules count.
    registered = {
        actor.actor_name: actor.queue_name for actor in actors if actor.fn.__module__.startswith("tasks.")
    }
    assert messages.ACTOR_QUEUES == registered


@pytest.mark.parametrize("actor_name", sorted(messages.ACTOR_QUEUES))
def test_a_message_built_by_name_is_the_one_the_actor_builds(broker, actor_name):
    import workers.actors  # noqa: F401

    built, expected = messages.message(actor_name, 7), broker.get_actor(actor_name).message(7)
    assert (built.queue_name, built.actor_name, list(built.args), built.kwargs, built.options) == (
        expected.queue_name,
        expected.actor_name,
        list(expected.args),
        expected.kwargs,
        expected.options,
    )


def test_an_unknown_actor_name_is_refused_before_anything_is_sent(broker):
    with pytest.raises(KeyError):
        messages.message("execute_paymnet", 1)


def test_messages_owed_by_a_transaction_go_out_together_after_commit_and_never_after_rollback(db, broker):
    with db() as session:
        messages.send_after_commit(session, "send_email", [(1,), (2,)])
        session.rollback()
    assert queued_messages(broker, "emails") == []
    with db() as session:
        messages.send_after_commit(session, "send_email", [(3,), (4,)])
        messages.send_after_commit(session, "send_email", [])
        assert queued_messages(broker, "emails") == []  # nothing before the commit
        session.commit()
    assert sorted(m.args[0] for m in queued_messages(broker, "emails")) == [3, 4]


def test_no_module_of_tasks_or_db_imports_an_actor_module():
    offenders = []
    for path in [*ROOT.glob("tasks/**/*.py"), *ROOT.glob("db/**/*.py")]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module in ACTOR_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            offenders += [f"{module}: {name}" for name in names if name in ACTOR_MODULES]
    assert offenders == []
