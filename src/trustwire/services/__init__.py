"""Ready services, and loading a user's own handler from ``MODULE:CALLABLE``."""

from __future__ import annotations

import importlib
from typing import Any

from trustwire.errors import ConfigError
from trustwire.services.echo import echo
from trustwire.services.upper import upper

__all__ = ["BUILTIN", "echo", "load_service", "upper"]

BUILTIN: dict[str, Any] = {"upper": upper, "echo": echo}


def load_service(spec: str) -> Any:
    """``upper``, ``echo``, or ``package.module:callable``.

    Raises:
        ConfigError: unknown name, unimportable module, or missing attribute.
    """
    if spec in BUILTIN:
        return BUILTIN[spec]
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"unknown service {spec!r}: use upper, echo or MODULE:CALLABLE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for --service: {exc}",
                          hint="check the module name and PYTHONPATH") from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"{module_name!r} has no attribute {attribute!r}") from None
    return target
