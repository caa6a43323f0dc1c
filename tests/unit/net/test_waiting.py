"""The table of unauthenticated connections: counts by source, and who makes room."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustwire.net.addresses import source_key
from trustwire.net.waiting import Waiting


def test_the_victim_is_the_oldest_of_the_largest_source() -> None:
    waiting: Waiting[str] = Waiting()
    waiting.add("honest", "h")
    for i in range(3):
        waiting.add(f"a{i}", "a")
    waiting.add("b0", "b")
    assert waiting.victim() == "a0" and waiting.count("a") == 3 and len(waiting) == 5
    waiting.remove("a0")
    waiting.remove("a1")
    waiting.add("b1", "b")
    assert waiting.victim() == "b0"  # b now holds the most
    waiting.remove("missing")  # no-op
    assert "honest" in waiting and "a0" not in waiting


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30), st.sampled_from("abcde")),
                max_size=200))
def test_the_victim_always_belongs_to_a_largest_source(ops: list[tuple[bool, int, str]]) -> None:
    waiting: Waiting[int] = Waiting()
    model: dict[int, str] = {}
    for add, item, source in ops:
        if add and item not in model:
            waiting.add(item, source)
            model[item] = source
        elif not add:
            waiting.remove(item)
            model.pop(item, None)
        victim = waiting.victim()
        if not model:
            assert victim is None
            continue
        counts = {s: sum(1 for v in model.values() if v == s) for s in set(model.values())}
        assert victim is not None and counts[model[victim]] == max(counts.values())
        oldest = next(i for i in model if model[i] == model[victim])
        assert victim == oldest
    assert len(waiting) == len(model)


@pytest.mark.parametrize(("host", "key"), [
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("::1", "::1"),
    ("fe80::1%eth0", "fe80::/64"),
    ("", ""),
])
def test_source_keys(host: str, key: str) -> None:
    assert source_key(host) == key
