"""Which types a stored skops model may contain: the second wall behind the sha256 check.

`store.artifacts.ArtifactStore.get_model` loads a ``.skops`` file only after its bytes matched
the sha256 driftloop recorded; then `check` compares every type skops would have to be told to
trust (`skops.io.get_untrusted_types`) with an explicit allow-list of module prefixes:
scikit-learn, numpy and scipy, driftloop's own model wrappers, plus what the caller adds (the
project passes the modules of its trainer functions and the spec's
``trainer.trusted_modules``). A type outside the list — ``os.system`` in a FunctionTransformer,
``builtins.eval``, a module nobody declared — is refused with `errors.IntegrityError` before
skops builds anything, so someone who can write both the metadata store and the artifact folder
still cannot run code through a model file.

A prefix matches a whole dotted name or the start of one at a dot (``sklearn`` matches
``sklearn.tree._classes.DecisionTreeClassifier``, never ``sklearnx.evil``). A listed name must
also be what it says: the object found under it is looked up (importing only allowed modules)
and must be defined in an allowed module, so ``sklearn.some_module.os.system`` (a module that
merely imported ``os``) is refused like ``os.system``.

>>> allowed("sklearn.tree._classes.DecisionTreeClassifier", DEFAULT_PREFIXES)
True
>>> allowed("sklearnx.evil", DEFAULT_PREFIXES), allowed("posix.system", DEFAULT_PREFIXES)
(False, False)
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Iterable, Sequence
from typing import Any

from driftloop.core import errors

DEFAULT_PREFIXES: tuple[str, ...] = (
    "sklearn", "numpy", "scipy",
    "driftloop.train.online.OnlineModel", "driftloop.train.segments.SegmentedModel",
    "driftloop.train.mitigation.FairnessMitigated",
)
"""What every stored model may contain; `check` takes more from the caller."""


def allowed(name: str, prefixes: Iterable[str]) -> bool:
    """True if the dotted `name` is one of `prefixes` or lies under one of them."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def check(data: bytes, prefixes: Sequence[str] = DEFAULT_PREFIXES) -> list[str]:
    """The types of the skops file `data` that skops must be told to trust, once every one of
    them is allowed by `prefixes`; else `errors.IntegrityError` naming the refused ones."""
    import skops.io

    listed: list[str] = skops.io.get_untrusted_types(data=data)
    refused = [name for name in listed if not _defined_in(name, prefixes)]
    if refused:
        raise errors.IntegrityError(
            f"refusing to load a model file that contains {', '.join(sorted(refused))}: not in "
            f"the allowed modules ({', '.join(prefixes)}). If the trainer really builds models "
            "with these types, add their module to `trainer.trusted_modules` in the spec",
            refused=sorted(refused))
    return listed


def modules_of(functions: Iterable[str]) -> list[str]:
    """The modules of ``module:function`` names (a trainer and its search candidates).

    >>> modules_of(["train:make_model", "families.trees:forest"])
    ['train', 'families.trees']
    """
    return [function.partition(":")[0] for function in functions]


def _defined_in(name: str, prefixes: Sequence[str]) -> bool:
    """True if `name` is allowed and the object under it is defined in an allowed module."""
    if not allowed(name, prefixes):
        return False
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes
        module_name = ".".join(parts[:cut])
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for part in parts[cut:]:
            found = getattr(found, part, None)
            if found is None:
                return False
        if isinstance(found, types.ModuleType):  # ``sklearn.x.os``: a module x imported
            return allowed(found.__name__, prefixes)
        # Objects without a `__module__` (scipy's ufuncs) count as defined where they were found.
        owner = str(getattr(found, "__module__", None) or module_name)
        qualname = getattr(found, "__qualname__", parts[-1])
        return allowed(owner, prefixes) or allowed(f"{owner}.{qualname}", prefixes)
    return False
