"""``batched()``: an iterable cut into lists of at most ``size`` items, read lazily.

:func:`itertools.batched` does this from Python 3.12 on (as tuples); digest supports 3.11.
A leaf module: the send engine, the ledger and the pre-send checks share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

_T = TypeVar("_T")


def batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Lists of ``size`` items (the last one shorter); a stream is never read ahead."""
    if size < 1:
        raise ValueError("a batch holds at least one item")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
