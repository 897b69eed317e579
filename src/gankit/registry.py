"""Family registry: ``@register`` on a class makes it reachable by name from the CLI and API.

Explicit registration (as mmagic's ``@MODELS.register_module()``) instead of an if/elif chain
that every new family would have to edit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gankit.errors import GankitError

if TYPE_CHECKING:
    from gankit.families.base import Family

_FAMILIES: dict[str, type["Family"]] = {}

# Modules whose import registers the built-in families.
_BUILTIN_MODULES = ("gankit.families.gan", "gankit.families.dcgan", "gankit.families.cgan")


def register(cls: type["Family"]) -> type["Family"]:
    """Class decorator: register a family under ``cls.name``."""
    if not getattr(cls, "name", ""):
        raise TypeError(f"{cls.__qualname__} needs a `name`")
    if cls.name in _FAMILIES and _FAMILIES[cls.name] is not cls:
        raise TypeError(f"family {cls.name!r} registered twice")
    _FAMILIES[cls.name] = cls
    return cls


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def families() -> dict[str, type["Family"]]:
    """All registered families, by name, in registration order."""
    _load_builtins()
    return dict(_FAMILIES)


def get_family(name: str) -> type["Family"]:
    _load_builtins()
    key = name.strip().lower()
    if key not in _FAMILIES:
        raise GankitError(f"unknown family {name!r}; choose from {', '.join(_FAMILIES)}")
    return _FAMILIES[key]
