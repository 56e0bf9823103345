"""The demo round waits for every state a payment can settle in."""

from sandbox.demo import FINAL
from tasks.domain.transitions import FINAL_STATUSES, IN_FLIGHT


def test_the_demo_waits_for_every_final_state_and_stops_at_requires_action():
    assert {str(status) for status in FINAL_STATUSES} <= FINAL
    assert "partially_refunded" in FINAL and "requires_action" in FINAL
    assert not FINAL & ({str(status) for status in IN_FLIGHT} - {"requires_action"})
