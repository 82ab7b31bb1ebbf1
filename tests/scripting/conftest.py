"""A small ScriptHost for the scripting tests (others' tests may import ``TestHost``).

Culture invariant, paths mapped as they are, real sleeping (an Event wait) bounded by ``max_sleep``,
message boxes collected in ``messages``, no databases, cancellation by ``cancel()``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dtsx.scripting import values

__all__ = ["TestHost", "invariant_culture"]


def invariant_culture() -> Any:
    """The format helper's invariant culture, or None while ``cultures`` does not exist."""
    try:
        cultures = importlib.import_module("dtsx.scripting.cultures")
    except ImportError:
        return None
    for name in ("INVARIANT", "invariant", "InvariantCulture"):
        found = getattr(cultures, name, None)
        if found is not None:
            return found() if callable(found) and not hasattr(found, "name") else found
    get = getattr(cultures, "get_culture", None) or getattr(cultures, "culture", None)
    return get("") if callable(get) else None


class TestHost:
    """A ``values.ScriptHost`` for tests."""

    __test__ = False  # not a pytest test class

    def __init__(self, *, max_sleep: float = 0.5, culture: Any = None) -> None:
        self.culture = invariant_culture() if culture is None else culture
        self.max_sleep = max_sleep
        self.messages: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self._canceled = threading.Event()

    def map_path(self, path: str) -> str:
        return path

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self._canceled.wait(min(seconds, self.max_sleep)):
            raise values.exception_class("System.OperationCanceledException")(
                "The operation was canceled."
            )

    def message_box(self, text: str, caption: str) -> None:
        self.messages.append((text, caption))

    def database(self, connection: object) -> Any:
        raise values.exception_class("System.InvalidOperationException")(
            f"the test host has no database for {connection!r}"
        )

    def cancel(self) -> None:
        self._canceled.set()

    def canceled(self) -> bool:
        return self._canceled.is_set()


@pytest.fixture
def host() -> Iterator[TestHost]:
    """A ``TestHost`` entered as the current host."""
    test_host = TestHost()
    with values.use_host(test_host):
        yield test_host
