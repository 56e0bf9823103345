"""The `payments` queue's actor: its options are the wire contract the sweepers and grace periods rely on."""

from tasks.payments import execute_payment


def test_execute_payment_retries_for_about_three_minutes_and_throws_nothing():
    options = execute_payment.options
    assert execute_payment.queue_name == "payments"
    assert (
        options["max_retries"] == 8 and options["min_backoff"] == 1_000 and options["max_backoff"] == 60_000
    )
    assert options["time_limit"] == 120_000 and options["throws"] == ()
