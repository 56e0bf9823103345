"""The faults, each a small function in FAULTS, fired at seeded random moments and logged with their time."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.chaos import workload
from bench.chaos.kinds import FAULT_KINDS
from bench.chaos.processes import remit_argv
from bench.chaos.stack import WEBHOOK_SECRET, Stack
from sandbox.stripe_emulator.signing import signature_header

# A stale signature is this old: far past the receiver's five-minute tolerance.
STALE_SIGNATURE_S = 600
# Faults are spread over this share of the workload, so the last ones still meet traffic before the heal.
SPREAD = (0.03, 0.9)
# Stripe calls a fault hits: mostly the charge, sometimes the refund the dashboard makes.
STRIPE_PATHS = ("/v1/payment_intents", "/v1/payment_intents", "/v1/payment_intents", "/v1/refunds")


@dataclass
class Chaos:
    """What faults act on, and the log of what was done when."""

    stack: Stack
    work: workload.Workload
    started: float
    log: list[dict] = field(default_factory=list)
    webhook_options: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    smtp_lock: threading.Lock = field(default_factory=threading.Lock)
    hold_lock: threading.Lock = field(default_factory=threading.Lock)
    searched: set[int] = field(default_factory=set)  # payments the heal ran past the search window

    def record(self, kind: str, began: float, **detail) -> None:
        with self.lock:
            self.log.append(
                {
                    "kind": kind,
                    "at": datetime.fromtimestamp(began, UTC).isoformat(timespec="milliseconds"),
                    "t_s": round(began - self.started, 2),
                    "lasted_s": round(time.time() - began, 2),
                    **detail,
                }
            )

    def set_webhooks(self, **changes) -> None:
        """Change some delivery quirks, keeping those another fault has on."""
        with self.lock:
            self.webhook_options.update(changes)
            options = dict(self.webhook_options)
        self.stack.emulator.control("POST", "webhook_options", options)


def _payments_in_flight(chaos: Chaos, rng: random.Random) -> None:
    for _ in range(3):
        workload.pay_invoices(chaos.work, rng)


def worker_killed_mid_payment(chaos: Chaos, rng: random.Random) -> dict:
    threading.Thread(target=_payments_in_flight, args=(chaos, rng), daemon=True).start()
    time.sleep(rng.uniform(0.05, 0.6))
    down = rng.uniform(0.5, 3)
    chaos.stack.supervisor.kill_and_restart("worker-money", down)
    return {"down_s": round(down, 2)}


def worker_killed_mid_webhooks(chaos: Chaos, rng: random.Random) -> dict:
    _payments_in_flight(chaos, rng)
    time.sleep(rng.uniform(0.1, 1.0))
    down = rng.uniform(0.5, 3)
    chaos.stack.supervisor.kill_and_restart("worker-webhooks", down)
    return {"down_s": round(down, 2)}


def receiver_killed(chaos: Chaos, rng: random.Random) -> dict:
    down = rng.uniform(0.5, 6)
    chaos.stack.supervisor.kill_and_restart("webhooks", down)
    return {"down_s": round(down, 2)}


def redis_restarted_keeping_data(chaos: Chaos, rng: random.Random) -> dict:
    chaos.stack.redis.restart(keep_data=True)
    return {}


def redis_restarted_losing_data(chaos: Chaos, rng: random.Random) -> dict:
    chaos.stack.redis.restart(keep_data=False)
    return {}


def postgres_restarted_fast(chaos: Chaos, rng: random.Random) -> dict:
    chaos.stack.postgres.restart("fast")
    return {}


def postgres_restarted_immediate(chaos: Chaos, rng: random.Random) -> dict:
    chaos.stack.postgres.restart("immediate")
    return {}


def _stripe_fault(kind: str) -> Callable[[Chaos, random.Random], dict]:
    def inject(chaos: Chaos, rng: random.Random) -> dict:
        count, path = rng.randint(1, 3), rng.choice(STRIPE_PATHS)
        chaos.stack.emulator.control("POST", "faults", {"kind": kind, "count": count, "path": path})
        return {"count": count, "path": path}

    inject.__name__ = f"stripe_{kind}"
    return inject


def stripe_hang(chaos: Chaos, rng: random.Random) -> dict:
    """A call Stripe never answers in time: the client times out while the charge may still go through."""
    return _stripe_fault("hang")(chaos, rng)


def _webhook_window(name: str, value: object, low_s: float, high_s: float):
    def window(chaos: Chaos, rng: random.Random) -> dict:
        lasted = rng.uniform(low_s, high_s)
        chaos.set_webhooks(**{name: value})
        time.sleep(lasted)
        chaos.set_webhooks(**{name: {"duplicates": 1, "shuffle": False, "stale_seconds": 0}[name]})
        return {"window_s": round(lasted, 2)}

    return window


def _hold_then(chaos: Chaos, lasted: float, outcome: str) -> int:
    """Hold deliveries for `lasted` seconds, then release or drop them; one hold at a time, so each counts."""
    with chaos.hold_lock:
        chaos.set_webhooks(hold=True)
        time.sleep(lasted)
        chaos.set_webhooks(hold=False)
        return chaos.stack.emulator.control("POST", outcome, {})[
            "released" if outcome == "release_held" else "dropped"
        ]


def webhooks_held_then_released(chaos: Chaos, rng: random.Random) -> dict:
    lasted = rng.uniform(2, 10)
    return {"window_s": round(lasted, 2), "released": _hold_then(chaos, lasted, "release_held")}


def webhooks_never_delivered(chaos: Chaos, rng: random.Random) -> dict:
    lasted = rng.uniform(1, 5)
    return {"window_s": round(lasted, 2), "dropped": _hold_then(chaos, lasted, "drop_held")}


def stale_signature_replayed(chaos: Chaos, rng: random.Random) -> dict:
    """An event already delivered, sent again signed ten minutes ago: the receiver must refuse it."""
    events = chaos.stack.emulator.listed("events")
    if not events:
        return {"replayed": None}
    event = rng.choice(events)
    payload = json.dumps(event).encode()
    header = signature_header(payload, [WEBHOOK_SECRET], int(time.time()) - STALE_SIGNATURE_S)
    request = urllib.request.Request(
        f"http://127.0.0.1:{chaos.stack.webhook_port}/stripe/webhooks",
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        status = type(exc).__name__  # the receiver is down (another fault): nothing was accepted
    return {"replayed": event["id"], "status": status, "accepted": isinstance(status, int) and status < 300}


def smtp_down(chaos: Chaos, rng: random.Random) -> dict:
    lasted = rng.uniform(2, 10)
    with chaos.smtp_lock:  # two outages overlapping are one longer outage
        chaos.stack.smtp.stop()
        time.sleep(lasted)
        chaos.stack.smtp.start()
    return {"down_s": round(lasted, 2)}


def two_clocks(chaos: Chaos, rng: random.Random) -> dict:
    lasted = rng.uniform(5, 20)
    name = f"clock-extra-{rng.randrange(10**6)}"
    chaos.stack.supervisor.add(chaos.stack.extra_proc(name, remit_argv("clock")))
    time.sleep(lasted)
    chaos.stack.supervisor.remove(name)
    return {"window_s": round(lasted, 2)}


def burst_of_20(chaos: Chaos, rng: random.Random) -> dict:
    """Twenty submits at once: half racing for one invoice, half paying what they like."""
    streams = [random.Random(rng.random()) for _ in range(11)]
    calls = [lambda: workload.race_for_invoice(chaos.work, streams[0])]
    calls += [lambda r=r: workload.pay_invoices(chaos.work, r) for r in streams[1:]]
    workload._together(calls)
    return {}


# Fault kind -> function; `--faults a,b` picks from these names.
FAULTS: dict[str, Callable[[Chaos, random.Random], dict]] = {
    "worker_killed_mid_payment": worker_killed_mid_payment,
    "worker_killed_mid_webhooks": worker_killed_mid_webhooks,
    "receiver_killed": receiver_killed,
    "redis_restarted_keeping_data": redis_restarted_keeping_data,
    "redis_restarted_losing_data": redis_restarted_losing_data,
    "postgres_restarted_fast": postgres_restarted_fast,
    "postgres_restarted_immediate": postgres_restarted_immediate,
    "stripe_500": _stripe_fault("500"),
    "stripe_500_stored": _stripe_fault("500_stored"),
    "stripe_429": _stripe_fault("429"),
    "stripe_hang": stripe_hang,
    "stripe_response_lost": _stripe_fault("drop_after_commit"),
    "webhooks_duplicated": _webhook_window("duplicates", 3, 2, 10),
    "webhooks_shuffled": _webhook_window("shuffle", True, 2, 10),
    "webhooks_held_then_released": webhooks_held_then_released,
    "webhooks_never_delivered": webhooks_never_delivered,
    "webhooks_stale_signature": _webhook_window("stale_seconds", STALE_SIGNATURE_S, 1, 4),
    "stale_signature_replayed": stale_signature_replayed,
    "smtp_down": smtp_down,
    "two_clocks": two_clocks,
    "burst_of_20": burst_of_20,
}


assert tuple(FAULTS) == FAULT_KINDS, "bench.chaos.kinds names every fault, in this order"


def schedule(kinds: list[str], seed: int, seconds: float, repeats: int) -> list[tuple[float, str, int]]:
    """(offset in seconds, kind, its own seed) per firing; a kind's times do not depend on the other kinds."""
    plan = []
    for kind in kinds:
        rng = random.Random(f"{seed}:fault:{kind}")
        for _ in range(repeats):
            plan.append((rng.uniform(*SPREAD) * seconds, kind, rng.randrange(2**32)))
    return sorted(plan)


def inject(chaos: Chaos, plan: list[tuple[float, str, int]]) -> list[threading.Thread]:
    """Fire each planned fault at its moment on its own thread; returns the threads (join them to heal)."""
    fired = []
    for offset, kind, fault_seed in plan:
        delay = chaos.started + offset - time.time()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(
            target=_fire, args=(chaos, kind, fault_seed), name=f"fault-{kind}", daemon=True
        )
        thread.start()
        fired.append(thread)
    return fired


def _fire(chaos: Chaos, kind: str, fault_seed: int) -> None:
    began = time.time()
    try:
        detail = FAULTS[kind](chaos, random.Random(fault_seed))
    except Exception as exc:  # noqa: BLE001 - the injection itself failed (another fault in the way): say so
        detail = {"injection_error": f"{type(exc).__name__}: {exc}"}
    chaos.record(kind, began, **detail)
