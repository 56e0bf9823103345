"""The worker launcher: each Procfile group runs its own queues with its own prefetch."""

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
