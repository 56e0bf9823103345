"""The README's benchmark table from a bench.all summary: each run's figures beside its baseline and target.

    .venv/bin/python -m bench.report [.remit/bench/all.json]

Prints Markdown: the machine probe of each run, then one row per bench and run with the figures its
targets judge, the baseline measured in the same run, and whether the targets were met. A report a
bench did not print (it failed) shows as such; nothing is filled in from elsewhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT


def _ms(timings: dict | None, key: str = "p95_ms") -> str:
    return "?" if not timings or timings.get(key) is None else f"{timings[key]:g}"


def _payments(r: dict) -> tuple[str, str, str]:
    phases = [name for name in ("rate_limited", "endpoint_limited") if name in r]
    used = ", ".join(f"{name} {r[name].get('budget_used', '?')}" for name in phases)
    failed = sum(r[name].get("failed_by_rate_limit", 0) for name in phases)
    unthrottled = r.get("unthrottled", {}).get("payments_per_second", "?")
    return (
        f"budget used: {used}; failed by rate limit {failed}",
        f"unthrottled {unthrottled} payments/s",
        ">= 0.95 of the tightest limit, 0 failed",
    )


def _ingest(r: dict) -> tuple[str, str, str]:
    return (
        f"{r.get('events_per_s')} events/s, receiver p99 {r.get('receiver_p99_ms')} ms, "
        f"ratio {r.get('ratio_to_noop')}",
        f"raw Dramatiq no-op {r.get('noop_messages_per_s')} messages/s",
        ">= 1,000/s, p99 < 25 ms, ratio >= 0.25",
    )


def _receiver(r: dict) -> tuple[str, str, str]:
    runs = r.get("by_concurrent_senders", {})
    shown = "; ".join(f"{n} senders {v['events_per_s']}/s p99 {v['p99_ms']} ms" for n, v in runs.items())
    return shown, "(none: bench.ingest has the end-to-end baseline)", "p99 < 25 ms at each"


def _slow_clients(r: dict) -> tuple[str, str, str]:
    return (
        f"{r.get('with_slow_clients', {}).get('events_per_s')} events/s beside 16 slow clients "
        f"(ratio {r.get('rate_ratio')})",
        f"alone {r.get('baseline', {}).get('events_per_s')} events/s",
        ">= 0.8 of alone, all accepted",
    )


def _pickup(r: dict) -> tuple[str, str, str]:
    remit = r.get("remit_money", {})
    raw, same = r.get("raw_dramatiq", {}), r.get("raw_dramatiq_same_timeout", {})
    return (
        f"p50 {_ms(remit, 'p50_ms')} / p95 {_ms(remit)} ms",
        f"raw Dramatiq p50 {_ms(raw, 'p50_ms')} ms; at the same poll timeout {_ms(same, 'p50_ms')} ms",
        "p50 < 50 ms",
    )


def _scheduled(r: dict) -> tuple[str, str, str]:
    bursts = r.get("bursts", [])
    shown = "; ".join(
        f"{b['budget_rps']}/s: {b.get('seconds_to_final')} s = {b.get('ratio_to_floor')}x, "
        f"failed by rate limit {b.get('failed_by_rate_limit')}"
        for b in bursts
    )
    floors = "; ".join(f"floor {b['floor_seconds']} s at {b['budget_rps']}/s" for b in bursts)
    return shown, floors, "<= 1.1x the floor, 0 failed"


def _sync(r: dict) -> tuple[str, str, str]:
    return f"{r.get('batch_s')} s", f"one per call {r.get('baseline_one_per_call_s')} s", "10,000 in <= 5 s"


def _pages(pages: dict) -> str:
    return ", ".join(f"{name} {_ms(timings)}" for name, timings in pages.items())


def _history(r: dict) -> tuple[str, str, str]:
    pages = {"first": r.get("first_page"), "deep": r.get("deep_page")}
    baseline = r.get("baseline", {})
    return (
        f"p95 ms: {_pages(pages)}; export {r.get('export', {}).get('rows_per_second')} rows/s",
        f"plain SELECT p95 {_ms(baseline.get('first_page'))} / {_ms(baseline.get('deep_page'))} ms, "
        f"{baseline.get('export', {}).get('rows_per_second')} rows/s",
        "page p95 < 20 ms, export > 20,000 rows/s",
    )


def _invoices(r: dict) -> tuple[str, str, str]:
    baseline = r.get("baseline", {})
    return (
        f"p95 ms: {_pages(r.get('pages', {}))}; export {r.get('export', {}).get('rows_per_second')} rows/s",
        f"SELECT of every invoice p50 {_ms(baseline.get('select_all_invoices'), 'p50_ms')} ms, "
        f"{baseline.get('rows_per_second')} rows/s",
        "page p95 < 20 ms, export > 20,000 rows/s",
    )


def _balances(r: dict) -> tuple[str, str, str]:
    recompute, overview = _ms(r.get("recompute_one_account")), _ms(r.get("account_overview"))
    return (
        f"pass {r.get('full_pass', {}).get('seconds')} s; recompute p95 {recompute} ms; "
        f"overview p95 {overview} ms; equal to baseline {r.get('figures_equal_baseline')}",
        f"one statement {r.get('baseline_one_statement', {}).get('seconds')} s",
        "pass < 10 s, recompute p95 < 5 ms, overview p95 < 10 ms",
    )


def _feed(r: dict) -> tuple[str, str, str]:
    return (
        f"{r.get('deliver_s')} s, in order {r.get('received_in_order')}",
        f"naive {r.get('baseline_naive_s')} s",
        "10,000 in <= 60 s, in order",
    )


FIGURES: dict[str, Callable[[dict], tuple[str, str, str]]] = {
    "payments": _payments,
    "ingest": _ingest,
    "receiver": _receiver,
    "slow_clients": _slow_clients,
    "pickup": _pickup,
    "scheduled": _scheduled,
    "sync": _sync,
    "history": _history,
    "invoices": _invoices,
    "balances": _balances,
    "feed": _feed,
}


def table(summary: dict) -> str:
    """The summary as Markdown: the probe per run, then a row per bench and run."""
    lines = ["| run | machine probe |", "|---|---|"]
    for run, probe in sorted(summary.get("machine_by_run", {}).items()):
        lines.append(
            f"| {run} | Python loop {probe.get('python_loop_ms')} ms, "
            f"PostgreSQL count {probe.get('postgres_series_ms')} ms |"
        )
    lines += [
        "",
        "| bench | run | measured | baseline (same run) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for result in summary.get("results", []):
        name, report = result["bench"], result.get("report")
        if report is None:
            lines.append(f"| {name} | {result['run']} | no report (exit {result['exit_status']}) | | | no |")
            continue
        figures = FIGURES.get(name, lambda r: ("(no table entry)", "", ""))(report)
        met = {True: "yes", False: "**no**", None: "(no target)"}[result.get("targets_met")]
        lines.append(f"| {name} | {result['run']} | {figures[0]} | {figures[1]} | {figures[2]} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("summary", nargs="?", type=Path, default=ROOT / ".remit" / "bench" / "all.json")
    args = parser.parse_args(argv)
    if not args.summary.exists():
        parser.error(f"{args.summary} does not exist: run `make bench` (or python -m bench.all) first")
    print(table(json.loads(args.summary.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
