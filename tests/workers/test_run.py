"""The worker launcher: each Procfile group runs its own queues with its own prefetch and poll timeout."""

from __future__ import annotations

import os

import pytest

from workers import run


@pytest.mark.parametrize(
    ("group", "threads", "queues", "prefetch"),
    [
        ("webhooks", 4, ["webhooks"], "64"),
        ("money", 4, ["payments", "ach"], "4"),
        ("bulk", 2, ["emails", "balances", "maintenance"], "4"),
    ],
)
def test_a_group_runs_its_queues_with_its_prefetch(monkeypatch, group, threads, queues, prefetch):
    launched = []
    monkeypatch.setattr(os, "execv", lambda path, argv: launched.append(argv))
    monkeypatch.setenv("dramatiq_queue_prefetch", "1")
    run.run_worker(group, processes=2, threads=threads)
    (argv,) = launched
    assert argv[argv.index("--queues") + 1 :] == queues
    assert argv[argv.index("--threads") + 1] == str(threads)
    assert os.environ["dramatiq_queue_prefetch"] == prefetch


def test_every_queue_has_exactly_one_group_besides_all():
    grouped = [q for name, queues in run.GROUPS.items() if name != "all" for q in queues]
    assert sorted(grouped) == sorted(run.GROUPS["all"])


def _restore_worker_environ(monkeypatch) -> list:
    """No exec; the launcher's environment is put back after the test. Returns the argv launched."""
    launched = []
    monkeypatch.setattr(os, "execv", lambda path, argv: launched.append(argv))
    monkeypatch.setenv("dramatiq_worker_timeout", "1000")
    monkeypatch.setenv("dramatiq_queue_prefetch", "1")
    return launched


@pytest.mark.parametrize(("group", "timeout_ms"), [("money", "100"), ("webhooks", "100"), ("bulk", "1000")])
def test_a_group_polls_an_idle_broker_at_its_own_timeout(monkeypatch, group, timeout_ms):
    _restore_worker_environ(monkeypatch)
    run.run_worker(group, processes=1, threads=4)
    assert os.environ["dramatiq_worker_timeout"] == timeout_ms


def test_the_poll_timeout_can_be_set_for_one_run(monkeypatch):
    _restore_worker_environ(monkeypatch)
    run.run_worker("bulk", processes=1, threads=4, poll_timeout_ms=250)
    assert os.environ["dramatiq_worker_timeout"] == "250"


def test_a_poll_timeout_below_the_floor_is_refused(monkeypatch):
    launched = _restore_worker_environ(monkeypatch)
    with pytest.raises(ValueError, match="poll timeout 5 ms"):
        run.run_worker("money", processes=1, threads=4, poll_timeout_ms=5)
    assert launched == [] and os.environ["dramatiq_worker_timeout"] == "1000"


def test_dramatiq_workers_take_the_poll_timeout_from_the_environment():
    # The launcher hands the timeout over in the environment: the installed Dramatiq must read it there.
    import subprocess
    import sys

    environ = dict(os.environ, dramatiq_worker_timeout=str(run.POLL_TIMEOUT_MS["money"]))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import dramatiq.worker as w; print(w.Worker.__init__.__kwdefaults__['worker_timeout'])",
        ],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str(run.POLL_TIMEOUT_MS["money"])
