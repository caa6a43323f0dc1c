"""What every trustwire listener shares: accepting, limits, the sweep, shutdown.

Theory of operation: ``loop.create_server`` accepts TCP connections (uvloop
when installed); a subclass's ``make_protocol()`` makes the session and returns
its asyncio protocol. One repeating timer per listener (the *sweep*, every
``sweep_interval`` seconds; tests call :meth:`Listener.sweep` themselves with
their own clock) enforces handshake and idle timeouts, re-judges sessions whose
certificate or CRL ran out, and flushes the observer, instead of a timer per
connection.

Limits (:class:`Limits`) bound everything a client can make a listener hold:
connections; connections that have not authenticated yet, per source (an IPv4
address or an IPv6 /64: refused at once, so one host cannot crowd out the
others) and in all (a newcomer makes room by dropping the oldest connection of
the source holding the most, see :mod:`trustwire.net.waiting`); handshake
time; idle time; message size; queued messages; and unsent bytes (a peer that
stops reading stops being read). Refusals are counted at once but reported to
the observer once per sweep, per reason, with a count: a flood of bare sockets
must not become a flood of audit lines.

Trust (:meth:`Listener.apply`) swaps the context and the gate's trust state
together; :meth:`Listener.rejudge` then asks the gate about every open
session. Shutdown (:meth:`Listener.close`): stop accepting, ask every session
to finish, and abort what is left when the grace period ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from trustwire.errors import ConfigError
from trustwire.net.addresses import source_key
from trustwire.net.gate import Gate
from trustwire.net.material import Material
from trustwire.net.observer import Observer, Stats
from trustwire.net.session import Session
from trustwire.net.waiting import Waiting
from trustwire.wire.frames import DEFAULT_MAX_FRAME

__all__ = ["Limits", "Listener", "release_free_memory"]


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc; other C libraries lack it
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return cast("Callable[[int], int]", trim)


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the kernel.

    A handshake briefly holds tens of KiB of OpenSSL buffers; after a burst of them
    the freed memory sits in holes between long-lived connections, where glibc
    keeps it resident. ``malloc_trim`` releases those pages: with two workers
    sharing both cores with the clients, idle RSS per connection went from 44 to
    40 KiB (3 runs each); it takes at most ~1.5 ms with 9,750 connections open.
    Called from the sweep, at most once a second and only after new connections.
    """
    if _TRIM is not None:
        _TRIM(0)


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds on what clients can make the server hold."""

    max_connections: int = 10_000
    """Connections beyond this are closed right after accept."""
    max_handshakes: int = 1024
    """Connections that have not finished their handshake; a new one beyond this makes
    room by dropping the oldest (0: no limit)."""
    max_handshakes_per_source: int = 128
    """Unfinished handshakes from one IP address; more from it are closed at once
    (0: no limit)."""
    handshake_timeout: float = 10.0
    """Seconds a client has to complete the TLS handshake."""
    idle_timeout: float = 300.0
    """Seconds without a message before the server closes (0: never)."""
    max_frame: int = DEFAULT_MAX_FRAME
    """Largest message, in bytes."""
    max_queued: int = 64
    """Messages a stream handler may fall behind before reading pauses."""
    write_high_water: int = 256 * 1024
    """Unsent reply bytes per connection before reading from it pauses."""
    shutdown_grace: float = 10.0
    """Seconds in-flight messages get at shutdown before connections are cut."""

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_frame < 1 or self.max_queued < 1:
            raise ConfigError("limits must be positive")
        if self.max_handshakes < 0 or self.max_handshakes_per_source < 0:
            raise ConfigError("handshake limits must be 0 (none) or positive")
        if self.handshake_timeout <= 0 or self.idle_timeout < 0 or self.shutdown_grace < 0:
            raise ConfigError("timeouts must be positive (idle timeout 0 means none)")


class _Refuser(asyncio.Protocol):
    """Closes a connection over the limit at once (no handshake: that is what is scarce)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class Listener:
    """Accepts connections and enforces :class:`Limits` and the trust state on them.

    Args:
        material: the context to accept with and the trust state to admit by.
        limits: resource bounds.
        observer: where events go (the audit log), or None.
        sweep_interval: seconds between sweeps (timeouts, expiries, flushing).

    Subclasses implement ``make_protocol()``: make a session, ``track`` it, and return
    the asyncio protocol for its transport.
    """

    server_side = True
    """The TLS side accepts (False for a tunnel client, which connects out)."""

    def __init__(self, material: Material, *, limits: Limits | None = None,
                 observer: Observer | None = None, sweep_interval: float = 1.0) -> None:
        self.limits = limits or Limits()
        self.observer = observer
        self.say: Callable[[str], None] | None = None
        """Where operator notices go (the CLI's stderr), or None."""
        self.stats = Stats()
        self.sweep_interval = sweep_interval
        self.gate = Gate(material.trust, server_side=self.server_side, stats=self.stats)
        self.material = material
        self.context: ssl.SSLContext = material.context
        self.sessions: set[Session] = set()
        self.unauthenticated: Waiting[Session] = Waiting()
        """Sessions still in their handshake, by source."""
        self._refusals: dict[str, list[str]] = {}
        """Refusals since the last sweep: reason -> a few of the addresses refused."""
        self._refusal_counts: collections.Counter[str] = collections.Counter()
        self.closing = False
        self.last_reload_error: str | None = None
        self.last_reload_at: float | None = None
        self.started = time.time()
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed: asyncio.Event | None = None
        self._accepted_at_sweep = 0
        self._crl_expiry_seen: set[str] = set()
        """Issuers whose CRL's expiry this material has already acted on."""
        self.apply(material)

    # -- trust ----------------------------------------------------------------------------------

    def apply(self, material: Material) -> None:
        """Accept new connections with ``material`` and admit by its trust state.

        Open sessions are not touched here: :meth:`rejudge` does that (a reloader
        calls both). Handshakes in flight on the previous context are judged by the
        new state when their decision comes, since the gate is shared.
        """
        self.inside_handshake = self.gate.install(material.context, epoch=material.epoch)
        """False when OpenSSL's callbacks could not be set (another libssl than Python's):
        then refusals come right after the handshake, and tickets are judged only then."""
        self.gate.update(material.trust)
        self.context = material.context
        self.material = material
        self._crl_expiry_seen = set()

    def rejudge(self, at: float | None = None) -> int:
        """Ask the gate about every open session; cut those it no longer admits.

        Args:
            at: Unix time to judge at (default now; the sweep passes its clock).

        Returns:
            How many sessions were cut.
        """
        return sum(1 for session in list(self.sessions) if session.rejudge(at))

    # -- accepting ------------------------------------------------------------------------------

    def make_protocol(self) -> asyncio.BaseProtocol:
        raise NotImplementedError

    def _accept(self) -> asyncio.BaseProtocol:
        if len(self.sessions) >= self.limits.max_connections or self.closing:
            self.stats.refused += 1
            self._refused(None, "max connections reached" if not self.closing
                          else "shutting down")
            return _Refuser()
        self.stats.accepted += 1
        return self.make_protocol()

    def track(self, session: Session) -> None:
        self.sessions.add(session)

    def forget(self, session: Session) -> None:
        self.sessions.discard(session)
        self.release_unauthenticated(session)

    def hold_unauthenticated(self, session: Session) -> None:
        """A connection arrived: count it until it authenticates; refuse it (or make room)
        when its source, or everyone, has too many unfinished handshakes."""
        source = source_key(session.tls.peer_host or "")
        limits = self.limits
        waiting = self.unauthenticated
        if limits.max_handshakes_per_source and \
                waiting.count(source) >= limits.max_handshakes_per_source:
            self.stats.refused_unauthenticated += 1
            self._refused(session.address, f"too many unfinished handshakes from {source} "
                          f"({limits.max_handshakes_per_source})")
            session.abort()
            return
        if limits.max_handshakes and len(waiting) >= limits.max_handshakes:
            victim = waiting.victim()
            if victim is not None:
                self.stats.evicted += 1
                self._refused(victim.address, "dropped to make room: "
                              f"{limits.max_handshakes} unfinished handshakes")
                victim.abort()
                waiting.remove(victim)
        waiting.add(session, source)

    def release_unauthenticated(self, session: Session) -> None:
        self.unauthenticated.remove(session)

    def unauthenticated_from(self, source: str) -> int:
        return self.unauthenticated.count(source_key(source))

    def _refused(self, address: str | None, reason: str) -> None:
        self._refusal_counts[reason] += 1
        samples = self._refusals.setdefault(reason, [])
        if address is not None and len(samples) < 5:
            samples.append(address)

    def _report_refusals(self) -> None:
        if self.observer is not None:
            for reason, count in self._refusal_counts.items():
                self.observer.refused(reason, count, self._refusals.get(reason, []))
        self._refusal_counts.clear()
        self._refusals.clear()

    # -- running --------------------------------------------------------------------------------

    async def start(
        self, host: str | None = None, port: int = 0, *, sock: socket.socket | None = None,
        reuse_port: bool = False, backlog: int = 1024,
    ) -> list[tuple[str, int]]:
        """Start listening; returns the bound addresses (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            server = await loop.create_server(self._accept, sock=sock, backlog=backlog)
        else:
            server = await loop.create_server(self._accept, host, port, backlog=backlog,
                                              reuse_port=reuse_port or None)
        self._servers.append(server)
        self._closed = asyncio.Event()
        if self._sweeper is None and self.sweep_interval > 0:
            self._sweeper = loop.call_later(self.sweep_interval, self._tick)
        return self.addresses

    @property
    def addresses(self) -> list[tuple[str, int]]:
        result = []
        for server in self._servers:
            for s in server.sockets:
                name = s.getsockname()
                result.append((str(name[0]), int(name[1])))
        return result

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await self._closed.wait()

    def _tick(self) -> None:
        self.sweep()
        self._sweeper = asyncio.get_running_loop().call_later(self.sweep_interval, self._tick)

    def sweep(self, now: float | None = None, wall: float | None = None) -> None:
        """One visit to every session (timeouts, certificates that ran out); the CRL's
        expiry re-judges everyone once (fail closed). ``now`` is monotonic, ``wall`` Unix
        time; both default to the clocks."""
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        expires = self.gate.trust.crl_next_update
        if expires is not None and wall > expires.timestamp():
            self._crls_expired(wall)
        for session in list(self.sessions):
            session.check(now, wall)
        if self._refusal_counts:
            self._report_refusals()
        if self.observer is not None:
            self.observer.flush()
        if self.stats.accepted != self._accepted_at_sweep:
            self._accepted_at_sweep = self.stats.accepted
            release_free_memory()

    def _crls_expired(self, wall: float) -> None:
        """A CRL ran out: its issuer's certificates are refused (fail closed) until a fresh
        one is loaded; re-judge everyone once per CRL."""
        for key, end in (self.gate.trust.crls or {}).items():
            if end is None or wall <= end.timestamp() or key in self._crl_expiry_seen:
                continue
            self._crl_expiry_seen.add(key)
            issuer = next((c.issuer for c in self.material.crls if c.key == key), key)
            cut = self.rejudge(at=wall)
            if self.observer is not None:
                self.observer.crl_expired(end.isoformat(), cut)
            if self.say is not None:
                self.say(f"the CRL from {issuer} expired at {end:%Y-%m-%d %H:%M:%S} UTC: the "
                         "certificates it issued are refused until a fresh one is loaded "
                         f"({cut} session(s) cut; `trustwire ca crl` writes one)")

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions finish within ``grace`` seconds, then cut the rest."""
        if self.closing:
            await self.wait_closed()
            return
        self.closing = True
        for server in self._servers:
            server.close()
        for session in list(self.sessions):
            if session.opened:
                session.begin_shutdown()
            else:
                session.abort()
        deadline = time.monotonic() + (self.limits.shutdown_grace if grace is None else grace)
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for session in list(self.sessions):
            session.abort()
        await asyncio.sleep(0)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._report_refusals()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        if self.observer is not None:
            self.observer.flush()
        if self._closed is not None:
            self._closed.set()
