"""Two asyncio-style transports joined in memory, for TLS transport tests without sockets.

Bytes written on one side are queued and handed to the other side's protocol
(``get_buffer``/``buffer_updated``, as uvloop does) when the test calls
:meth:`MemoryLink.pump`, so the order of events is the test's to choose.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class MemoryTransport:
    """One end: what its protocol writes goes to ``peer``'s protocol on pump()."""

    def __init__(self, link: MemoryLink, name: str, peer_address: tuple[str, int]) -> None:
        self.link = link
        self.name = name
        self.peer_address = peer_address
        self.protocol: asyncio.BufferedProtocol | None = None
        self.peer: MemoryTransport | None = None
        self.outbox: deque[bytes | None] = deque()  # None: our FIN
        self.closing = False
        self.aborted = False
        self.lost = False
        self.reading = True
        self.sent = 0

    # -- the asyncio transport API TLSTransport uses --------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing:
            return
        if data:
            self.outbox.append(bytes(data))
            self.sent += len(data)

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))

    def write_eof(self) -> None:
        self.outbox.append(None)

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.outbox.append(None)
            self.link.closing.append(self)

    def abort(self) -> None:
        self.closing = self.aborted = True
        self.outbox.clear()
        self.link.closing.append(self)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer_address if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class MemoryLink:
    """A client and a server protocol joined by two memory transports."""

    def __init__(self, client: asyncio.BufferedProtocol, server: asyncio.BufferedProtocol, *,
                 client_address: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self.closing: list[MemoryTransport] = []
        self.client = MemoryTransport(self, "client", ("127.0.0.1", 443))
        self.server = MemoryTransport(self, "server", client_address)
        self.client.peer, self.server.peer = self.server, self.client
        self.client.protocol, self.server.protocol = client, server
        server.connection_made(self.server)  # type: ignore[arg-type]
        client.connection_made(self.client)  # type: ignore[arg-type]

    def _deliver(self, source: MemoryTransport) -> bool:
        target = source.peer
        assert target is not None and target.protocol is not None
        moved = False
        while source.outbox and not target.lost:
            item = source.outbox.popleft()
            moved = True
            if item is None:
                keep = target.protocol.eof_received()
                if not keep:
                    target.close()
                continue
            view = target.protocol.get_buffer(len(item))
            view[:len(item)] = item
            target.protocol.buffer_updated(len(item))
        return moved

    def pump(self, rounds: int = 20) -> None:
        """Deliver queued bytes both ways until nothing moves; then finish closed ends."""
        for _ in range(rounds):
            moved = self._deliver(self.client) | self._deliver(self.server)
            if not moved:
                break
        for transport in list(self.closing):
            self.closing.remove(transport)
            if transport.lost:
                continue
            self._deliver(transport)
            transport.lost = True
            assert transport.protocol is not None
            transport.protocol.connection_lost(None)
            peer = transport.peer
            if transport.aborted and peer is not None and not peer.lost:
                peer.lost = True  # a reset reaches the other end as a failure
                assert peer.protocol is not None
                peer.protocol.connection_lost(ConnectionResetError("reset by peer"))
