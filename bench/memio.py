"""What an asyncio transport must offer TLSTransport, for benchmarks that run in memory.

Subclasses define ``write``; everything else a TLSTransport asks of its transport is
a no-op or a fixed answer here.
"""

from __future__ import annotations

from typing import Any


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
