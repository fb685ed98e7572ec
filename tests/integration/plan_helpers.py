"""Plans of statements as the service sends them, prepared as psycopg prepares a repeated one
(PostgreSQL may then keep a generic plan on that connection)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from models.db import sqlalchemy_url


@contextmanager
def shadowed(database_url: str, *tables: str) -> Iterator[Connection]:
    """A connection of its own (no pool: its temporary tables must not outlive it) in which a
    temporary table for each of ``tables``, with the real one's indexes, no triggers and no
    statistics, shadows the real one: rows added there touch no other test's, nor the shared
    table's statistics (shadow ``user_tallies`` too where the code under test appends to it)."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in tables:
                conn.execute(
                    text(f"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING ALL)"))
            yield conn
    finally:
        engine.dispose()


@contextmanager
def recorded(conn: Connection, table: str) -> Iterator[list[tuple[str, dict]]]:
    """(statement, parameters) of what ``conn`` sends about ``table`` inside the block."""
    seen: list[tuple[str, dict]] = []
    about = re.compile(rf"\bFROM {table}\b|^UPDATE {table}\b")

    def record(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        if about.search(statement):
            seen.append((statement, dict(parameters)))

    event.listen(conn, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", record)


class Prepared:
    """``statement`` (psycopg's ``%(name)s`` placeholders) as the prepared statement ``name``
    on ``raw``; ``plan`` runs it with ``parameters`` and returns its plan's top node."""

    def __init__(self, raw: psycopg.Connection, name: str, statement: str) -> None:
        self.raw, self.name, self.names = raw, name, []

        def number(match: re.Match) -> str:
            if match[1] not in self.names:
                self.names.append(match[1])
            return f"${self.names.index(match[1]) + 1}"

        numbered = re.sub(r"%\((\w+)\)s", number, statement)
        raw.execute(f"PREPARE {name} AS {numbered}")

    def _execute(self, parameters: dict) -> tuple[str, list]:
        """``EXECUTE name(...)`` and its arguments (no parentheses without parameters)."""
        args = [parameters[n] for n in self.names]
        placeholders = f"({', '.join(['%s'] * len(args))})" if args else ""
        return f"EXECUTE {self.name}{placeholders}", args

    def run(self, parameters: dict) -> None:
        psycopg.ClientCursor(self.raw).execute(*self._execute(parameters))

    def plan(self, parameters: dict, *, analyze: bool = False) -> dict:
        execute, args = self._execute(parameters)
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        cursor = psycopg.ClientCursor(self.raw)
        cursor.execute(f"EXPLAIN ({options}) {execute}", args)
        return cursor.fetchone()[0][0]["Plan"]

    def close(self) -> None:
        self.raw.execute(f"DEALLOCATE {self.name}")


def analyzed_plans(raw: psycopg.Connection, sent: list[tuple[str, dict]], prefix: str, *,
                   runs: int = 6) -> Iterator[tuple[str, dict]]:
    """(statement, plan) for each statement of ``sent``: prepared, run ``runs`` times (past
    psycopg's prepare threshold and PostgreSQL's five custom plans, so the plan is the one a
    pool connection keeps), then run under EXPLAIN ANALYZE."""
    for n, (statement, parameters) in enumerate(sent):
        prepared = Prepared(raw, f"{prefix}_{n}", statement)
        for _ in range(runs):
            prepared.run(parameters)
        plan = prepared.plan(parameters, analyze=True)
        prepared.close()
        yield statement, plan
