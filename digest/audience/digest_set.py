"""A compact set of 64-bit address digests, for de-duplicating a list streamed from disk.

Python's ``set[int]`` spends about 80 bytes per 64-bit entry (the int object and the hash
table slot); a million-row list would need ~80 MB for de-duplication alone. This open-addressing
table keeps the digests in one flat ``array('Q')`` at a load of at most one half: 16-32 bytes
per entry.
"""

from __future__ import annotations

from array import array

_EMPTY = 0


class DigestSet:
    """Set semantics (``add``, ``in``, ``len``) for non-negative ints below 2**64.

    ``capacity``: how many keys it will hold without growing. A reader that knows how many
    rows it will see sizes it once: growing holds the old and the new table at the same time
    and re-inserts every key."""

    __slots__ = ("_count", "_limit", "_mask", "_slots")

    def __init__(self, capacity: int = 1024) -> None:
        size = 8
        while size < capacity * 2:
            size *= 2
        self._allocate(size)

    def _allocate(self, size: int) -> None:
        """An empty table of ``size`` slots (a power of two)."""
        self._slots = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._limit = size // 2  # the most keys before it grows: a load of at most one half
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        key = key or 1  # 0 marks an empty slot; 0 and 1 sharing a slot costs 2**-64 odds
        slots, mask = self._slots, self._mask
        index = key & mask  # digests are uniform, so their low bits spread well
        while (found := slots[index]) != _EMPTY:
            if found == key:
                return True
            index = (index + 1) & mask
        return False

    def add(self, key: int) -> bool:
        """Add ``key``; True when it was not there yet."""
        key = key or 1
        slots = self._slots
        mask = self._mask
        index = key & mask
        while (found := slots[index]) != _EMPTY:
            if found == key:
                return False
            index = (index + 1) & mask
        slots[index] = key
        self._count += 1
        if self._count > self._limit:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._allocate(2 * len(old))
        for key in old:
            if key != _EMPTY:
                self.add(key)
