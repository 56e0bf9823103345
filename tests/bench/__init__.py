"""Shared by the bench tests: a database bench run the way `make bench` runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_own_database_bench(name: str, arguments: list[str], timeout: float = 110) -> tuple[int, dict]:
    """python -m bench.NAME with arguments, on its own database beside the suite's (<suite db>_bench_NAME),
    with no DATABASE_URL or BROKER_URL in its environment (`make bench` sets none); (exit status, report).

    A subprocess: a bench reads settings once, and this test process has read the suite's already.
    """
    from db.session import libpq_url
    from tests.conftest import ROOT

    base, database = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)
    arguments = [*arguments, "--database", f"{database}_bench_{name}"]
    arguments += ["--admin-url", f"{base}/postgres", "--redis-url", os.environ["BROKER_URL"]]
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *arguments],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout)
