"""What the in-memory benchmarks share: a transport stub and a home with identities.

``StubTransport`` subclasses define ``write``; everything else a TLSTransport asks of
its transport is a no-op or a fixed answer here.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def identities(ca_name: str) -> Iterator[Path]:
    """A temporary home made with the CLI: a CA, ``server`` (localhost) and ``client``."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        tw = [sys.executable, "-m", "trustwire", "--home", str(home)]
        for args in (["ca", "init", "--name", ca_name],
                     ["cert", "issue", "server", "--server", "--dns", "localhost"],
                     ["cert", "issue", "client", "--client"]):
            subprocess.run([*tw, *args], check=True, capture_output=True)
        yield home


class StubTransport:
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
