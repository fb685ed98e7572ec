"""models.db.pg_array: the array parameters a write's job rows take, sent as literals."""

from __future__ import annotations

import json

import pytest

from models.db import pg_array


@pytest.mark.parametrize("cast, values", [
    ("text[]", ["license.check", 'a "quoted", {braced} \\ back\\slash', "", "NULL", " spaced "]),
    ("bigint[]", [-9223372036854775808, 0, 9223372036854775807]),
    ("jsonb[]", ['{"user_id": "u1", "version": 2}', '["x", "y\\\\z"]']),
    ("text[]", []),
])
def test_array_literals_reach_postgresql_as_the_values(app, cast, values):
    """models.db.pg_array: the job parameters a write sends as array literals come back
    element for element, whatever the text holds."""
    with app.extensions["db.engine"].connect() as connection:
        got = connection.exec_driver_sql(
            f"SELECT CAST(%(values)s AS {cast})", {"values": pg_array(values)}).scalar()
    if cast == "jsonb[]":
        values = [json.loads(v) for v in values]
    assert got == values
