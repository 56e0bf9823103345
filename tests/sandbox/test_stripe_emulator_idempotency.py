"""Idempotency keys, injected faults and the rate limit, seen through the real SDK and its retries."""

import threading

import pytest
import stripe

from tests.sandbox.emulator_helpers import pay, wait_until

PARAMS = {
    "amount": 1500,
    "currency": "usd",
    "payment_method": "pm_card_visa",
    "confirm": True,
    "off_session": True,
    "metadata": {"payment_id": "42"},
}


def create(client, key=None, **changes):
    options = {"idempotency_key": key} if key else {}
    return client.v1.payment_intents.create(dict(PARAMS, **changes), options=options)


def test_second_request_with_same_key_replays_the_first_payment(client, emu):
    first = create(client, "payment-42-attempt-1")
    second = create(client, "payment-42-attempt-1")
    assert second.id == first.id and len(emu.payment_intents()) == 1
    headers = second.last_response.headers
    assert headers["Idempotent-Replayed"] == "true"
    assert headers["Original-Request"] == first.last_response.request_id
    assert headers["Idempotency-Key"] == "payment-42-attempt-1"
    assert headers["Request-Id"] != first.last_response.request_id
    assert [r["replayed"] for r in emu.requests()] == [False, True]
    assert [r["idempotency_key"] for r in emu.requests()] == ["payment-42-attempt-1"] * 2


def test_a_decline_is_stored_and_replayed_with_its_402(client, emu):
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            create(client, "declined-key", payment_method="pm_card_chargeDeclined")
        errors.append(caught.value)
    assert errors[1].headers["Idempotent-Replayed"] == "true"
    assert errors[0].error.payment_intent.id == errors[1].error.payment_intent.id
    assert len(emu.payment_intents()) == 1


def test_same_key_with_different_parameters_is_an_idempotency_error(client):
    create(client, "k-params")
    with pytest.raises(stripe.IdempotencyError) as caught:
        create(client, "k-params", amount=1600)
    assert caught.value.http_status == 400 and caught.value.error.type == "idempotency_error"


def test_same_key_on_a_different_endpoint_is_an_idempotency_error(client):
    create(client, "k-endpoint")
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "a@example.com"}, options={"idempotency_key": "k-endpoint"})


def test_same_key_while_the_first_request_runs_is_a_409_and_nothing_is_stored(make_client, emu):
    emu.inject_fault("hang", path="/v1/payment_intents")
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(intent=create(make_client(), "k-flight")))
    thread.start()
    assert wait_until(lambda: emu.in_flight_keys() == ["k-flight"])
    with pytest.raises(stripe.APIError) as caught:
        create(make_client(), "k-flight")
    assert caught.value.http_status == 409 and caught.value.error.code == "idempotency_key_in_use"
    emu.release_hangs()
    thread.join(10)
    assert create(make_client(), "k-flight").id == outcome["intent"].id
    assert len(emu.payment_intents()) == 1


def test_validation_failures_are_not_stored(client, emu):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create({"amount": 1500}, options={"idempotency_key": "k-invalid"})
    intent = client.v1.payment_intents.create(
        {"amount": 1500, "currency": "usd"}, options={"idempotency_key": "k-invalid"}
    )
    assert "Idempotent-Replayed" not in intent.last_response.headers


def test_429s_are_not_stored(client, emu):
    emu.inject_fault("429")
    with pytest.raises(stripe.RateLimitError):
        create(client, "k-429")
    intent = create(client, "k-429")
    assert intent.status == "succeeded" and "Idempotent-Replayed" not in intent.last_response.headers


def test_keys_are_pruned_once_older_than_the_ttl(client, emu):
    first = create(client, "k-old")
    emu.advance(3600)
    assert create(client, "k-old").id == first.id
    emu.advance(86400)
    again = create(client, "k-old", amount=2000)
    assert again.id != first.id and len(emu.payment_intents()) == 2


def test_sdk_retry_after_a_dropped_connection_replays_instead_of_charging_twice(make_client, emu):
    emu.inject_fault("drop_after_commit", path="/v1/payment_intents")
    intent = create(make_client(retries=2), "k-drop")
    assert [i["id"] for i in emu.payment_intents()] == [intent.id]
    assert [(r["fault"], r["status"], r["replayed"]) for r in emu.requests()] == [
        ("drop_after_commit", None, False),
        (None, 200, True),
    ]


def test_sdk_generated_keys_also_survive_a_dropped_connection(make_client, emu):
    emu.inject_fault("drop_after_commit", path="/v1/payment_intents")
    create(make_client(retries=2))
    assert len(emu.payment_intents()) == 1
    keys = [r["idempotency_key"] for r in emu.requests()]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]


