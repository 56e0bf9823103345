"""Migrations go up, down and up again on an empty database."""

from sqlalchemy import create_engine, inspect

from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_up_down_up_on_an_empty_database(scratch_database):
    expected = {table.name for table in Base.metadata.sorted_tables}
    assert current_revision(scratch_database) is None

    upgrade(scratch_database)
    assert current_revision(scratch_database) == head_revision()
    assert _tables(scratch_database) == expected

    downgrade(scratch_database, "base")
    assert current_revision(scratch_database) is None
    assert _tables(scratch_database) == set()

    upgrade(scratch_database)
    assert _tables(scratch_database) == expected


def test_models_and_migrations_agree(migrated):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(migrated)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_upgrade_fills_paid_minor_from_each_allocations_amount(scratch_database):
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from tests import factories

    upgrade(scratch_database)
    engine = create_engine(scratch_database)
    try:
        with Session(engine) as session, session.begin():
            account = factories.account(session)
            payment = factories.payment(
                session, account, factories.method(session, account), amount_minor=10_000
            )
            for total in (6_000, 4_000):
                factories.allocation(session, payment, factories.invoice(session, account, total))
        downgrade(scratch_database, "0002")
        with engine.begin() as connection:
            connection.execute(text("UPDATE allocations SET amount_minor = 5000 WHERE amount_minor = 6000"))
        upgrade(scratch_database)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT amount_minor, paid_minor FROM allocations ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(5_000, 5_000), (4_000, 4_000)]
