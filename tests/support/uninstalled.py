"""Packages made to look uninstalled in this process, as on a machine that lacks them."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import sys


class _Hiding:
    """The path finder, blind to some top-level packages (modules, and their metadata by name)."""

    def __init__(self, finder, names: frozenset[str]):
        self._finder, self._names = finder, names

    def _hidden(self, name: str | None) -> bool:
        return name is not None and name.replace("-", "_").partition(".")[0] in self._names

    def find_spec(self, fullname, path=None, target=None):
        return None if self._hidden(fullname) else self._finder.find_spec(fullname, path, target)

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
