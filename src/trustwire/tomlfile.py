"""Reading the small TOML files users write (policies, probe profiles), with one-sentence errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from trustwire.errors import ConfigError

__all__ = ["load_toml"]


def load_toml(path: Path, what: str) -> dict[str, Any]:
    """Parse ``path``; ``what`` names it in errors ("the policy file").

    Raises:
        ConfigError: the file cannot be read, or is not valid UTF-8 TOML.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not valid TOML ({exc})") from exc
