"""STARTTLS servers on loopback: small responders speaking the real protocols' plaintext
dialogues, then TLS; and a real PostgreSQL cluster.

No light real server exists in Debian for most of these (postfix, dovecot, slapd, MySQL
want a system install), so each :class:`StarttlsServer` speaks the dialogue a real server
speaks, as RFC 3207 (SMTP), RFC 3501 (IMAP), RFC 2595 (POP3), RFC 4217 (FTP), RFC 4511
(LDAP) and the MySQL client/server protocol describe it, well enough for ``openssl
s_client -starttls`` (the cross-check) as well as the probe. With ``offer=False`` the
server speaks the protocol but does not offer TLS, the way real servers refuse.

Each connection gets a thread. After the TLS handshake the server reads until the client
closes. Every read has a timeout, so a stuck client costs one thread for a few seconds.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RESPONDER_PROTOCOLS", "PostgresServer", "StarttlsServer"]

RESPONDER_PROTOCOLS = ("smtp", "imap", "pop3", "ftp", "ldap", "mysql")

_LDAP_OID = b"1.3.6.1.4.1.1466.20037"


class _Refused(Exception):
    """The dialogue ended without TLS (as the protocol says it should)."""


def _readline(sock: socket.socket) -> bytes:
    """One line, byte by byte: a buffered reader could swallow the ClientHello behind it."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte or len(line) > 4096:
            raise _Refused
        line += byte
    return bytes(line).rstrip(b"\r\n")


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise _Refused
        data += chunk
    return bytes(data)


def _commands(sock: socket.socket, offer: bool, *, starttls: bytes, go_ahead: bytes,
              answers: dict[bytes, bytes], unknown: bytes, tagged: bool = False) -> None:
    """Answer commands until the client asks for TLS (and the server offers it) or quits.

    ``answers`` maps a verb to its reply; QUIT and LOGOUT end the session after theirs. With
    ``tagged`` (IMAP) each command starts with a tag, which replies echo where they say TAG.
    """
    for _ in range(10):
        line = _readline(sock)
        tag, _, command = line.partition(b" ") if tagged else (b"", b"", line)
        verb = command.split(b" ", 1)[0].upper()
        if command.upper() == starttls and offer:
            sock.sendall(go_ahead.replace(b"TAG", tag))
            return
        sock.sendall(answers.get(verb, unknown).replace(b"TAG", tag))
        if verb in (b"QUIT", b"LOGOUT"):
            raise _Refused
    raise _Refused


def _smtp(sock: socket.socket, offer: bool) -> None:
    sock.sendall(b"220-responder.test ESMTP trustwire test responder\r\n220 ready\r\n")
    lines = [b"responder.test hello", b"PIPELINING", b"SIZE 10240000",
             *([b"STARTTLS"] if offer else []), b"8BITMIME"]
    ehlo = b"".join(b"250" + (b"-" if i < len(lines) - 1 else b" ") + text + b"\r\n"
                    for i, text in enumerate(lines))
    _commands(sock, offer, starttls=b"STARTTLS", go_ahead=b"220 2.0.0 Ready to start TLS\r\n",
              answers={b"EHLO": ehlo, b"HELO": b"250 responder.test\r\n", b"QUIT": b"221 2.0.0 Bye\r\n"},
              unknown=b"502 5.5.2 Error: command not recognized\r\n")


def _imap(sock: socket.socket, offer: bool) -> None:
    capabilities = b"IMAP4rev1" + (b" STARTTLS" if offer else b"") + b" AUTH=PLAIN"
    sock.sendall(b"* OK [CAPABILITY " + capabilities + b"] responder ready\r\n")
    _commands(sock, offer, starttls=b"STARTTLS", go_ahead=b"TAG OK Begin TLS negotiation now\r\n",
              answers={b"CAPABILITY": b"* CAPABILITY " + capabilities + b"\r\nTAG OK CAPABILITY completed\r\n",
                       b"LOGOUT": b"* BYE\r\nTAG OK LOGOUT completed\r\n"},
              unknown=b"TAG BAD Error in IMAP command received by server.\r\n", tagged=True)


def _pop3(sock: socket.socket, offer: bool) -> None:
    sock.sendall(b"+OK responder ready.\r\n")
    _commands(sock, offer, starttls=b"STLS", go_ahead=b"+OK Begin TLS negotiation now.\r\n",
              answers={b"CAPA": b"+OK\r\nUSER\r\n" + (b"STLS\r\n" if offer else b"") + b".\r\n",
                       b"QUIT": b"+OK Logging out.\r\n"},
              unknown=b"-ERR Unknown command.\r\n")


def _ftp(sock: socket.socket, offer: bool) -> None:
    sock.sendall(b"220-Welcome to the trustwire test responder\r\n   (a free-text line)\r\n"
                 b"220 ready\r\n")
    _commands(sock, offer, starttls=b"AUTH TLS", go_ahead=b"234 AUTH TLS OK.\r\n",
              answers={b"AUTH": b"500 AUTH not understood\r\n", b"QUIT": b"221 Goodbye.\r\n"},
              unknown=b"530 Please login with USER and PASS.\r\n")


def _ber(tag: int, value: bytes) -> bytes:
    length = bytes([len(value)]) if len(value) < 0x80 else b"\x82" + struct.pack(">H", len(value))
    return bytes([tag]) + length + value


