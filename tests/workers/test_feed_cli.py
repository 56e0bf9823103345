"""`remit feed`: ops set an endpoint, see a failing one with its last answer, and replay a range."""

import threading

import pytest

from sandbox.erp import make_server
from tasks.flows import feed
from tasks.flows.feed_delivery import deliver_feed
from tests import factories
from workers import cli

SECRET = "rfsec_cli_test_secret_000"


@pytest.fixture()
def receiver():
    server, ledger = make_server(0, [SECRET])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed", ledger
    server.shutdown()
    server.server_close()


def test_ops_see_a_failing_endpoint_then_replay_what_the_erp_lost(db, broker, receiver, capsys):
    url, ledger = receiver
    with db() as session:
        seller_id = factories.seller(session).id
        session.commit()
    seller = str(seller_id)
    assert (
        cli.main(["feed", "endpoint", "--seller", seller, "--url", url, "--secret", "rfsec_wrong_one_0000"])
        == 0
    )
    assert "signing secret (give it to the ERP" in capsys.readouterr().out
    with db.begin() as session:
        for n in range(3):
            feed.emit(session, "test.fact", {"n": n}, seller_id=seller_id)
    deliver_feed(seller_id)
    assert cli.main(["feed", "status", "--failing"]) == 1
    out = capsys.readouterr().out
    assert f"seller {seller} {url}: delivered 0, 3 behind; FAILING at #1" in out and "last answer 400" in out
    assert cli.main(["feed", "endpoint", "--seller", seller, "--url", url, "--secret", SECRET]) == 0
    assert cli.main(["feed", "retire-secrets", "--seller", seller, "--keep", SECRET]) == 0
    assert cli.main(["feed", "replay", "--seller", seller, "--from", "2", "--to", "3"]) == 0
    assert "2 delivered, 0 failed" in capsys.readouterr().out
    assert [e["sequence"] for e in ledger.events] == [2, 3]
    assert cli.main(["feed", "status"]) == 0  # the feed's own progress is untouched by a replay
    assert "delivered 0, 3 behind" in capsys.readouterr().out


def test_a_replay_for_a_seller_without_an_endpoint_is_refused_plainly(db, broker, capsys):
    with db() as session:
        seller_id = factories.seller(session).id
        session.commit()
    assert cli.main(["feed", "replay", "--seller", str(seller_id), "--from", "1", "--to", "2"]) == 2
    assert "[endpoint_not_found]" in capsys.readouterr().err
