"""The application class: what it changes of Flask's behaviour."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.views import View


def test_plain_functions_are_looked_up_once_and_stay_callable(app: Flask) -> None:
    def hook() -> str:
        return "ran"

    first = app.ensure_sync(hook)
    assert first is hook
    assert app.ensure_sync(hook) is first
    assert first() == "ran"


def test_bound_methods_are_not_remembered(app: Flask) -> None:
    # A class-based view dispatches through a new bound method each request: remembering
    # them would grow without bound.
    class Ping(View):
        def dispatch_request(self) -> str:
            return "pong"

    before = len(app._sync)
    for _ in range(3):
        assert app.ensure_sync(Ping().dispatch_request)() == "pong"
    assert len(app._sync) == before


def test_a_coroutine_function_is_still_handed_to_flask(app: Flask) -> None:
    async def view() -> str:
        return "async"

    # Flask's own answer for an async view (asgiref is not installed: it refuses it), every
    # time: the cache does not turn it into a plain function.
    for _ in range(2):
        with pytest.raises(RuntimeError, match="async"):
            app.ensure_sync(view)
