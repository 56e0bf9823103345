"""Signed webhook deliveries and the events list, verified with the SDK's own helpers."""

import pytest
import stripe

from tests.sandbox.emulator_helpers import pay, wait_until

SECRET = "whsec_emulator_primary"
OLD_SECRET = "whsec_emulator_rolled"


def verify(delivery, secret=SECRET):
    return stripe.Webhook.construct_event(
        delivery["body"].decode(), delivery["signature"], secret, tolerance=300
    )


def test_delivered_event_verifies_with_construct_event(client, emu, receiver):
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    intent = pay(client, "pm_card_visa", key="k-webhook")
    assert emu.wait_for_deliveries(10)
    events = [verify(d) for d in receiver.received]
    assert {e.type for e in events} == {
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    }
    succeeded = next(e for e in events if e.type == "payment_intent.succeeded")
    assert succeeded.data.object.id == intent.id
    assert succeeded.request.idempotency_key == "k-webhook"
    assert all(d["status"] == 200 and d["attempt"] == 1 for d in emu.deliveries())


def test_one_v1_signature_per_secret_so_either_secret_verifies(client, emu, receiver):
    emu.add_webhook_endpoint(receiver.url, [SECRET, OLD_SECRET])
    client.v1.customers.create({"email": "roll@example.com"})
    assert emu.wait_for_deliveries(10)
    delivery = receiver.received[0]
    assert delivery["signature"].count("v1=") == 2
    assert verify(delivery, SECRET).id == verify(delivery, OLD_SECRET).id


def test_stale_signatures_are_rejected_by_the_receiver_check(client, emu, receiver):
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    emu.webhook_options(stale_seconds=600)
    client.v1.customers.create({"email": "stale@example.com"})
    assert emu.wait_for_deliveries(10)
    with pytest.raises(stripe.SignatureVerificationError):
        verify(receiver.received[0])


def test_non_2xx_answers_are_retried_until_a_2xx(client, emu, receiver):
    emu.webhook_retry_delays = [0.05, 0.05, 0.05]
    receiver.fail_next = 2
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    client.v1.customers.create({"email": "retry@example.com"})
    assert emu.wait_for_deliveries(10)
    assert [(d["attempt"], d["status"]) for d in emu.deliveries()] == [(1, 500), (2, 500), (3, 200)]
    assert [d["answered"] for d in receiver.received] == [500, 500, 200]
    assert verify(receiver.received[-1])["type"] == "customer.created"


def test_exhausted_retries_leave_the_event_undelivered(client, emu, receiver):
    emu.webhook_retry_delays = [0.05]
    receiver.fail_next = 5
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    customer = client.v1.customers.create({"email": "never@example.com"})
    assert emu.wait_for_deliveries(10)
    undelivered = client.v1.events.list({"delivery_success": False})
    assert [e.data.object.id for e in undelivered.data] == [customer.id]
    assert client.v1.events.list({"delivery_success": True}).data == []


def test_duplicates_deliver_each_event_more_than_once(client, emu, receiver):
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    emu.webhook_options(duplicates=3)
    client.v1.customers.create({"email": "dup@example.com"})
    assert emu.wait_for_deliveries(10)
    assert len({e["id"] for e in receiver.events()}) == 1 and len(receiver.received) == 3


def test_held_deliveries_wait_for_release_and_come_shuffled(client, emu, receiver):
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    emu.webhook_options(hold=True, shuffle=True)
    for index in range(6):
        client.v1.customers.create({"email": f"c{index}@example.com"})
    assert emu.wait_for_deliveries(1) and receiver.received == []
    assert emu.release_held() == 6
    assert emu.wait_for_deliveries(10)
    created = [e["id"] for e in emu.events()]
    dispatched = [d["event_id"] for d in sorted(emu.deliveries(), key=lambda d: d["order"])]
    assert sorted(dispatched) == sorted(created) and dispatched != created


def test_dropped_held_deliveries_are_never_made_and_stay_undelivered(client, emu, receiver):
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    emu.webhook_options(hold=True)
    customer = client.v1.customers.create({"email": "lost@example.com"})
    assert emu.drop_held() == 1
    emu.webhook_options()
    assert emu.release_held() == 0 and emu.wait_for_deliveries(10)
    assert receiver.received == [] and emu.deliveries() == []
    undelivered = client.v1.events.list({"delivery_success": False})
    assert [e.data.object.id for e in undelivered.data] == [customer.id]


def test_events_list_filters_by_type_types_and_created_and_pages(client, emu):
    for _ in range(3):
        pay(client, "pm_card_visa")
    assert [e.type for e in client.v1.events.list({"type": "charge.succeeded"}).data] == [
        "charge.succeeded"
    ] * 3
    both = client.v1.events.list({"types": ["charge.succeeded", "payment_intent.succeeded"], "limit": 2})
    assert both.has_more and both.url == "/v1/events"
    assert len(list(both.auto_paging_iter())) == 6
    assert len(list(client.v1.events.list({"type": "payment_intent.*"}).auto_paging_iter())) == 6
    assert client.v1.events.list({"created": {"lt": emu.now() - 3600}}).data == []
    newest = client.v1.events.list({"limit": 1}).data[0]
    assert client.v1.events.retrieve(newest.id).type == newest.type
    older = client.v1.events.list({"ending_before": newest.id}).data
    assert older == [] and client.v1.events.list({"starting_after": newest.id}).data


def test_events_automatic_after_clock_have_no_request_id(client, emu):
    from tests.sandbox.emulator_helpers import ACH_MANDATE

    pay(client, "pm_usBankAccount_success", mandate_data=ACH_MANDATE)
    emu.advance(4 * 86400)
    events = client.v1.events.list({"type": "payment_intent.succeeded"}).data
    assert events[0].request.id is None


def test_deliveries_wait_until_endpoint_registered_only_for_new_events(client, emu, receiver):
    client.v1.customers.create({"email": "before@example.com"})
    emu.add_webhook_endpoint(receiver.url, [SECRET])
    client.v1.customers.create({"email": "after@example.com"})
    assert wait_until(lambda: len(receiver.received) == 1)
    assert emu.wait_for_deliveries(10)
    assert receiver.events()[0]["data"]["object"]["email"] == "after@example.com"


def test_registering_the_same_endpoint_twice_delivers_once(client, emu, receiver):
    first = emu.add_webhook_endpoint(receiver.url, [SECRET])
    assert emu.add_webhook_endpoint(receiver.url, [SECRET]) == first
    client.v1.customers.create({"email": "once@example.com"})
    assert emu.wait_for_deliveries(10) and len(receiver.received) == 1
