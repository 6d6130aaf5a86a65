"""What a packaged model needs to load, pinned from the environment that trained it.

`lock(roots)` walks the installed distributions' requirements (markers evaluated for this
interpreter, no extras) from `roots` and pins each one found at its installed version:
``name==version``, one a line, sorted. The roots of a bundle are driftloop itself (it serves
the model) plus the distributions that the model's types come from (`model_distributions`:
scikit-learn, numpy and scipy for every skops file, river for a pickled online learner, and the
owner of any other type the file names, e.g. lightgbm). Types from modules no distribution
owns are the project's own code (`local_modules`): the bundle carries their source.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

SKOPS_BASE = ("numpy", "scipy", "sklearn", "skops")
"""Modules every skops file needs, whether or not the file lists their types."""
PICKLE_BASE = ("numpy", "river")
"""Modules every pickled online learner needs (`store.pickled`)."""


def top_modules(type_names: Iterable[str]) -> list[str]:
    """The top-level modules of dotted type names, without duplicates, in order.

    >>> top_modules(["lightgbm.sklearn.LGBMClassifier", "numpy.dtype", "lightgbm.basic.Booster"])
    ['lightgbm', 'numpy']
    """
    return list(dict.fromkeys(name.split(".")[0] for name in type_names))


def model_modules(data: bytes, pickled: bool) -> list[str]:
    """The top-level modules the types of a stored model file come from."""
    if pickled:
        return list(PICKLE_BASE)
    import skops.io

    listed: list[str] = skops.io.get_untrusted_types(data=data)
    return list(dict.fromkeys([*SKOPS_BASE, *top_modules(listed)]))


def model_distributions(modules: Iterable[str]) -> list[str]:
    """The installed distributions that provide `modules` (driftloop's own modules aside)."""
    owners = importlib.metadata.packages_distributions()
    found: list[str] = []
    for module in modules:
        for owner in owners.get(module, []):
            if canonicalize_name(owner) != "driftloop" and owner not in found:
                found.append(owner)
    return found


def local_modules(modules: Iterable[str]) -> list[str]:
    """The modules of `modules` that no installed distribution provides and that are not in
    the standard library: the project's own code."""
    owners = importlib.metadata.packages_distributions()
    return [m for m in modules
            if m not in owners and m not in sys.stdlib_module_names and m != "driftloop"]


def lock(roots: Iterable[str]) -> list[str]:
    """``name==version`` for `roots` and everything they require, installed versions, sorted.

    >>> pins = lock(["packaging"])
    >>> pins[0].startswith("packaging==")
    True
    """
    pinned: dict[str, str] = {}
    waiting = [canonicalize_name(root) for root in roots]
    while waiting:
        name = waiting.pop()
        if name in pinned:
            continue
        try:
            found = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement whose marker held but that is not installed: not needed
        pinned[name] = found.version
        for line in found.requires or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                waiting.append(canonicalize_name(requirement.name))
    return [f"{name}=={version}" for name, version in sorted(pinned.items())]
