"""The sweep hands freed heap pages back to the kernel only after new connections."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from trustwire.net import listener as listener_module
from trustwire.net.listener import Listener
from trustwire.net.material import from_context


class _Bare(Listener):
    def _protocol(self) -> asyncio.BaseProtocol:
        raise AssertionError("not used")


def bare() -> _Bare:
    return _Bare(from_context(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)), sweep_interval=0)


def test_release_runs_once_per_sweep_after_new_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(listener_module, "release_free_memory", lambda: calls.append(1))
    listener = bare()
    listener.sweep()  # nothing accepted yet
    assert calls == []
    listener.stats.accepted += 3
    listener.sweep()
    assert calls == [1]
    listener.sweep()  # nothing new since
    assert calls == [1]
    listener.stats.accepted += 1
    listener.sweep()
    assert calls == [1, 1]


def test_release_free_memory_uses_glibc_malloc_trim() -> None:
    # The test machines run glibc: the binding must be found, and calling it is harmless.
    assert listener_module._TRIM is not None
    listener_module.release_free_memory()
