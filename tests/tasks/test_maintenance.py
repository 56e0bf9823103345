"""The `maintenance` queue's actors: the clock re-sends them, so none retries."""

import dramatiq

from tasks import maintenance

ACTORS = [a for a in vars(maintenance).values() if isinstance(a, dramatiq.Actor)]


def test_every_maintenance_actor_runs_once_per_tick_within_two_minutes_but_reconcile():
    assert len(ACTORS) == 10
    for actor in ACTORS:
        assert actor.queue_name == "maintenance" and actor.options["max_retries"] == 0
        expected = 600_000 if actor.actor_name == "reconcile_stripe" else 120_000
        assert actor.options["time_limit"] == expected, actor.actor_name