def _ldap(sock: socket.socket, offer: bool) -> None:
    head = _recv_exact(sock, 2)
    if head[0] != 0x30:
        raise _Refused
    size = head[1]
    if size & 0x80:
        size = int.from_bytes(_recv_exact(sock, size & 0x7F), "big")
    body = _recv_exact(sock, size)
    if _LDAP_OID not in body or body[:2] != b"\x02\x01":
        raise _Refused
    message_id = body[2:3]
    if offer:  # success, and the responseName [10] that RFC 2830 servers send
        op = _ber(0x0A, b"\x00") + _ber(0x04, b"") + _ber(0x04, b"") + _ber(0x8A, _LDAP_OID)
    else:
        op = (_ber(0x0A, b"\x02") + _ber(0x04, b"")
              + _ber(0x04, b"unsupported extended operation"))
    sock.sendall(_ber(0x30, _ber(0x02, message_id) + _ber(0x78, op)))
    if not offer:
        raise _Refused


def _mysql(sock: socket.socket, offer: bool) -> None:
    capabilities = 0xF7FF | (0x81FF << 16)  # everything a MySQL 8 server lists...
    if offer:
        capabilities |= 0x800  # ...and CLIENT_SSL when it has a certificate
    payload = (b"\x0a" + b"8.0.36-trustwire-responder\0" + struct.pack("<I", 42) + b"abcdefgh"
               + b"\0" + struct.pack("<H", capabilities & 0xFFFF) + b"\xff" + struct.pack("<H", 2)
               + struct.pack("<H", capabilities >> 16) + b"\x15" + b"\0" * 10 + b"ijklmnopqrst\0"
               + b"caching_sha2_password\0")
    sock.sendall(len(payload).to_bytes(3, "little") + b"\x00" + payload)
    header = _recv_exact(sock, 4)
    request = _recv_exact(sock, int.from_bytes(header[:3], "little"))
    flags = struct.unpack_from("<I", request)[0] if len(request) >= 4 else 0
    if not offer or header[3] != 1 or len(request) != 32 or not flags & 0x800:
        raise _Refused  # a full handshake response (no TLS): a real server would ask for auth


_DIALOGUES = {"smtp": _smtp, "imap": _imap, "pop3": _pop3, "ftp": _ftp, "ldap": _ldap,
              "mysql": _mysql}


class StarttlsServer:
    """``with StarttlsServer("smtp", cert, key) as server: server.port``."""

    def __init__(self, protocol: str, cert: Path, key: Path, *, offer: bool = True,
                 timeout: float = 5.0) -> None:
        self.protocol = protocol
        self.offer = offer
        self.connections = 0
        """Connections accepted so far."""
        self.handshakes = 0
        """TLS handshakes completed so far."""
        self._lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        dialogue = _DIALOGUES[protocol]
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with owner._lock:
                    owner.connections += 1
                try:
                    dialogue(sock, offer)
                    with context.wrap_socket(sock, server_side=True) as tls:
                        with owner._lock:
                            owner.handshakes += 1
                        while tls.recv(4096):
                            pass
                except (_Refused, OSError):
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 64

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)  # poll often: shutdown() waits one poll

    def __enter__(self) -> StarttlsServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(RuntimeError):
            self._thread.join(5)


def _postgres_tool(name: str) -> str | None:
    """Debian keeps PostgreSQL's programs in /usr/lib/postgresql/VERSION/bin, off PATH."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    return versions[-1] if versions else None


class PostgresServer:
    """A real PostgreSQL cluster in a temporary directory, listening on 127.0.0.1:``port``
    with ``ssl = on`` and the given certificate; :meth:`set_ssl` turns TLS off and on.

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user
    (the Debian package creates it) and every command runs through ``runuser``.
    """

    def __init__(self, cert: Path, key: Path, port: int) -> None:
        self.port = port
        self._cert, self._key = cert, key
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._tmp = Path(tempfile.mkdtemp(prefix="trustwire-pg-"))
        self.data = self._tmp / "data"

    @staticmethod
    def tools() -> tuple[str, str] | None:
        initdb, pg_ctl = _postgres_tool("initdb"), _postgres_tool("pg_ctl")
        return (initdb, pg_ctl) if initdb and pg_ctl else None

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_owner, *args], check=True, capture_output=True, timeout=60)

    def __enter__(self) -> PostgresServer:
        tools = self.tools()
        assert tools is not None
        initdb, self._pg_ctl = tools
        if self._as_owner:
            shutil.chown(self._tmp, "postgres", "postgres")
        try:
            # --no-sync and fsync=off: a throwaway cluster needs no durability, and they save seconds
            self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                      "--no-instructions", "-E", "UTF8")
            for source, name in ((self._cert, "server.crt"), (self._key, "server.key")):
                target = self.data / name
                shutil.copyfile(source, target)
                target.chmod(0o600)  # PostgreSQL refuses a key others can read
                if self._as_owner:
                    shutil.chown(target, "postgres", "postgres")
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                           f"unix_socket_directories = '{self._tmp}'\nfsync = off\n"
                           "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                           "include_if_exists = 'ssl.conf'\n")
            self.set_ssl(True, reload=False)
            self._run(self._pg_ctl, "-D", str(self.data), "-w", "-t", "30", "-l",
                      str(self._tmp / "log"), "start")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def set_ssl(self, on: bool, *, reload: bool = True) -> None:
        """Write ``ssl = on|off``; with ``reload``, signal the server and wait until it answers
        the SSLRequest accordingly."""
        conf = self.data / "ssl.conf"
        conf.write_text(f"ssl = {'on' if on else 'off'}\n")
        if self._as_owner:
            shutil.chown(conf, "postgres", "postgres")
        if not reload:
            return
        self._run(self._pg_ctl, "-D", str(self.data), "reload")
        wanted = b"S" if on else b"N"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(struct.pack(">II", 8, 80877103))
                if sock.recv(1) == wanted:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL did not turn ssl {'on' if on else 'off'}")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self._as_owner, self._pg_ctl, "-D", str(self.data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=30, check=False)
        shutil.rmtree(self._tmp, ignore_errors=True)
