"""`remit run NAME`: send one of the clock's maintenance jobs now, as the clock would."""

from __future__ import annotations

import argparse

from schedules.schedule import SCHEDULE

JOBS = {job.name: job for job in SCHEDULE}


def cmd_run(args: argparse.Namespace) -> int:
    from tasks.flows.messages import ACTOR_QUEUES, send_now
    from workers.cli import require_broker

    job = JOBS[args.job]
    require_broker()
    send_now(job.actor, [()])
    print(f"sent {job.actor} to the {ACTOR_QUEUES[job.actor]} queue; a bulk worker runs it")
    return 0


def register(sub) -> None:
    from workers.cli import BROKER, command

    run = command(
        sub, "run", "send a maintenance job now (the clock also sends each on its schedule)", cmd_run, BROKER
    )
    run.add_argument(
        "job",
        choices=list(JOBS),
        metavar="JOB",
        help="one of: " + ", ".join(f"{job.name} (every {job.every_seconds} s)" for job in SCHEDULE),
    )
