"""The sweep hands freed heap pages back to the kernel only after new connections."""

from __future__ import annotations

import asyncio

import pytest

from trustwire.server import listener as listener_module
from trustwire.server.listener import Listener


class _Bare(Listener):
    def _protocol(self) -> asyncio.BaseProtocol:
        raise AssertionError("not used")


def test_release_runs_once_per_sweep_after_new_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(listener_module, "release_free_memory", lambda: calls.append(1))

    async def sweeps() -> None:
        bare = _Bare()
        bare._sweep()  # nothing accepted yet
        assert calls == []
        bare.stats["accepted"] += 3
        bare._sweep()
        assert calls == [1]
        bare._sweep()  # nothing new since
        assert calls == [1]
        bare.stats["accepted"] += 1
        bare._sweep()
        assert calls == [1, 1]
        assert bare._sweeper is not None
        bare._sweeper.cancel()

    asyncio.run(sweeps())


def test_release_free_memory_uses_glibc_malloc_trim() -> None:
    # The test machines run glibc: the binding must be found, and calling it is harmless.
    assert listener_module._TRIM is not None
    listener_module.release_free_memory()
