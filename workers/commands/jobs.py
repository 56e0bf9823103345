"""`remit run NAME`: send one of the clock's maintenance jobs now, as the clock would."""

from __future__ import annotations

import argparse

from schedules.schedule import SCHEDULE

JOBS = {job.name: job for job in SCHEDULE}


def job_named(given: str) -> str:
    """The schedule's job by its name or by the start of exactly one name (`reconcile` = reconcile-stripe)."""
    found = [name for name in JOBS if name == given] or [name for name in JOBS if name.startswith(given)]
    if len(found) != 1:
        known = ", ".join(JOBS)
        raise argparse.ArgumentTypeError(
            f"{given!r} {'names several jobs' if found else 'is no job'}; the jobs are: {known}"
        )
    return found[0]


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
        type=job_named,
        metavar="JOB",
        help="a job, or the start of one's name; one of: "
        + ", ".join(f"{job.name} (every {job.every_seconds} s)" for job in SCHEDULE),
    )