def test_a_dropped_connection_without_retries_leaves_a_committed_payment(client, emu):
    emu.inject_fault("drop_after_commit")
    with pytest.raises(stripe.APIConnectionError):
        create(client, "k-lost")
    assert emu.payment_intents()[0]["status"] == "succeeded"
    assert any(e["type"] == "payment_intent.succeeded" for e in emu.events())


def test_injected_500_is_retried_by_the_sdk_and_not_stored(make_client, emu):
    with pytest.raises(stripe.APIError):
        emu.inject_fault("500")
        create(make_client(), "k-500")
    emu.inject_fault("500")
    intent = create(make_client(retries=1), "k-500")
    assert intent.status == "succeeded" and len(emu.payment_intents()) == 1


def test_a_500_from_a_started_endpoint_is_kept_and_replayed_to_every_retry_with_its_key(make_client, emu):
    emu.inject_fault("500_stored", path="/v1/payment_intents")
    with pytest.raises(stripe.APIError):
        create(make_client(retries=2), "k-500-kept")  # the SDK's own retries get the replay too
    with pytest.raises(stripe.APIError):
        create(make_client(), "k-500-kept")
    assert emu.payment_intents() == []
    assert [(r["status"], r["fault"], r["replayed"]) for r in emu.requests()] == [
        (500, "500_stored", False),
        (500, None, True),
        (500, None, True),
        (500, None, True),
    ]
    assert create(make_client(), "k-500-new").status == "succeeded"  # a new key runs the endpoint


def test_plain_429_is_not_retried_but_429_with_should_retry_is(make_client, emu):
    emu.inject_fault("429")
    with pytest.raises(stripe.RateLimitError):
        create(make_client(retries=2))
    assert len(emu.requests()) == 1
    emu.inject_fault("429_retry")
    create(make_client(retries=2))
    assert [r["status"] for r in emu.requests()][1:] == [429, 200]


def test_faults_can_target_one_path_and_method(client, emu):
    emu.inject_fault("500", path="/v1/refunds")
    emu.inject_fault("500", path="/v1/customers", method="GET")
    client.v1.customers.create({"email": "ok@example.com"})
    with pytest.raises(stripe.APIError):
        client.v1.customers.list()
    emu.clear_faults()
    pay(client, "pm_card_visa")


def test_a_hung_request_times_out_and_the_sdk_retry_gets_the_replay(make_client, emu):
    emu.inject_fault("hang", path="/v1/payment_intents")

    def release_after_a_409():
        wait_until(lambda: any(r["status"] == 409 for r in emu.requests()))
        emu.release_hangs()

    helper = threading.Thread(target=release_after_a_409)
    helper.start()
    intent = create(make_client(retries=5, timeout=0.5), "k-hang")
    helper.join(10)
    assert len(emu.payment_intents()) == 1 and intent.id == emu.payment_intents()[0]["id"]
    assert emu.requests()[-1]["replayed"] is True


def test_requests_above_the_rate_limit_get_429_rate_limit(client, emu):
    emu.set_rate_limit(1)
    with pytest.raises(stripe.RateLimitError) as caught:
        for _ in range(5):
            client.v1.customers.list()
    assert caught.value.error.code == "rate_limit"
    emu.set_rate_limit(None)
    client.v1.customers.list()


def test_a_rate_limited_request_is_not_stored(client, emu):
    emu.set_rate_limit(1)
    client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError):
        create(client, "k-limited")
    emu.set_rate_limit(None)
    assert "Idempotent-Replayed" not in create(client, "k-limited").last_response.headers


def test_each_endpoint_has_its_own_limit_under_the_global_one(client, emu):
    emu.set_rate_limit(100, endpoint_requests_per_second=2)
    client.v1.customers.list()
    client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError) as caught:
        client.v1.customers.list()
    assert caught.value.http_status == 429 and caught.value.error.code == "rate_limit"
    # Another endpoint still has its own budget, and the global one is far from spent.
    assert create(client).status == "succeeded"
    assert [r["status"] for r in emu.requests()] == [200, 200, 429, 200]


def test_the_global_limit_counts_every_endpoint_and_exceptions_raise_one(client, emu):
    emu.set_rate_limit(3, endpoint_requests_per_second=1, endpoints={"POST /v1/payment_intents": 5})
    create(client)
    create(client)  # above the default endpoint limit, within the raised one
    client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError):
        client.v1.events.list()  # the fourth request in a second: over the global limit
    assert emu.set_rate_limit(None)["requests_per_second"] is None


def test_search_has_its_own_default(client, emu):
    emu.set_rate_limit(None, endpoint_requests_per_second=25, search_requests_per_second=1)
    client.v1.payment_intents.search({"query": "status:'succeeded'"})
    with pytest.raises(stripe.RateLimitError):
        client.v1.payment_intents.search({"query": "status:'succeeded'"})
    client.v1.payment_intents.list()
