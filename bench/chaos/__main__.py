"""`python -m bench.chaos --seconds N --seed S [--faults a,b]`: a run, a JSON report, exit 1 on violation."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys

from bench.chaos.kinds import FAULT_KINDS, SECONDS_PER_REPEAT
from bench.chaos.processes import ROOT
from bench.chaos.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60, help="how long the workload and faults run")
    parser.add_argument("--seed", type=int, default=1, help="seeds the workload, the data and the faults")
    parser.add_argument(
        "--faults",
        default="all",
        help=f"comma-separated kinds, 'all' or 'none' (kinds: {', '.join(FAULT_KINDS)})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"firings of each fault kind (default: one per {SECONDS_PER_REPEAT} s, at least one)",
    )
    parser.add_argument(
        "--plant",
        default=None,
        choices=["no_idempotency_key"],
        help="put back a known defect in every Remit process, to see the checker catch it",
    )
    parser.add_argument("--out", default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    kinds = _kinds(parser, args.faults)
    signal.signal(signal.SIGTERM, _interrupted)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    stack = Stack(ROOT / ".remit" / "chaos" / f"seed-{args.seed}-{os.getpid()}")
    # Remit's modules read their settings when first imported: the run's environment goes in first.
    os.environ.update(stack.environ)
    from bench.chaos.run import run

    report = run(stack, args.seconds, args.seed, kinds, args.plant, args.repeats)
    if report["violations"]:
        report["logs"] = str(stack.directory)  # each process's log, the emulator's and PostgreSQL's, kept
    else:
        shutil.rmtree(stack.directory, ignore_errors=True)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text)
    return 1 if report["violations"] else 0


def _interrupted(signum, frame) -> None:
    """SIGTERM as Ctrl-C: the run unwinds and stops every server and process it started."""
    raise KeyboardInterrupt


def _kinds(parser: argparse.ArgumentParser, spec: str) -> list[str]:
    if spec == "all":
        return list(FAULT_KINDS)
    if spec == "none":
        return []
    kinds = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        parser.error(f"unknown fault kind(s): {', '.join(unknown)}")
    return kinds


if __name__ == "__main__":
    sys.exit(main())
