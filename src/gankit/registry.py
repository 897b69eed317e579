"""Family registry: ``@register`` on a class makes it reachable by name from the CLI and API.

Explicit registration (as mmagic's ``@MODELS.register_module()``) instead of an if/elif chain
that every new family would have to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from gankit.errors import GankitError

if TYPE_CHECKING:
    from gankit.families.base import Family

_FAMILIES: dict[str, type["Family"]] = {}

# The package whose modules register the built-in families: adding a family is adding a file.
_FAMILIES_PACKAGE = "gankit.families"
# Registration order (what `gankit families` lists) starts with these; the rest follow by name.
_FIRST = ("gan", "dcgan", "cgan")


def register(cls: type["Family"]) -> type["Family"]:
    """Class decorator: register a family under ``cls.name``."""
    if not getattr(cls, "name", ""):
        raise TypeError(f"{cls.__qualname__} needs a `name`")
    if cls.name in _FAMILIES and _FAMILIES[cls.name] is not cls:
        raise TypeError(f"family {cls.name!r} registered twice")
    _FAMILIES[cls.name] = cls
    return cls


def _load_builtins() -> None:
    package = importlib.import_module(_FAMILIES_PACKAGE)
    names = sorted((m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in ("base", "common")),
                   key=lambda n: (n not in _FIRST, _FIRST.index(n) if n in _FIRST else 0, n))
    for name in names:
        importlib.import_module(f"{_FAMILIES_PACKAGE}.{name}")


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
