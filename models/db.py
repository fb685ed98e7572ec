"""Engine and session factory from DATABASE_URL; the declarative Base with naming conventions."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterable
from typing import Any, cast

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Jsonb
from sqlalchemy import ColumnElement, MetaData, any_, bindparam, create_engine, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.sql.expression import ClauseElement

from models import jsoncodec

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def sqlalchemy_url(database_url: str) -> str:
    """Accept the usual ``postgresql://user@host:port/db`` form and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def any_of(column: Any, values: Any) -> ColumnElement[bool]:
    """``column = ANY(:values)``: one array parameter, where ``column.in_(values)`` would bind
    each value on its own. A long IN list is a statement of its own size, built by SQLAlchemy
    and parsed again by psycopg on every execution (too long for its cache): an UPDATE of
    10,000 users by id took 34 ms of Python CPU that way, 11 with the array."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


def rowcount(result: object) -> int:
    """How many rows an UPDATE, DELETE or INSERT ran by ``Session.execute`` touched: its result
    is a ``CursorResult``, which the session's signature types as a plain ``Result``."""
    return int(cast(CursorResult, result).rowcount)


def psycopg_connection(connection: Connection) -> psycopg.Connection:
    """The psycopg connection under a checked-out SQLAlchemy ``connection``, for what its API
    does faster (``driver_rows``, COPY)."""
    raw = connection.connection.driver_connection
    assert raw is not None  # a checked-out connection has its driver's
    return raw


# Statement -> its SQL for psycopg (compiled once). The key holds the statement alive, so
# its id stays its own.
_DRIVER_SQL: dict[int, tuple[ClauseElement, str]] = {}


def driver_rows(connection: Connection, statement: ClauseElement, params: dict[str, Any]) -> list:
    """Run ``statement`` on ``connection``'s psycopg connection; its rows as named tuples.

    For the one-statement requests an IdP makes most (a lookup by userName, a create, a
    deactivation): SQLAlchemy's execution context and result objects were a fifth of a
    lookup's instructions (2.34 -> 1.85 M). The statement joins the connection's transaction,
    if any. The parameters reach psycopg as given, without SQLAlchemy's type processing (JSON
    goes as ``jsonb(value)``). A failure is handled as SQLAlchemy's own execution handles it:
    the same exception classes (IntegrityError, OperationalError...), and a lost connection
    invalidates the pool."""
    found = _DRIVER_SQL.get(id(statement))
    if found is None:
        sql = statement.compile(dialect=connection.dialect).string
        found = _DRIVER_SQL[id(statement)] = (statement, sql)
    sql = found[1]
    cursor = psycopg_connection(connection).cursor(row_factory=namedtuple_row)
    try:
        return cursor.execute(sql, params, prepare=True).fetchall()
    except psycopg.Error as exc:
        # SQLAlchemy's handler: wraps the error, invalidates the pool on a disconnect. (Its
        # DBAPICursor protocol does not match psycopg's typed cursor: the cast.)
        connection._handle_dbapi_exception(exc, sql, params, cast(Any, cursor), None)
        raise  # not reached: the handler raises
    finally:
        cursor.close()


def pg_array(values: Iterable[Any]) -> str:
    """``values`` as a PostgreSQL array literal, for a parameter its statement casts
    (``CAST(:keys AS text[])``, ``bigint[]``, ``jsonb[]``): psycopg adapts a Python list by
    inspecting its elements on every execution, 23 µs for the three arrays a write's jobs take
    against 1 for the same as strings (measured in a loop). Every element is quoted, so any text
    is safe; None is NULL."""
    return "{" + ",".join(
        "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for v in values
    ) + "}"


def jsonb(value: Any) -> Jsonb:
    """A JSON parameter for ``driver_rows``, encoded with orjson."""
    return Jsonb(value, dumps=jsoncodec.dumps)


# A pooled connection idle for longer than this is pinged before use (see make_engine).
PING_IF_IDLE_SECONDS = 1.0


def make_engine(
    database_url: str, *, pool_size: int = 5, echo: bool = False, autocommit: bool = False
) -> Engine:
    """The engine, with a ping only for connections that sat idle: SQLAlchemy's pre_ping costs
    a round trip on every checkout (a tenth of a lookup's time here), while a connection in
    steady use is known to work. After a PostgreSQL restart, the requests in flight fail (503),
    the first error invalidates the pool, and idle connections are caught by the ping.
    ``autocommit``: its connections are in autocommit from the start (its own pool: switching
    a pooled connection in and out of autocommit on every checkout cost 2-3 % of a lookup)."""
    engine = create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        echo=echo,
        json_deserializer=jsoncodec.loads,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IF_IDLE_SECONDS:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            if dbapi_conn.info.transaction_status != 0:  # psycopg: IDLE
                dbapi_conn.rollback()
        except Exception as exc:
            # The pool discards this connection and tries another (SQLAlchemy's documented
            # pessimistic-disconnect recipe).
            raise DisconnectionError(str(exc)) from exc

    return engine


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()
