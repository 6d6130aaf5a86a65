"""Pickle, restricted: how the artifact store keeps models that skops cannot represent (river's
online learners, whose drift detectors are compiled objects skops refuses).

`store.artifacts.ArtifactStore.put_model(model, format="pickle")` writes `dumps(model)`;
`get_model` calls `loads` only after the bytes matched the sha256 that driftloop recorded when
it wrote them, so only bytes driftloop produced itself are ever unpickled. As a second wall, the
unpickler resolves only an allow-list of globals (river's own classes and functions, driftloop's
`OnlineModel`, plain containers, numpy arrays and `random.Random`); anything else — `os.system`,
`builtins.eval`, a user's module — is refused with `errors.IntegrityError` before it is called.
Never use this for files that did not come from driftloop's own store.

>>> from collections import deque
>>> loads(dumps({"window": deque([1, 0, 1], maxlen=3)}))
{'window': deque([1, 0, 1], maxlen=3)}
>>> import pickle, os
>>> loads(pickle.dumps(os.system))
Traceback (most recent call last):
...
driftloop.core.errors.IntegrityError: refusing to unpickle posix.system: not an allowed type ...
>>> def naming(module, name):  # a pickle of the global `module`.`name`
...     text = b"".join(bytes([0x8C, len(p)]) + p.encode() for p in (module, name))
...     return bytes([0x80, 4]) + text + bytes([0x93]) + b"."
>>> loads(naming("river.datasets.base", "os.getcwd"))  # walks from a river module to os
Traceback (most recent call last):
...
driftloop.core.errors.IntegrityError: refusing to unpickle river.datasets.base.os.getcwd: ...
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

from driftloop.core import errors

_ALLOWED: dict[str, set[str]] = {
    "builtins": {"int", "float", "complex", "bool", "str", "bytes", "bytearray", "tuple",
                 "list", "dict", "set", "frozenset", "slice", "range"},
    "collections": {"defaultdict", "deque", "OrderedDict", "Counter"},
    "functools": {"partial"},
    "random": {"Random"},
    "copyreg": {"_reconstructor"},
    "driftloop.train.online": {"OnlineModel"},
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        refused = errors.IntegrityError(
            f"refusing to unpickle {module}.{name}: not an allowed type for a stored model"
        )
        if module.split(".")[0] != "river":
            raise refused
        # Walk a dotted name (``GaussianNB._make_gaussian``) one step at a time: every step must
        # be something river defines, never what a river module imported (``os``, ``os.system``).
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part, None)
            if str(getattr(found, "__module__", None)).split(".")[0] != "river":
                raise refused
        return found


def dumps(value: Any) -> bytes:
    """`value` as pickle bytes (protocol 5)."""
    return pickle.dumps(value, protocol=5)


def loads(data: bytes) -> Any:
    """Unpickle bytes driftloop wrote itself (check their sha256 first), allow-listed globals
    only."""
    return _Unpickler(io.BytesIO(data)).load()
