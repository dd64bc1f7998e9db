"""ByteLRU: eviction by recency, exact byte accounting, oversize refusal, thread safety."""

import random
import threading

from app.core.cache import ByteLRU


def bytes_cache(capacity: int) -> ByteLRU[bytes]:
    return ByteLRU(capacity, len)


def test_least_recently_put_is_evicted_first() -> None:
    cache = bytes_cache(10)
    cache.put("a", b"aaa")
    cache.put("b", b"bbb")
    cache.put("c", b"ccc")
    assert cache.nbytes == 9
    cache.put("d", b"ddd")  # 9 + 3 > 10: "a" goes
    assert "a" not in cache
    assert [key in cache for key in "bcd"] == [True, True, True]
    assert cache.nbytes == 9
    assert len(cache) == 3


def test_get_refreshes_recency() -> None:
    cache = bytes_cache(10)
    for key in "abc":
        cache.put(key, key.encode() * 3)
    assert cache.get("a") == b"aaa"
    cache.put("d", b"ddd")  # "b" is now the least recently used
    assert "b" not in cache
    assert cache.get("a") == b"aaa"
    assert cache.get("c") == b"ccc"


def test_membership_test_does_not_refresh_or_count() -> None:
    cache = bytes_cache(6)
    cache.put("a", b"aaa")
    cache.put("b", b"bbb")
    assert "a" in cache
    cache.put("c", b"ccc")
    assert "a" not in cache
    assert (cache.hits, cache.misses) == (0, 0)


def test_evicts_as_many_entries_as_needed() -> None:
    cache = bytes_cache(10)
    cache.put("a", b"11")
    cache.put("b", b"222")
    cache.put("c", b"3333")
    cache.put("d", b"44444")  # 9 + 5: drop a (12), drop b (9 <= 10)
    assert ["a" in cache, "b" in cache, "c" in cache, "d" in cache] == [False, False, True, True]
    assert cache.nbytes == 9


def test_value_of_exactly_capacity_fits_alone() -> None:
    cache = bytes_cache(10)
    cache.put("a", b"aaa")
    cache.put("full", b"x" * 10)
    assert "a" not in cache
    assert cache.get("full") == b"x" * 10
    assert cache.nbytes == 10


def test_oversize_value_is_not_stored_and_keeps_others() -> None:
    cache = bytes_cache(10)
    cache.put("a", b"aaa")
    cache.put("huge", b"x" * 11)
    assert "huge" not in cache
    assert cache.get("a") == b"aaa"
    assert cache.nbytes == 3


def test_oversize_replacement_drops_the_stale_value() -> None:
    cache = bytes_cache(10)
    cache.put("a", b"aaa")
    cache.put("b", b"bb")
    cache.put("a", b"x" * 11)
    assert cache.get("a") is None
    assert cache.nbytes == 2
    assert len(cache) == 1


def test_replacing_a_key_accounts_only_the_new_size() -> None:
    cache = bytes_cache(10)
    cache.put("a", b"aaa")
    cache.put("b", b"bbbb")
    cache.put("a", b"aaaaaa")  # 4 + 6 = 10: fits without evicting b
    assert cache.nbytes == 10
    assert cache.get("b") == b"bbbb"
    assert cache.get("a") == b"aaaaaa"
    assert len(cache) == 2


def test_hits_and_misses_are_counted() -> None:
    cache = bytes_cache(10)
    cache.put("a", b"a")
    assert cache.get("a") == b"a"
    assert cache.get("a") == b"a"
    assert cache.get("missing") is None
    assert (cache.hits, cache.misses) == (2, 1)


def test_sizeof_decides_the_accounting() -> None:
    cache: ByteLRU[list[int]] = ByteLRU(110, lambda values: 8 * len(values))
    cache.put(("analysis", "conv1"), [1, 2, 3])
    cache.put(("analysis", "conv2"), list(range(10)))
    assert cache.nbytes == 24 + 80
    cache.put(("analysis", "conv3"), [7, 8])  # 104 + 16 > 110: conv1 goes
    assert ("analysis", "conv1") not in cache
    assert cache.nbytes == 80 + 16


def test_concurrent_puts_and_gets_keep_the_byte_count_exact() -> None:
    capacity = 500
    cache = bytes_cache(capacity)
    keys = range(40)
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2000):
            key = rng.choice(keys)
            if rng.random() < 0.5:
                cache.put(key, bytes([key]) * rng.randint(0, 60))
            else:
                value = cache.get(key)
                if value is not None and set(value) - {key}:
                    errors.append(f"key {key} returned another key's bytes")
            if cache.nbytes > capacity:
                errors.append(f"{cache.nbytes} bytes held, capacity {capacity}")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    held = [cache.get(key) for key in keys]
    stored = [value for value in held if value is not None]
    assert cache.nbytes == sum(len(value) for value in stored)
    assert len(cache) == len(stored)
    assert cache.nbytes <= capacity
