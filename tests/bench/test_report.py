"""bench.report: a bench.all summary as the README's table, each figure from the report it came from."""

from __future__ import annotations

import json

import pytest

from bench import all as benches
from bench import report


def test_every_bench_that_make_bench_runs_has_a_row_of_its_own():
    assert set(report.FIGURES) == set(benches.BENCHES)


def test_the_table_shows_the_probe_each_run_and_each_report_with_its_baseline_and_verdict():
    scheduled = {
        "bursts": [
            {
                "budget_rps": 100,
                "seconds_to_final": 153.3,
                "ratio_to_floor": 1.533,
                "failed_by_rate_limit": 0,
                "floor_seconds": 100.0,
            }
        ]
    }
    ingest = {
        "events_per_s": 671.8,
        "receiver_p99_ms": 26.24,
        "ratio_to_noop": 0.32,
        "noop_messages_per_s": 2101.5,
    }
    summary = {
        "machine_by_run": {"1": {"python_loop_ms": 512.3, "postgres_series_ms": 180.1}},
        "results": [
            {"bench": "scheduled", "run": 1, "exit_status": 0, "targets_met": False, "report": scheduled},
            {"bench": "ingest", "run": 1, "exit_status": 0, "targets_met": True, "report": ingest},
            {"bench": "sync", "run": 1, "exit_status": 1, "targets_met": None, "report": None},
        ],
    }
    lines = report.table(summary).splitlines()
    assert "| 1 | Python loop 512.3 ms, PostgreSQL count 180.1 ms |" in lines
    rows = [line for line in lines if line.startswith(("| scheduled", "| ingest", "| sync"))]
    assert rows[0] == (
        "| scheduled | 1 | 100/s: 153.3 s = 1.533x, failed by rate limit 0 | floor 100.0 s at 100/s "
        "| <= 1.1x the floor, 0 failed | **no** |"
    )
    assert "671.8 events/s, receiver p99 26.24 ms, ratio 0.32" in rows[1]
    assert "raw Dramatiq no-op 2101.5 messages/s" in rows[1] and rows[1].endswith("| yes |")
    assert rows[2] == "| sync | 1 | no report (exit 1) | | | no |"


def test_a_summary_that_does_not_exist_is_refused_by_name(tmp_path, capsys):
    missing = tmp_path / "all.json"
    with pytest.raises(SystemExit) as refused:
        report.main([str(missing)])
    assert refused.value.code == 2
    assert f"{missing} does not exist" in capsys.readouterr().err


def test_main_prints_the_table_of_the_summary_given(tmp_path, capsys):
    path = tmp_path / "all.json"
    path.write_text(json.dumps({"machine_by_run": {}, "results": []}))
    assert report.main([str(path)]) == 0
    assert "| bench | run | measured | baseline (same run) | target | met |" in capsys.readouterr().out
