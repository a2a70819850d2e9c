"""Values read from a database, served again while the version they were read at still holds.

The version is whatever the value depends on besides the stored data's state: typically the count of the
database's committed writes (`libs.change_counter`) and a time slot. Pure: no I/O, safe across threads (one dict
operation at a time under the GIL).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CurrentCache(Generic[K, V]):
    """Values read from the database, each kept with the version it was read at (the change count, and whatever
    else the value depends on, such as the hour); a value is served only at that same version."""

    def __init__(self, max_entries: int = 10_000):
        self._entries: dict[K, tuple[Hashable, V]] = {}
        self._max_entries = max_entries

    def get(self, key: K, version: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        return entry[1]

    def put(self, key: K, version: Hashable, value: V) -> None:
        """`version` must be the one taken before the value was read: a write in between then makes it stale."""
        if len(self._entries) >= self._max_entries and key not in self._entries:
            self._entries.clear()  # rare: more distinct keys than a deployment reads; start again
        self._entries[key] = (version, value)


P = TypeVar("P")


class MappedOnce(Generic[V, P]):
    """A mapping (to a proto, say) done once per object: a value served again from a `CurrentCache` is the same
    object, so its mapped form is too. The result is shared between callers and must not be changed."""

    def __init__(self, mapping: Callable[[V], P], max_entries: int = 10_000):
        self._mapping = mapping
        self._entries: dict[int, tuple[V, P]] = {}  # by id(value); the value is held so its id stays its own
        self._max_entries = max_entries

    def __call__(self, value: V) -> P:
        entry = self._entries.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        mapped = self._mapping(value)
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[id(value)] = (value, mapped)
        return mapped
