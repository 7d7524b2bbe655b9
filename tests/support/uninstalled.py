"""Packages made to look uninstalled in this process, as on a machine that lacks them."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import sys
import sysconfig


class _Hiding:
    """The path finder, blind to some top-level packages (modules, and their metadata by name)."""

    def __init__(self, finder, names: frozenset[str], only: tuple[str, ...] = ()):
        """``names`` hidden; or with ``only`` (the standard library's folders), all but those
        and the standard library."""
        self._finder, self._names, self._only = finder, names, only

    def _hidden(self, name: str | None) -> bool:
        return name is not None and (
            name.replace("-", "_").partition(".")[0] in self._names) != bool(self._only)

    def find_spec(self, fullname, path=None, target=None):
        spec = self._finder.find_spec(fullname, path, target)
        if spec is None or not self._hidden(fullname):
            return spec
        origin = spec.origin or ""
        in_stdlib = origin.startswith(self._only) and "site-packages" not in origin
        return spec if in_stdlib else None

    def find_distributions(self, context=importlib.metadata.DistributionFinder.Context()):
        return iter(()) if self._hidden(context.name) else self._finder.find_distributions(context)

    def __getattr__(self, name):  # invalidate_caches and the rest
        return getattr(self._finder, name)


def hide_packages(*names: str) -> None:
    """Hide ``names`` from imports and `importlib.util.find_spec` from now on (before any import of
    them: a module already imported stays)."""
    hidden = frozenset(names)
    sys.meta_path[:] = [_Hiding(f, hidden) if f is importlib.machinery.PathFinder else f
                        for f in sys.meta_path]


def only_packages(names: set[str]) -> None:
    """Hide every top-level package but ``names`` and the standard library from now on, as on a
    machine that has only those installed."""
    stdlib = tuple({sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")})
    sys.meta_path[:] = [_Hiding(f, frozenset(names), stdlib)
                        if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
