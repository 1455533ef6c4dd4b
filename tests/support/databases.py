"""Databases for the projection tests beyond the `db_url` fixture of tests/conftest.py."""

from __future__ import annotations

import uuid

import sqlalchemy as sa


def url_of(url_template: str, projection: str) -> str:
    """A projection's database URL from a Settings.database_url template (as Settings.database_url_for does)."""
    return url_template.replace("{projection}", projection.replace("-", "_"))


def another_database(url_template: str, tmp_path) -> str:
    """A second, empty place of the same kind as url_template (for a clean rebuild to compare against)."""
    if url_template.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'rebuild'}/{{projection}}.db"
    name = f"r_{uuid.uuid4().hex[:12]}"
    server = url_template.rsplit("/", 1)[0]
    engine = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return f"{server}/{name}"
