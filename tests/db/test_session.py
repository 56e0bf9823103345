import pytest
from sqlalchemy import func, select

from db.models import Seller
from db.session import on_commit, transaction
from tests import factories


def test_callback_runs_after_commit_and_sees_committed_row(db):
    seen = []

    with transaction(db) as session:
        row = factories.seller(session)
        on_commit(session, lambda: seen.append(_count_sellers(db)))
        assert seen == []
    assert seen == [1]
    assert row.id is not None


def test_callback_is_dropped_on_rollback(db):
    seen = []
    with pytest.raises(RuntimeError):
        with transaction(db) as session:
            factories.seller(session)
            on_commit(session, lambda: seen.append("sent"))
            raise RuntimeError("boom")
    assert seen == []
    assert _count_sellers(db) == 0


def test_dropped_callback_does_not_leak_into_next_transaction(db):
    seen = []
    session = db()
    factories.seller(session)
    on_commit(session, lambda: seen.append("first"))
    session.rollback()
    factories.seller(session)
    session.commit()
    session.close()
    assert seen == []


def test_failing_callback_keeps_the_commit_and_runs_the_rest(db):
    seen = []
    with transaction(db) as session:
        factories.seller(session)
        on_commit(session, lambda: 1 / 0)
        on_commit(session, lambda: seen.append("second"))
    assert seen == ["second"]
    assert _count_sellers(db) == 1


def _count_sellers(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(Seller))
