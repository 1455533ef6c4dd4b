"""Bulk row reads and writes for the projection store, through the DBAPI cursor of the store's own SQLAlchemy
connection (so inside its transaction). A batch's state rows are read with one query (a few on SQLite), and its
changes are written with a handful of statements per table, whatever the number of rows:
- SQLite: cursor.executemany of one prepared INSERT ... ON CONFLICT DO UPDATE over the rows as tuples (sqlite3
  binds each in C). Passing the whole batch as one JSON document (INSERT ... SELECT FROM json_each) keeps SQLite
  from taking the GIL back after every row, but was measured to cost more CPU than it saves on a 2-core machine.
- PostgreSQL: COPY into a session-local stage table (psycopg formats the rows in C; ON COMMIT DELETE ROWS empties
  it), then one INSERT ... SELECT ... ON CONFLICT DO UPDATE merges it into the target. 5,000 timeline rows: ~45 ms,
  against ~100 ms as one INSERT from unnest(arrays) and one round trip per row with executemany. Up to 64 rows (a
  batch's offsets, a live batch's orders) are one INSERT ... SELECT ... FROM (VALUES ...) instead: one round trip,
  not three (create the stage if needed, COPY, merge).

Why not SQLAlchemy's executemany: for each row it builds and processes a parameter dict in Python (~20% of a
rebuild on SQLite), and psycopg then sends one INSERT per row (~65% of a rebuild on PostgreSQL, mostly waiting on the
server). Here a batch's rows become tuples once (operator.itemgetter, in C).

A batch never holds two rows with the same key (RowChanges is keyed by primary key), which PostgreSQL's
ON CONFLICT DO UPDATE requires of one statement. PostgreSQL merges the rows in primary-key order: two writers of
different partitions (two instances, replay workers) add to shared counter rows, and rows locked in one order by both
cannot deadlock. Two kinds of write: upsert (the row replaces the stored one) and add
(the row's counters are added to the stored ones, the row inserted when there is none).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

_POSTGRES_INLINE_ROWS = 64  # up to this many rows, a PostgreSQL upsert is one INSERT ... VALUES, without the stage
_SQLITE_IN_CHUNK = 2_048  # keys per IN (...) on SQLite (its bound-parameter limit is 32,766); a power of two


class BulkRows:
    """Reads and writes row dicts in the tables of one database (its dialect decides the statements); statements are
    built once per table and kind."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._postgres = dialect.name == "postgresql"
        self._statements: dict[tuple[str, str], _Statements] = {}

    def load(self, conn: Connection, table: Table, keys: Collection[Any]) -> dict[Any, dict[str, Any]]:
        """The stored rows of a single-column-key table whose key is in keys, by key."""
        (key,) = table.primary_key.columns
        names = [c.name for c in table.columns]
        at = names.index(key.name)
        quote = self.dialect.identifier_preparer.quote
        select = (
            f"SELECT {', '.join(quote(n) for n in names)} FROM {self.dialect.identifier_preparer.format_table(table)}"
        )
        cursor = conn.connection.cursor()
        found: dict[Any, dict[str, Any]] = {}
        try:
            if self._postgres:
                chunks = [(f"{select} WHERE {quote(key.name)} = ANY(%s)", [list(keys)])]
            else:
                ordered = list(keys)
                chunks = []
                for i in range(0, len(ordered), _SQLITE_IN_CHUNK):
                    part = ordered[i : i + _SQLITE_IN_CHUNK]
                    # padded to a power of two with its last key again (a repeat in IN (...) changes nothing): sqlite3
                    # caches each distinct statement it prepares (up to 128 per connection, ~0.3 MB each at a
                    # thousand keys), so one statement per batch size made a rebuild's memory grow with its batches
                    width = 1 << (len(part) - 1).bit_length()
                    part += part[-1:] * (width - len(part))
                    chunks.append((f"{select} WHERE {quote(key.name)} IN ({', '.join('?' * width)})", part))
            for sql, parameters in chunks:
                cursor.execute(sql, parameters)
                for values in cursor.fetchall():
                    found[values[at]] = dict(zip(names, values, strict=True))
        finally:
            cursor.close()
        return found

    def upsert(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert each row, or replace the stored row with the same primary key."""
        self._execute(conn, table, "upsert", rows)

    def add(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert each row, or add its non-key columns (counters) to the stored row with the same primary key."""
        self._execute(conn, table, "add", rows)

    def write_tuples(self, conn: Connection, table: Table, kind: str, rows: Sequence[tuple]) -> None:
        """A bulk fold's rows (tuples in the table's column order). kind "upsert": insert or replace, as upsert();
        kind "append": rows whose keys the table does not hold (a duplicate key fails the transaction), written with
        a plain INSERT (SQLite) or COPY straight into the table, without a stage or a merge (PostgreSQL)."""
        if not rows:
            return
        if kind not in ("append", "upsert"):
            raise ValueError(f"{table.name}: unknown bulk write {kind!r}")
        self._run(conn, self._statement(table, kind), rows)

    def _execute(self, conn: Connection, table: Table, kind: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        statement = self._statement(table, kind)
        values = map(itemgetter(*statement.names), rows)  # len(names) >= 2 for every table: tuples
        self._run(conn, statement, values)

    def _run(self, conn: Connection, statement: _Statements, values: Iterable[tuple]) -> None:
        cursor = conn.connection.cursor()
        try:
            if self._postgres:
                if statement.inline and not isinstance(values, list):
                    values = list(values)
                if statement.inline and len(values) <= _POSTGRES_INLINE_ROWS:  # type: ignore[arg-type]
                    # a few rows (every batch's offsets, a live batch's orders): one statement, one round trip,
                    # instead of creating the stage, copying into it and merging (three); merged in key order too
                    rows = ", ".join([statement.inline_row] * len(values))  # type: ignore[arg-type]
                    cursor.execute(
                        f"{statement.inline}{rows}{statement.inline_conflict}",
                        [value for row in values for value in row],
                    )
                    return
                if statement.prepare:
                    cursor.execute(statement.prepare)
                with cursor.copy(statement.load) as copy:
                    for row in values:
                        copy.write_row(row)
                if statement.merge:
                    cursor.execute(statement.merge)
            else:
                cursor.executemany(statement.merge, values)
        finally:
            cursor.close()

    def _statement(self, table: Table, kind: str) -> _Statements:
        key = (table.name, kind)
        if key not in self._statements:
            self._statements[key] = self._build(table, kind)
        return self._statements[key]

    def _build(self, table: Table, kind: str) -> _Statements:
        quote = self.dialect.identifier_preparer.quote
        columns = list(table.columns)
        names = [c.name for c in columns]
        if len(names) < 2:
            raise ValueError(f"{table.name}: bulk writes need at least two columns")
        target = self.dialect.identifier_preparer.format_table(table)
        column_list = ", ".join(quote(name) for name in names)
        if kind == "append":
            if self._postgres:
                return _Statements(names, merge="", load=f"COPY {target} ({column_list}) FROM STDIN")
            values = ", ".join("?" for _ in columns)
            return _Statements(names, f"INSERT INTO {target} ({column_list}) VALUES ({values})")
        keys = ", ".join(quote(c.name) for c in columns if c.primary_key)
        excluded = "EXCLUDED" if self._postgres else "excluded"
        if kind == "upsert":
            sets = [f"{quote(c.name)} = {excluded}.{quote(c.name)}" for c in columns if not c.primary_key]
        else:
            sets = [f"{quote(c.name)} = {target}.{quote(c.name)} + {excluded}.{quote(c.name)}"
                    for c in columns if not c.primary_key]  # fmt: skip
        conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(sets)}"
        if not self._postgres:
            values = ", ".join("?" for _ in columns)
            return _Statements(names, f"INSERT INTO {target} ({column_list}) VALUES ({values}) {conflict}")
        stage = quote(f"stage_{table.name}"[:63])  # a temporary table: this session's own, emptied at every commit
        # each value cast to its column's type without a length (an explicit cast to VARCHAR(n) would cut a longer
        # value silently; the insert then refuses it, as the COPY into the stage does)
        types = [c.type.compile(dialect=self.dialect).split("(")[0] for c in columns]
        return _Statements(
            names,
            inline=f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM (VALUES ",
            inline_row=f"({', '.join(f'CAST(%s AS {t})' for t in types)})",
            inline_conflict=f") AS v ({column_list}) ORDER BY {keys} {conflict}",
            # in key order: writers of other partitions lock shared rows (counters) in the same order, never a cycle
            merge=f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM {stage} ORDER BY {keys} {conflict}",
            prepare=f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {target}) ON COMMIT DELETE ROWS",
            load=f"COPY {stage} ({column_list}) FROM STDIN",
        )


@dataclass(frozen=True)
class _Statements:
    """The SQL of one kind of write into one table. SQLite: merge alone, run once per row. PostgreSQL: prepare the
    stage table, COPY the rows into it (load), then merge them into the target in one statement; an append is the
    COPY alone, straight into the target (no prepare, no merge). A PostgreSQL upsert or add of a few rows is one
    INSERT ... SELECT from VALUES, merged in key order like the stage: inline, inline_row once per row, then
    inline_conflict."""

    names: list[str]
    merge: str
    prepare: str = ""
    load: str = ""
    inline: str = ""
    inline_row: str = ""
    inline_conflict: str = ""
