"""models.db.pg_array: the array parameters a write's job rows and a group's members take,
sent as literals."""

from __future__ import annotations

import json
import uuid

import pytest

from models.db import pg_array


@pytest.mark.parametrize("cast, values", [
    ("text[]", ["license.check", 'a "quoted", {braced} \\ back\\slash', "", "NULL", " spaced "]),
    ("bigint[]", [-9223372036854775808, 0, 9223372036854775807]),
    ("jsonb[]", ['{"user_id": "u1", "version": 2}', '["x", "y\\\\z"]']),
    ("text[]", []),
    ("uuid[]", ["6f1c8b52-1d0b-4a43-9a7e-0c2f4a1b9e11", None,
                "00000000-0000-0000-0000-000000000000"]),
    ("text[]", [None, "NULL", "null"]),
])
def test_array_literals_reach_postgresql_as_the_values(app, cast, values):
    """models.db.pg_array: the job parameters a write sends as array literals come back
    element for element, whatever the text holds."""
    with app.extensions["db.engine"].connect() as connection:
        got = connection.exec_driver_sql(
            f"SELECT CAST(%(values)s AS {cast})", {"values": pg_array(values)}).scalar()
    if cast == "jsonb[]":
        values = [json.loads(v) for v in values]
    if cast == "uuid[]":
        values = [None if v is None else uuid.UUID(v) for v in values]
    assert got == values
