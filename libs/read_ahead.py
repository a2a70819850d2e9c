"""Reading ahead: the next items of an iterator made on another thread while the caller works on the current one.

Worth it where making an item spends most of its time outside the GIL (Arrow's CSV reader, numpy, file reads) and
the caller's work is long too: on two cores the two overlap. The items come in order, each made after the one before
it was made (never more than `depth` ahead), so a generator that notes where it stands as it yields (a resume point)
still notes it right for the item it yields.

    for batch in read_ahead(batches(path)):
        apply(batch)

An exception raised making an item is raised to the caller at that item. A caller that stops early (break, an
exception) stops the maker after the item it is making; leaving the loop waits for that.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.05


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def read_ahead(items: Iterable[T], *, depth: int = 1, name: str = "read-ahead") -> Iterator[T]:
    """`items`, made on a thread of their own at most `depth` items ahead of the caller."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not hand_over(item):
                    return
        except BaseException as error:  # handed to the caller, raised there
            hand_over(_Failed(error))
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator left early runs its `finally` (an open file) here, not at garbage collection
        hand_over(_END)

    maker = threading.Thread(target=make, name=name, daemon=True)
    maker.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]  # an item of `items`
    finally:
        stop.set()
        maker.join()
