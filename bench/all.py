"""Every bench, one after another (and --runs times over), with one summary: each target met or not, per run.

    .venv/bin/python -m bench.all [--runs 3] [--only scheduled balances] [--out .remit/bench/all.json]

Each bench runs as its own process (`python -m bench.NAME`, its progress on stderr as it goes) and prints
one JSON report; a bench that misses its target does not stop the others. Before each run a probe times a
Python loop and a PostgreSQL count (bench.common.machine_speed): figures are read beside the machine's
speed. The summary goes to stderr as a table (bench, run, seconds, targets met) and to --out as JSON with
every report whole, rewritten after each bench (finished_at stays null until the last). Exits 1 when any
run of any bench missed a target, failed, or printed no report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT, log, machine_speed

# The order `make bench` has always run them in: the Stripe-bound end-to-end benches first.
BENCHES = (
    "payments",
    "ingest",
    "receiver",
    "slow_clients",
    "pickup",
    "scheduled",
    "sync",
    "history",
    "balances",
    "feed",
    "invoices",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.all", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="times over every bench (consecutive runs)")
    parser.add_argument("--only", nargs="+", choices=BENCHES, default=None, help="these benches only")
    parser.add_argument(
        "--out", type=Path, default=ROOT / ".remit" / "bench" / "all.json", help="where the summary goes"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    return args


def run_one(name: str) -> dict:
    """One bench as its own process: its report, exit status, time, and whether its targets were met."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}"], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False
    )
    seconds = round(time.monotonic() - started, 1)
    report = last_json(done.stdout)
    return {
        "bench": name,
        "exit_status": done.returncode,
        "seconds": seconds,
        "targets_met": targets_met(report),
        "report": report,
    }


def last_json(text: str) -> dict | None:
    """The last JSON object a bench printed, on one line or indented (a bench prints one, last)."""
    lines = text.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            try:
                found = json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
            return found if isinstance(found, dict) else None
    return None


def targets_met(report: dict | None) -> bool | None:
    """What the report says of its targets (benches name it target_met or targets_met); None when it
    has no target of its own (every bench here has one; a new bench might not)."""
    if report is None:
        return None
    for key in ("target_met", "targets_met"):
        if key in report:
            value = report[key]
            return all(value.values()) if isinstance(value, dict) else bool(value)
    return None


def passed(result: dict) -> bool:
    return result["report"] is not None and result["exit_status"] == 0 and result["targets_met"] is not False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.only or BENCHES
    results, machine = [], {}
    for run in range(1, args.runs + 1):
        machine[run] = machine_speed()
        log(f"run {run}/{args.runs}: machine probe {machine[run]}")
        for index, name in enumerate(names, start=1):
            log(f"run {run}/{args.runs}, bench {index}/{len(names)}: {name}")
            results.append({"run": run, **run_one(name)})
            last = results[-1]
            log(f"{name}: {_verdict(last)} in {last['seconds']} s")
            # Written after every bench: a long run stopped part way keeps every report it finished.
            _write_summary(args, machine, results, finished=False)
    summary = _write_summary(args, machine, results, finished=True)
    print(_table(results), file=sys.stderr)
    log(f"summary with every report: {args.out}")
    return 0 if summary["all_passed"] else 1


def _write_summary(args: argparse.Namespace, machine: dict, results: list[dict], finished: bool) -> dict:
    summary = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds") if finished else None,
        "runs": args.runs,
        "all_passed": all(passed(r) for r in results),
        "machine_by_run": machine,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".part")
    partial.write_text(json.dumps(summary, indent=2))
    partial.replace(args.out)
    return summary


def _verdict(result: dict) -> str:
    if result["report"] is None:
        return f"no report (exit {result['exit_status']})"
    if result["targets_met"] is None:
        return "figures only" if result["exit_status"] == 0 else f"failed (exit {result['exit_status']})"
    return "targets met" if passed(result) else "target missed"


def _table(results: list[dict]) -> str:
    lines = [f"{'bench':<14}{'run':>4}{'seconds':>10}  verdict"]
    lines += [f"{r['bench']:<14}{r['run']:>4}{r['seconds']:>10}  {_verdict(r)}" for r in results]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
