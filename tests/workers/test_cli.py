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


@pytest.fixture()
def smtp():
    from sandbox.smtp_capture import SmtpCapture

    with SmtpCapture() as capture:
        yield capture


def test_check_reports_database_schema_broker_stripe_smtp_and_secrets(migrated, emulator, smtp):
    token = "a-dashboard-token-of-its-own"
    code, out, err = remit("check", STRIPE_API_BASE=emulator.url, SMTP_URL=smtp.url, DASHBOARD_TOKEN=token)
    assert code == 0, out + err
    assert "ok      database  PostgreSQL" in out
    assert f"at migration {head_revision()} (latest)" in out
    assert "ok      broker    Redis" in out
    assert f"ok      stripe    key sk_test_... accepted at {emulator.url} (test mode)" in out
    assert f"ok      smtp      {smtp.url} answered (remit-smtp-capture" in out
    assert "ok      webhooks  2 signing secret(s) of the whsec_ shape" in out
    assert "ok      dashboard 1 operator(s): admin (admin)" in out
    assert out.strip().endswith("all good")


def test_check_names_a_refused_key_a_silent_mail_server_and_weak_secrets(migrated, emulator):
    code, out, _ = remit(
        "check",
        STRIPE_API_BASE=emulator.url,
        STRIPE_API_KEY="sk_test_not_the_emulators",
        SMTP_URL="smtp://127.0.0.1:9",
        STRIPE_WEBHOOK_SECRETS="whsec_replace_me",
        DASHBOARD_TOKEN="",
        DASHBOARD_OPERATORS="",
    )
    assert code == 1
    assert "MISSING stripe" in out and "the key was refused (401)" in out and "fix STRIPE_API_KEY" in out
    assert "MISSING smtp      smtp://127.0.0.1:9 did not answer" in out and "fix SMTP_URL" in out
    assert "MISSING webhooks  STRIPE_WEBHOOK_SECRETS: whsec_repl... is not a whsec_ signing secret" in out
    assert "MISSING dashboard neither DASHBOARD_TOKEN nor DASHBOARD_OPERATORS is set" in out
    assert out.strip().endswith("4 problem(s) found")


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
    assert f"ok      schema    at migration {head_revision()} (latest)" in out


@pytest.mark.parametrize("command", [["worker", "money"], ["clock"], ["webhooks"]])
def test_processes_refuse_to_start_without_a_broker(migrated, command):
    code, _, err = remit(*command, BROKER_URL="redis://127.0.0.1:1/0")
    assert code == 2 and "Traceback" not in err
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in err


def test_a_worker_poll_timeout_below_the_floor_is_refused_in_one_line():
    code, out, err = remit("worker", "money", "--poll-timeout-ms", "5")
    assert code == 2
    assert err.strip() == "remit: poll timeout 5 ms is below 10 ms: an idle worker would spin on Redis"


def _actions(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from ((f"{name} {where}", a) for where, a in _actions(child))
        else:
            yield parser.prog, action


def test_every_command_and_option_has_help_and_shows_its_default():
    from workers.cli import build_parser

    parser = build_parser()
    missing = [f"{where} {a.dest}" for where, a in _actions(parser) if not a.help]
    assert missing == []
    helps = {a.dest: parser_help for _, a in _actions(parser) for parser_help in [a.help]}
    assert helps["limit"] == "show at most this many"
    code, out, _ = remit("failed", "list", "--help")
    assert code == 0 and "show at most this many (default: 50)" in out and "(default: dead)" in out
    assert "(default: None)" not in out


def test_version_is_printed():
    from importlib.metadata import version

    code, out, _ = remit("--version")
    assert code == 0 and out.strip() == f"remit {version('remit')}"


def test_db_upgrade_needs_only_the_database_url(scratch_database):
    environ = {k: v for k, v in os.environ.items() if k not in ("BROKER_URL", "STRIPE_API_KEY")}
    environ.update(DATABASE_URL=scratch_database, STRIPE_WEBHOOK_SECRETS="not-a-secret")
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "db", "upgrade"], capture_output=True, text=True, env=environ
    )
    assert result.returncode == 0, result.stderr
    assert f"database at migration {head_revision()}" in result.stdout
    environ.pop("DATABASE_URL")
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "db", "upgrade"], capture_output=True, text=True, env=environ
    )
    assert result.returncode == 2 and result.stderr.startswith("remit: DATABASE_URL is missing")


def test_dot_env_is_read_under_the_environment_and_env_file_over_it(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environ = {**os.environ, "PYTHONPATH": root}
    environ.pop("STRIPE_API_KEY")
    (tmp_path / ".env").write_text("STRIPE_API_KEY=pk_from_dotenv\nBROKER_URL=kafka://ignored:1\n")
    (tmp_path / "other.env").write_text("BROKER_URL=redis://127.0.0.1:1/0\n")

    def run(*args):
        done = subprocess.run(
            [sys.executable, "-m", "workers.cli", *args],
            capture_output=True,
            text=True,
            env=environ,
            cwd=tmp_path,
        )
        return done.returncode, done.stderr

    # .env fills what the environment lacks (the key, malformed here, so check names it) and no more.
    assert run("check") == (2, "remit: STRIPE_API_KEY is malformed: it must start with sk_ or rk_\n")
    environ["STRIPE_API_KEY"] = "sk_test_environment"
    code, err = run("--env", "other.env", "queues")
    assert code == 2 and "redis://127.0.0.1:1/0" in err  # the named file wins over the environment
    assert run("--env", "missing.env", "queues") == (2, "remit: --env missing.env: no such file\n")
