"""Ready services, and loading a user's own handler from ``MODULE:CALLABLE``."""

from __future__ import annotations

import importlib
import os
import sys
from typing import cast

from trustwire.errors import ConfigError
from trustwire.server.connection import Responder, StreamHandler
from trustwire.services.echo import echo
from trustwire.services.upper import upper

__all__ = ["BUILTIN", "echo", "load_service", "upper"]

BUILTIN: dict[str, Responder] = {"upper": upper, "echo": echo}


def load_service(spec: str) -> Responder | StreamHandler:
    """``upper``, ``echo``, or ``package.module:callable``.

    The callable's shape (an async handler or a ``@responder``) is checked by the Server.
    MODULE is looked for in the current directory first, as uvicorn does: the
    ``trustwire`` console script, unlike ``python -m``, does not put it on ``sys.path``.

    Raises:
        ConfigError: unknown name, unimportable module (or one that raises while imported),
            missing or uncallable attribute.
    """
    if spec in BUILTIN:
        return BUILTIN[spec]
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"unknown service {spec!r}: use upper, echo or MODULE:CALLABLE")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for --service: {exc}",
                          hint="check the module name and PYTHONPATH") from exc
    except Exception as exc:  # the user's module failed while importing: its bug, not ours
        raise ConfigError(
            f"importing {module_name!r} for --service raised {type(exc).__name__}: {exc}",
            hint=f"fix the module; `python -c 'import {module_name}'` shows the traceback",
        ) from exc
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            offered = sorted(n for n in dir(target) if not n.startswith("_")
                             and callable(getattr(target, n, None)))
            raise ConfigError(
                f"{module_name!r} has no attribute {attribute!r}",
                hint=(f"it has {', '.join(offered[:12])}{', ...' if len(offered) > 12 else ''}; "
                      if offered else "it defines no public callable; ")
                + "give --service MODULE:CALLABLE",
            ) from None
    if not callable(target):
        raise ConfigError(f"{spec!r} is not callable: give an async handler or a @responder")
    return cast("Responder | StreamHandler", target)
