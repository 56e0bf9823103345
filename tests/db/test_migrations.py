"""Migrations go up, down and up again on an empty database."""

import psycopg
import pytest
from sqlalchemy import create_engine, inspect

from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base

@pytest.fixture()
def scratch_url(database_url):
    libpq = database_url.replace("postgresql+psycopg://", "postgresql://")
    scratch = libpq.rsplit("/", 1)[1] + "_migrations"
    admin = libpq.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {scratch}")
    yield database_url.rsplit("/", 1)[0] + "/" + scratch
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_up_down_up_on_an_empty_database(scratch_url):
    expected = {table.name for table in Base.metadata.sorted_tables}
    assert current_revision(scratch_url) is None

    upgrade(scratch_url)
    assert current_revision(scratch_url) == head_revision()
    assert _tables(scratch_url) == expected

    downgrade(scratch_url, "base")
    assert current_revision(scratch_url) is None
    assert _tables(scratch_url) == set()

    upgrade(scratch_url)
    assert _tables(scratch_url) == expected


def test_models_and_migrations_agree(migrated):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(migrated)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
