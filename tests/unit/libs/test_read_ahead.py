"""`read_ahead`: the items in order, made on another thread at most `depth` ahead; errors and early stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from libs.read_ahead import read_ahead


def test_items_come_in_order_made_on_another_thread() -> None:
    makers: set[str] = set()

    def items() -> Iterator[int]:
        for number in range(100):
            makers.add(threading.current_thread().name)
            yield number

    assert list(read_ahead(items(), name="maker")) == list(range(100))
    assert makers == {"maker"}


def test_the_maker_runs_at_most_depth_items_ahead() -> None:
    made: list[int] = []
    def items() -> Iterator[int]:
        for number in range(10):
            made.append(number)
            yield number

    reading = read_ahead(items(), depth=2)
    assert next(reading) == 0
    time.sleep(0.2)  # time for the maker to run as far ahead as it may (the bound holds whatever the timing)
    # Item 0 taken, items 1 and 2 waiting, item 3 made and waiting for room.
    assert len(made) <= 4
    assert list(reading) == list(range(1, 10))


def test_an_error_making_an_item_is_raised_at_that_item() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is not a record")

    got: list[int] = []
    with pytest.raises(ValueError, match="line 3"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_maker_and_closes_its_generator() -> None:
    closed = threading.Event()
    made: list[int] = []

    def items() -> Iterator[int]:
        try:
            for number in range(1_000_000):
                made.append(number)
                yield number
        finally:
            closed.set()

    reading = read_ahead(items())
    for item in reading:
        if item == 3:
            break
    reading.close()  # what leaving a for loop over a generator does when the generator is dropped
    assert closed.is_set()
    assert len(made) < 10


def test_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="depth"):
        next(read_ahead(iter([1]), depth=0))
