"""Where a flow's progress messages go: the Prefect run log, and whoever listens (the CLI).

Flow parameters must be JSON for the Prefect API, so a progress callback cannot be passed in;
the CLI registers a listener here instead, and tasks announce what they are doing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

Listener = Callable[[str], None]
_listeners: list[Listener] = []


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def announce(message: str) -> None:
    with suppress(MissingContextError):
        get_run_logger().info(message)
    for listener in list(_listeners):
        listener(message)
