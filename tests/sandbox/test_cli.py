"""`python -m sandbox` says plainly what is wrong, in one line, without a traceback."""

import os
import subprocess
import sys

import psycopg
import pytest

from db.session import libpq_url
from sandbox.cli import build_parser, cmd_dev, cmd_erp, cmd_seed, cmd_smtp, cmd_stripe


def run(module, *args, **env):
    environ = {**os.environ, **env}
    result = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=environ, timeout=60
    )
    return result.returncode, result.stdout, result.stderr


def sandbox(*args, **env):
    return run("sandbox", *args, **env)


def remit(*args, **env):
    return run("workers.cli", *args, **env)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["dev"], cmd_dev),
        (["stripe", "--port", "12111"], cmd_stripe),
        (["smtp"], cmd_smtp),
        (["seed"], cmd_seed),
        (["erp", "--port", "8003"], cmd_erp),
    ],
)
def test_each_sandbox_command_reaches_its_function(argv, command):
    assert build_parser().parse_args(argv).fn is command


def test_remit_no_longer_runs_the_sandbox():
    code, _, err = remit("sandbox", "stripe")
    assert code == 2 and "invalid choice: 'sandbox'" in err


def test_seed_demo_without_stripe_says_so_and_seeds_nothing(scratch_database):
    assert remit("db", "upgrade", DATABASE_URL=scratch_database)[0] == 0
    code, out, err = sandbox("seed", DATABASE_URL=scratch_database, STRIPE_API_BASE="http://127.0.0.1:9")
    assert code == 2 and "Traceback" not in err
    assert "need Stripe at http://127.0.0.1:9" in err and "Nothing was seeded" in err
    with psycopg.connect(libpq_url(scratch_database)) as connection:
        assert connection.execute("SELECT count(*) FROM sellers").fetchone()[0] == 0


def test_seed_demo_loads_the_demo_once(scratch_database, emulator):
    env = {"DATABASE_URL": scratch_database, "STRIPE_API_BASE": emulator.url}
    assert remit("db", "upgrade", **env)[0] == 0
    code, out, err = sandbox("seed", "--if-empty", **env)
    assert code == 0, err
    assert "3 accounts, 31 invoices (through sync_invoices), 6 saved methods" in out
    assert "already present" in sandbox("seed", "--if-empty", **env)[1]
    with psycopg.connect(libpq_url(scratch_database)) as connection:
        kinds = dict(
            connection.execute("SELECT kind, count(*) FROM payment_methods GROUP BY kind").fetchall()
        )
        children = connection.execute("SELECT count(*) FROM invoices WHERE parent_id IS NOT NULL").fetchone()[
            0
        ]
        overdue = connection.execute("SELECT count(*) FROM invoices WHERE due_on < current_date").fetchone()[
            0
        ]
        discounted = connection.execute("SELECT count(*) FROM invoices WHERE discount_minor > 0").fetchone()[
            0
        ]
        added = connection.execute(
            "SELECT count(*) FROM ledger_events WHERE type = 'payment_method.added'"
        ).fetchone()[0]
    assert kinds == {"card": 5, "us_bank_account": 1} and added == 6
    assert children == 3 and overdue > 0 and discounted > 0
    assert len(emulator.customers()) == 3
