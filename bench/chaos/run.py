"""One chaos run: stack up, seed, workload and faults together, heal, settle, check, report."""

from __future__ import annotations

import os
import random
import threading
import time
from datetime import UTC, datetime

from bench.chaos import faults, heal, invariants, workload
from bench.chaos.kinds import SECONDS_PER_REPEAT
from bench.chaos.seed import seed as seed_data
from bench.chaos.stack import DATABASE, Stack

# A shared machine: a few accounts and threads are enough to put every path under concurrent load.
ACCOUNTS = 6
INVOICES_PER_ACCOUNT = 80
THREADS = 4
# Quiescence takes seconds, up to a minute or two when a killed worker's messages come back after Dramatiq's
# 60 s heartbeat timeout; past this the run reports what is still busy.
SETTLE_TIMEOUT_S = float(os.environ.get("CHAOS_SETTLE_TIMEOUT_S", 300))


def run(
    stack: Stack,
    seconds: float,
    seed: int,
    kinds: list[str],
    planted: str | None = None,
    repeats: int | None = None,
) -> dict:
    """Run against a stack whose environment the process already has; always take the stack down."""
    try:
        stack.up()
        if planted:
            _plant(stack, planted)
        accounts = seed_data(random.Random(f"{seed}:seed"), ACCOUNTS, INVOICES_PER_ACCOUNT)
        stack.start_processes()
        ledger = workload.Ledger()
        work = workload.Workload(accounts, stack.emulator, ledger)
        chaos = faults.Chaos(stack, work, started=time.time())
        repeats = repeats or max(1, round(seconds / SECONDS_PER_REPEAT))
        plan = faults.schedule(kinds, seed, seconds, repeats)
        injector = threading.Thread(target=_inject_then_join, args=(chaos, plan), daemon=True)
        injector.start()
        workload.drive(work, seed, THREADS, until=chaos.started + seconds)
        _wait(injector)
        heal.heal(chaos)
        settled = heal.settle(chaos, seed, SETTLE_TIMEOUT_S)
        world = invariants.World(
            db=invariants.read_database(stack.postgres.url(DATABASE).replace("+psycopg", "")),
            stripe=invariants.read_stripe(stack.emulator),
            mail=invariants.read_mail(stack.smtp),
            answers=list(ledger.answers),
            faults=list(chaos.log),
            figures=invariants.recompute_figures(),
        )
        return _report(seconds, seed, kinds, planted, ledger, chaos, settled, world, stack) | {
            "repeats": repeats
        }
    finally:
        stack.down()


def _inject_then_join(chaos: faults.Chaos, plan) -> None:
    for thread in faults.inject(chaos, plan):
        thread.join()


def _wait(thread: threading.Thread) -> None:
    while thread.is_alive():
        thread.join(workload.JOIN_POLL_S)


# Defects put back on purpose, to show the checker catches them. Each is code that every Remit process the run
# starts imports first (a sitecustomize module ahead on PYTHONPATH): production code carries no such switch.
PLANTS = {
    # The charge goes to Stripe under a fresh key on every call instead of the attempt's own: a retry after a
    # lost answer or a timeout charges again.
    "no_idempotency_key": (
        "import uuid\n"
        "from tasks.gateways import stripe as gateway\n"
        "create = gateway.StripeGateway.create_payment_intent\n"
        "def planted(self, *, params, idempotency_key):\n"
        "    return create(self, params=params, idempotency_key=f'planted-{uuid.uuid4().hex}')\n"
        "gateway.StripeGateway.create_payment_intent = planted\n"
    ),
}


def _plant(stack: Stack, planted: str) -> None:
    directory = stack.directory / "plant"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(PLANTS[planted])
    stack.environ["PYTHONPATH"] = f"{directory}{os.pathsep}{stack.environ['PYTHONPATH']}"


def _report(seconds, seed, kinds, planted, ledger, chaos, settled, world, stack) -> dict:
    checks = invariants.check(world)
    by_kind = {kind: sum(1 for f in chaos.log if f["kind"] == kind) for kind in kinds}
    return {
        "run": {
            "seconds": seconds,
            "seed": seed,
            "faults": kinds,
            "planted": planted,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "requests": ledger.counts(),
        "requests_by_op": _by_op(ledger),
        "payments_by_status": _payments_by_status(world),
        "waiting_on_customer": [p["id"] for p in invariants.waiting_on_customer(world)],
        "faults_by_kind": by_kind,
        "faults": sorted(chaos.log, key=lambda fault: fault["t_s"]),
        "settle": settled | {"run_past_search_window": sorted(chaos.searched)},
        "invariants": checks,
        "violations": sum(c["violations"] for c in checks.values()) + (0 if settled["quiet"] else 1),
        "dead_letters": world.db["dead_letters"],
        "process_exits": {name: proc.exits for name, proc in stack.supervisor.procs.items() if proc.exits},
        "harness_notes": ledger.notes[:20],
    }


def _by_op(ledger) -> dict:
    table = {}
    for answer in ledger.answers:
        row = table.setdefault(answer.op, {"accepted": 0, "refused": 0, "error": 0})
        row[answer.outcome] += 1
    return table


def _payments_by_status(world) -> dict:
    counts = {}
    for payment in world.db["payments"]:
        counts[payment["status"]] = counts.get(payment["status"], 0) + 1
    return counts
