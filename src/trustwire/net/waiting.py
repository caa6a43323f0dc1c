"""The connections that have not authenticated yet, by source: what the caps are kept on.

A listener caps unfinished handshakes per source and in all. When the whole
table is full, a newcomer makes room by dropping the *oldest connection of the
source that holds the most*: a host (or a /64) flooding the table pays for it,
while a slow honest client (a long round trip, one connection) is never the
largest source. Dropping the oldest overall, as before, let a few hosts that
reopen their sockets as fast as they are dropped evict every handshake slower
than their churn.

The largest source is found with a lazy max-heap: an entry ``(-count, order,
source)`` is pushed whenever a source's count changes, and entries whose count
is no longer current are skipped (and the heap rebuilt when stale ones
dominate), so adding, removing and choosing a victim are all O(log n).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Waiting"]

S = TypeVar("S", bound=Hashable)


class Waiting(Generic[S]):
    """Unauthenticated connections, oldest first, grouped by source."""

    def __init__(self) -> None:
        self._source: dict[S, str] = {}
        self._by_source: dict[str, dict[S, None]] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._source)

    def __contains__(self, item: object) -> bool:
        return item in self._source

    def count(self, source: str) -> int:
        group = self._by_source.get(source)
        return len(group) if group is not None else 0

    def add(self, item: S, source: str) -> None:
        self._source[item] = source
        group = self._by_source.setdefault(source, {})
        group[item] = None
        self._push(source, len(group))

    def remove(self, item: S) -> None:
        """Forget ``item`` (no-op when it is not here)."""
        source = self._source.pop(item, None)
        if source is None:
            return
        group = self._by_source[source]
        del group[item]
        if group:
            self._push(source, len(group))
        else:
            del self._by_source[source]

    def victim(self) -> S | None:
        """The oldest connection of the source holding the most (None when empty)."""
        heap = self._heap
        while heap:
            negative, _, source = heap[0]
            group = self._by_source.get(source)
            if group is not None and len(group) == -negative:
                return next(iter(group))
            heapq.heappop(heap)  # a count that is no longer current
        return None

    def _push(self, source: str, count: int) -> None:
        heap = self._heap
        if len(heap) > 2 * len(self._by_source) + 64:  # mostly stale: start afresh
            heap[:] = [(-len(g), next(self._order), s) for s, g in self._by_source.items()]
            heapq.heapify(heap)
            return
        heapq.heappush(heap, (-count, next(self._order), source))
