"""An immutable string -> int mapping that grows by one entry in O(1), for folds over events.

An account's debits and deposits are such maps: each event adds one entry, and every earlier
state must still see only the entries it had.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping


class GrowingMap(Mapping[str, int]):
    """An immutable mapping that shares its storage with the maps it was grown from.

    An account's debits and deposits only grow, one entry per event. Copying the mapping on
    each event made loading a stream quadratic in its length; here the newest map of a
    lineage grows in O(1) by appending to the shared storage, and every older map still sees
    only the entries it had (each entry records the size at which it was added).
    """

    __slots__ = ("_entries", "_lock", "_size")

    def __init__(
        self, entries: dict[str, tuple[int, int]], size: int, lock: threading.Lock
    ) -> None:
        self._entries = entries  # key -> (insertion index, value), shared along the lineage
        self._size = size
        self._lock = lock

    @classmethod
    def of(cls, items: Mapping[str, int]) -> GrowingMap:
        """A new lineage holding a copy of `items`."""
        entries = {key: (index, value) for index, (key, value) in enumerate(items.items())}
        return cls(entries, len(entries), threading.Lock())

    def __getitem__(self, key: str) -> int:
        entry = self._entries.get(key)
        if entry is None or entry[0] >= self._size:
            raise KeyError(key)
        return entry[1]

    def __contains__(self, key: object) -> bool:
        entry = self._entries.get(key)  # type: ignore[call-overload]
        return entry is not None and entry[0] < self._size

    def __iter__(self) -> Iterator[str]:
        # A copy: the lineage may grow while the caller iterates.
        return iter(list(self._entries)[: self._size])

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"GrowingMap({dict(self)!r})"

    def with_entry(self, key: str, value: int) -> GrowingMap:
        """This map plus one entry; this map itself is unchanged."""
        with self._lock:
            # Only the newest map of the lineage may append: an older one would see it.
            if key not in self._entries and len(self._entries) == self._size:
                self._entries[key] = (self._size, value)
                return GrowingMap(self._entries, self._size + 1, self._lock)
        return GrowingMap.of({**self, key: value})  # a branch or an overwrite: rare


def with_entry(items: Mapping[str, int], key: str, value: int) -> Mapping[str, int]:
    """`items` plus one entry, without changing `items` (amortized O(1) along a fold)."""
    grown = items if isinstance(items, GrowingMap) else GrowingMap.of(items)
    return grown.with_entry(key, value)
