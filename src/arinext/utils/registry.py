"""One kind of registry for every extension point: models, datasets, export formats, commands.

Each extension point keeps one :class:`Registry` of name -> entry, filled by its ``register_*`` function
(``@register_model``, ``register_dataset``, ``register_export_format``, ``register_command``) and read with
``get``; an unknown name is a :class:`~arinext.utils.errors.ConfigError` that lists the registered ones.

    >>> colours = Registry("colour")
    >>> colours.register("red", 0xFF0000)
    16711680
    >>> colours.names()
    ['red']
    >>> colours.get("blue")
    Traceback (most recent call last):
    ...
    arinext.utils.errors.ConfigError: unknown colour 'blue'; choose from red
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one extension point by name, in the order they were registered.

    Args:
        kind: what an entry is, for messages (``"model"``, ``"dataset"``, ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name``; returns ``entry`` (so it works inside decorators).

        Raises:
            ValueError: ``name`` is already registered (two registrations of one name are a bug).
        """
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry of ``name``.

        Raises:
            ConfigError: ``name`` is not registered; the message lists the registered names.
        """
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._entries)}")
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, in registration order."""
        return [n for n in self._entries if fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
