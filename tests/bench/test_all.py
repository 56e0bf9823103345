"""bench.all: every bench runs whatever another missed, each report is read whole, the exit says it all."""

from __future__ import annotations

import json
import os

import pytest

from bench import all as benches


def test_the_report_is_the_last_json_object_printed_whether_indented_or_on_one_line():
    indented = json.dumps({"target_met": True, "pages": {"first": 1}}, indent=2)
    assert benches.last_json("warming up\n{not json\n" + indented + "\n") == {
        "target_met": True,
        "pages": {"first": 1},
    }
    assert benches.last_json('{"a": 1}\n{"targets_met": {"p99": false}}\n') == {"targets_met": {"p99": False}}
    assert benches.last_json("Traceback (most recent call last):\n  boom\n") is None


def test_targets_are_read_under_either_name_and_a_bench_with_none_reports_figures_only():
    assert benches.targets_met({"target_met": False}) is False
    assert benches.targets_met({"targets_met": {"events_per_s": True, "receiver_p99_ms": False}}) is False
    assert benches.targets_met({"targets_met": {"events_per_s": True}}) is True
    assert benches.targets_met({"events_per_s": 2300}) is None
    assert benches.targets_met(None) is None


def test_a_missed_target_does_not_stop_the_others_and_fails_the_whole(monkeypatch, tmp_path, capsys):
    ran = []

    def fake(name):
        ran.append(name)
        report = {"target_met": name != "scheduled"} if name != "receiver" else {"events_per_s": 1}
        return {
            "bench": name,
            "exit_status": 0,
            "seconds": 0.1,
            "targets_met": benches.targets_met(report),
            "report": report,
        }

    monkeypatch.setattr(benches, "run_one", fake)
    probes = iter([{"python_loop_ms": 300.0}, {"python_loop_ms": 310.0}])
    monkeypatch.setattr(benches, "machine_speed", lambda: next(probes))
    out = tmp_path / "all.json"
    status = benches.main(["--runs", "2", "--only", "scheduled", "receiver", "balances", "--out", str(out)])

    assert status == 1
    assert ran == ["scheduled", "receiver", "balances"] * 2
    summary = json.loads(out.read_text())
    assert summary["all_passed"] is False
    # The machine was probed before each run, and the summary keeps each probe by run.
    assert summary["machine_by_run"] == {"1": {"python_loop_ms": 300.0}, "2": {"python_loop_ms": 310.0}}
    assert [(r["run"], r["bench"], benches.passed(r)) for r in summary["results"]][:3] == [
        (1, "scheduled", False),
        (1, "receiver", True),
        (1, "balances", True),
    ]
    assert "target missed" in capsys.readouterr().err


def test_every_bench_passing_exits_zero_and_a_bench_without_a_report_does_not(monkeypatch, tmp_path):
    def fine(name):
        return {
            "bench": name,
            "exit_status": 0,
            "seconds": 0.1,
            "targets_met": True,
            "report": {"target_met": True},
        }

    monkeypatch.setattr(benches, "run_one", fine)
    monkeypatch.setattr(benches, "machine_speed", dict)
    assert benches.main(["--only", "invoices", "--out", str(tmp_path / "a.json")]) == 0

    def crashed(name):
        return {"bench": name, "exit_status": 1, "seconds": 0.1, "targets_met": None, "report": None}

    monkeypatch.setattr(benches, "run_one", crashed)
    monkeypatch.setattr(benches, "machine_speed", dict)
    assert benches.main(["--only", "invoices", "--out", str(tmp_path / "b.json")]) == 1


def test_the_machine_probe_times_python_and_postgresql_and_says_when_postgresql_cannot_be_reached():
    from bench.common import machine_speed
    from db.session import libpq_url

    base = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)[0]
    measured = machine_speed(f"{base}/postgres")
    assert measured["python_loop_ms"] > 0 and measured["postgres_series_ms"] > 0
    assert measured["cpus"] == os.cpu_count()
    unreachable = machine_speed("postgresql://nobody@127.0.0.1:9/none")
    assert unreachable["python_loop_ms"] > 0 and unreachable["postgres_series_ms"] is None


def test_a_run_stopped_part_way_keeps_every_report_it_finished(monkeypatch, tmp_path):
    def stopped_at_the_second(name):
        if name == "balances":
            raise KeyboardInterrupt
        return {
            "bench": name,
            "exit_status": 0,
            "seconds": 1.0,
            "targets_met": True,
            "report": {"target_met": True},
        }

    monkeypatch.setattr(benches, "run_one", stopped_at_the_second)
    monkeypatch.setattr(benches, "machine_speed", dict)
    out = tmp_path / "all.json"
    with pytest.raises(KeyboardInterrupt):
        benches.main(["--only", "invoices", "balances", "--out", str(out)])
    summary = json.loads(out.read_text())
    assert summary["finished_at"] is None
    assert [(r["bench"], r["targets_met"]) for r in summary["results"]] == [("invoices", True)]
    assert not out.with_name("all.json.part").exists()
