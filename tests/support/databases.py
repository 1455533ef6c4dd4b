"""The `db_url` fixture: one contract suite runs on SQLite and on PostgreSQL.

Its value is a projection URL template for Settings.database_url: SQLite gets one file per projection
({projection} is replaced by the projection name), PostgreSQL one fresh database shared by the three projections
(their tables and bookkeeping rows are named per projection, so they coexist).
Import it into a test module: `from tests.support.databases import db_url  # noqa: F401`.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'views'}/{{projection}}.db"
    return request.getfixturevalue("pg_database")


def another_database(url_template: str, tmp_path) -> str:
    """A second, empty place of the same kind as url_template (for a clean rebuild to compare against)."""
    if url_template.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'rebuild'}/{{projection}}.db"
    import uuid

    import sqlalchemy as sa

    name = f"r_{uuid.uuid4().hex[:12]}"
    server = url_template.rsplit("/", 1)[0]
    engine = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{server}/{name}"
