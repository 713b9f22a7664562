"""One registry type for every named thing a user can choose: search spaces, proxies, LLM
backends and mutators.

Built-in entries are registered in code; third-party distributions add entries through an
entry-point group (`nasagent.proxies`, `nasagent.backends`, `nasagent.search_spaces`,
`nasagent.mutators`), each entry point naming an object of the registry's type:

    [project.entry-points."nasagent.proxies"]
    myproxy = "my_package.proxies:MYPROXY"

Plugins are found lazily: the entry-point metadata is read on the first lookup that the
built-in entries cannot answer (an unknown name, `names()`, iteration), and a plugin's module is
imported only when its entry is asked for, so `--help` and cheap commands import nothing extra.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar, overload

from nasagent.evaluator.errors import NasAgentError, UnknownNameError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PluginError(NasAgentError):
    """A plugin entry point that cannot be loaded or does not name an entry of the right type."""


class DuplicateNameError(NasAgentError, ValueError):
    """A name registered twice without `replace=True`."""


class Registry(Mapping[str, T], Generic[T]):
    """Names mapped to entries of one type, extended by an entry-point group.

    A registry is a read-only `Mapping` (`REGISTRY[name]`, `name in REGISTRY`, iteration over the
    names), so looking a name up anywhere raises the same `UnknownNameError`, which lists the
    valid names.

    Args:
        kind: what an entry is, for messages ("proxy", "search space", ...).
        entry_type: the type every entry must have; plugins are checked against it.
        group: the entry-point group that plugins use, or None for a closed registry.
        built_ins: registers the built-in entries, called once before the first lookup
            (for entries whose modules import the module that holds the registry).
    """

    def __init__(
        self, kind: str, entry_type: type[T], group: str | None = None,
        built_ins: Callable[[Registry[T]], None] | None = None,
    ) -> None:
        self.kind = kind
        self.entry_type = entry_type
        self.group = group
        self._built_ins = built_ins
        self._entries: dict[str, T] = {}
        self._plugins: dict[str, EntryPoint] | None = None
        self._loaded: set[str] = set()  # names whose entry came from a plugin
        self._lock = threading.RLock()

    @overload
    def register(self, name: str, entry: T, *, replace: bool = False) -> T: ...

    @overload
    def register(
        self, name: str, entry: None = None, *, replace: bool = False
    ) -> Callable[[T], T]: ...

    def register(
        self, name: str, entry: T | None = None, *, replace: bool = False
    ) -> T | Callable[[T], T]:
        """Register `entry` under `name`; without `entry`, return a decorator that does.

        Raises:
            DuplicateNameError: `name` is taken and `replace` is False.
            TypeError: `entry` is not of the registry's type.
        """
        if entry is None:
            return lambda value: self.register(name, value, replace=replace)
        self._check_type(name, entry, TypeError)
        with self._lock:
            self._ready()  # built-ins first, whoever registers
            if name in self._entries and not replace:
                raise DuplicateNameError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove `name` (tests, or a plugin replacing a built-in under another name)."""
        with self._lock:
            if name not in self._ready():
                raise UnknownNameError(self.kind, name, self.names())
            del self._entries[name]
            self._loaded.discard(name)

    def _ready(self) -> dict[str, T]:
        """The entries, once the built-ins are registered."""
        if self._built_ins is not None:
            with self._lock:
                register, self._built_ins = self._built_ins, None
                if register is not None:
                    register(self)
        return self._entries

    def get(self, name: str) -> T:  # type: ignore[override]
        """The entry called `name`, loading its plugin on first use.

        Raises:
            UnknownNameError: no built-in entry or plugin has that name (lists the valid names).
            PluginError: the plugin's entry point fails to load or names a wrong object.
        """
        entry = self._ready().get(name)
        if entry is not None:
            return entry
        with self._lock:
            if name in self._entries:
                return self._entries[name]
            point = self._plugin_points().get(name)
            if point is None:
                raise UnknownNameError(self.kind, name, self.names())
            return self._load(name, point)

    def names(self) -> list[str]:
        """Every valid name, built-in first (in registration order), then plugins (sorted)."""
        with self._lock:
            entries = self._ready()
            plugins = sorted(set(self._plugin_points()) - set(entries))
            return [*entries, *plugins]

    def origin(self, name: str) -> str:
        """"built-in", or the plugin that provides `name` ("plugin DIST VERSION").

        Raises:
            UnknownNameError: no such name.
        """
        if name in self._ready() and name not in self._loaded:
            return "built-in"
        point = self._plugin_points().get(name)
        if point is None:
            raise UnknownNameError(self.kind, name, self.names())
        dist = getattr(point, "dist", None)
        return f"plugin {dist.name} {dist.version}" if dist else f"plugin {point.value}"

    def builtin_names(self) -> list[str]:
        """The names registered in code, without reading plugin metadata (for help texts)."""
        return [name for name in self._ready() if name not in self._loaded]

    def describe(self) -> str:
        """"a, b or c" of the built-in names, plus "or a plugin's" for an open registry."""
        names = self.builtin_names()
        text = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
        return f"{text}, or a plugin's" if self.group else text

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._ready() or name in self._plugin_points()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r}, names={self.names()})"

    # ---- plugins ---------------------------------------------------------------------------

    def _plugin_points(self) -> dict[str, EntryPoint]:
        if self._plugins is None:
            self._plugins = _entry_points(self.group) if self.group else {}
        return self._plugins

    def _load(self, name: str, point: EntryPoint) -> T:
        where = f"entry point {point.value!r} in group {self.group!r}"
        try:
            entry = point.load()
        except Exception as error:  # a broken plugin is reported by name, never a traceback
            raise PluginError(
                f"{self.kind} plugin {name!r} ({where}) failed to load: "
                f"{type(error).__name__}: {error}"
            ) from None
        self._check_type(name, entry, PluginError, where)
        self._entries[name] = entry
        self._loaded.add(name)
        logger.debug("loaded %s plugin %r from %s", self.kind, name, point.value)
        return entry

    def _check_type(
        self, name: str, entry: object, error: type[Exception], where: str = ""
    ) -> None:
        problem = None
        own_name = getattr(entry, "name", name)
        if not isinstance(entry, self.entry_type):
            problem = f"is a {type(entry).__name__}, not a {self.entry_type.__name__}"
        elif own_name != name:
            problem = f"calls itself {own_name!r}"
        if problem:
            suffix = f" ({where})" if where else ""
            raise error(f"{self.kind} {name!r}{suffix} {problem}")

    def reload_plugins(self) -> None:
        """Forget the entry-point scan, so distributions installed since are found (tests)."""
        with self._lock:
            self._plugins = None


def _entry_points(group: str) -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points  # reading metadata costs; only when needed

    return {point.name: point for point in entry_points(group=group)}
