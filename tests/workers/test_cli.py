"""The remit command says plainly what is wrong, in one line, without a traceback."""

import os
import subprocess
import sys

import pytest

from db.migrate import head_revision


def remit(*args, **env):
    environ = {**os.environ, **env}
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", *args], capture_output=True, text=True, env=environ, timeout=60
    )
    return result.returncode, result.stdout, result.stderr


def test_check_reports_database_schema_and_broker(migrated):
    code, out, err = remit("check")
    assert code == 0, out + err
    assert "ok      database  PostgreSQL" in out
    assert f"at migration {head_revision()} (latest)" in out
    assert "ok      broker    Redis" in out


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DATABASE_URL": "mysql://x@y/z"},
            "remit: DATABASE_URL is malformed: scheme 'mysql' is not postgresql://",
        ),
        ({"BROKER_URL": "kafka://k:9092"}, "remit: BROKER_URL is malformed: scheme 'kafka'"),
        ({"STRIPE_API_KEY": ""}, "remit: STRIPE_API_KEY is missing"),
    ],
)
def test_bad_settings_stop_with_one_line(env, expected):
    code, out, err = remit("check", **env)
    assert code == 2
    assert err.strip().startswith(expected)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreachable_servers_are_named(migrated):
    code, out, err = remit(
        "check", DATABASE_URL="postgresql://postgres@127.0.0.1:1/remit", BROKER_URL="redis://127.0.0.1:1/0"
    )
    assert code == 1
    assert "MISSING database  cannot connect to postgresql://postgres@127.0.0.1:1/remit" in out
    assert "start PostgreSQL or fix DATABASE_URL" in out
    assert "MISSING broker    cannot reach Redis at redis://127.0.0.1:1/0" in out


def test_database_behind_the_latest_migration_is_refused_then_upgraded(scratch_database):
    code, out, err = remit("check", DATABASE_URL=scratch_database)
    assert code == 1
    assert f"at migration none, code needs {head_revision()}: run `remit db upgrade`" in out

    code, _, err = remit("worker", "money", DATABASE_URL=scratch_database)
    assert code == 2 and "run `remit db upgrade`" in err and "Traceback" not in err

    code, out, err = remit("db", "upgrade", DATABASE_URL=scratch_database)
    assert code == 0, err
    assert f"database at migration {head_revision()}" in out
    code, out, _ = remit("check", DATABASE_URL=scratch_database)
    assert code == 0


@pytest.mark.parametrize("command", [["worker", "money"], ["clock"], ["webhooks"]])
def test_processes_refuse_to_start_without_a_broker(migrated, command):
    code, _, err = remit(*command, BROKER_URL="redis://127.0.0.1:1/0")
    assert code == 2 and "Traceback" not in err
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in err


def test_a_worker_poll_timeout_below_the_floor_is_refused_in_one_line():
    code, out, err = remit("worker", "money", "--poll-timeout-ms", "5")
    assert code == 2
    assert err.strip() == "remit: poll timeout 5 ms is below 10 ms: an idle worker would spin on Redis"
