"""The `/_emulator` control API, the state file and the `python -m sandbox.stripe_emulator` command."""

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import stripe

from tests.sandbox.emulator_helpers import ACH_MANDATE, pay

ROOT = Path(__file__).resolve().parents[2]


def control(emu_url, method, name, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{emu_url}/_emulator/{name}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_control_api_drives_faults_clock_and_inspection(client, emu):
    control(emu.url, "POST", "faults", {"kind": "500", "path": "/v1/payment_intents"})
    with pytest.raises(stripe.APIError):
        pay(client, "pm_usBankAccount_success", mandate_data=ACH_MANDATE, key="k-control")
    intent = pay(client, "pm_usBankAccount_success", mandate_data=ACH_MANDATE, key="k-control")
    assert control(emu.url, "POST", "advance", {"seconds": 4 * 86400})["fired"] == 1
    listed = control(emu.url, "GET", "payment_intents")["data"]
    assert [(i["id"], i["status"], i["metadata"]) for i in listed] == [
        (intent.id, "succeeded", {"payment_id": "42"})
    ]
    requests = control(emu.url, "GET", "requests")["data"]
    assert [(r["idempotency_key"], r["status"], r["fault"]) for r in requests] == [
        ("k-control", 500, "500"),
        ("k-control", 200, None),
    ]
    control(emu.url, "POST", "reset", {})
    assert control(emu.url, "GET", "payment_intents")["data"] == []


def test_control_api_registers_endpoints_and_reports_deliveries(client, emu, receiver):
    endpoint = control(emu.url, "POST", "webhook_endpoints", {"url": receiver.url, "secrets": ["whsec_x"]})
    assert endpoint["id"].startswith("we_")
    client.v1.customers.create({"email": "c@example.com"})
    assert control(emu.url, "POST", "wait_for_deliveries", {"timeout": 10})["done"] is True
    deliveries = control(emu.url, "GET", "deliveries")["data"]
    assert [(d["type"], d["status"], d["endpoint"]) for d in deliveries] == [
        ("customer.created", 200, receiver.url)
    ]


def test_control_api_rejects_unknown_calls(emu):
    with pytest.raises(urllib.error.HTTPError) as caught:
        control(emu.url, "POST", "nonsense", {})
    assert caught.value.code == 404


def start_command(state_file, *, ignoring_sigint=False):
    # A shell without job control starts a background command ignoring SIGINT (as CI may run the suite).
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignoring_sigint else None
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.stripe_emulator", "--port", "0", "--state-file", str(state_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignore,
    )
    line = process.stdout.readline()
    return process, line.strip().rsplit(" ", 1)[-1]


def stop_command(process, signum=signal.SIGINT):
    process.send_signal(signum)
    try:
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_command_serves_and_keeps_state_across_a_restart(tmp_path):
    state_file = tmp_path / "stripe.json"
    process, url = start_command(state_file)
    try:
        client = stripe.StripeClient("sk_test_anything", base_addresses={"api": url})
        customer = client.v1.customers.create(
            {"email": "keep@example.com"}, options={"idempotency_key": "k-keep"}
        )
    finally:
        stop_command(process)
    process, url = start_command(state_file)
    try:
        client = stripe.StripeClient("sk_test_anything", base_addresses={"api": url})
        assert client.v1.customers.retrieve(customer.id).email == "keep@example.com"
        again = client.v1.customers.create(
            {"email": "keep@example.com"}, options={"idempotency_key": "k-keep"}
        )
        assert again.id == customer.id and again.last_response.headers["Idempotent-Replayed"] == "true"
    finally:
        stop_command(process)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_command_stops_and_saves_on_a_signal_even_started_ignoring_sigint(tmp_path, signum):
    state_file = tmp_path / "stripe.json"
    process, url = start_command(state_file, ignoring_sigint=True)
    try:
        client = stripe.StripeClient("sk_test_anything", base_addresses={"api": url})
        customer = client.v1.customers.create({"email": "kept@example.com"})
    finally:
        stop_command(process, signum)
    assert customer.id in state_file.read_text()
