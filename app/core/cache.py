"""A thread-safe LRU cache bounded in bytes, not entries: feature maps vary from kilobytes to megabytes."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """Least-recently-used cache whose total `sizeof(value)` never exceeds `capacity_bytes`.

    A value larger than the whole capacity is not stored (the caller still has it).
    """

    def __init__(self, capacity_bytes: int, sizeof: Callable[[V], int]) -> None:
        self.capacity_bytes = capacity_bytes
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        """The value for `key` (marking it most recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: V) -> None:
        """Store `value`, evicting least-recently-used entries until it fits."""
        size = self._sizeof(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.capacity_bytes:
                return
            while self._bytes + size > self.capacity_bytes and self._items:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted
            self._items[key] = (value, size)
            self._bytes += size

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        with self._lock:
            return self._bytes
