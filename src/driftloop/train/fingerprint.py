"""Which trainer a run ran: a sha256 of the trainer's source file and the spec's trainer section.

A run records it (`TrainingRun.trainer_sha256`), so the controller counts a decision's failed
attempts per trainer: fixing ``train.py`` (or the spec's ``trainer:``) starts the count again.

The source file is found the way `train.trainer.load_trainer` imports the module (the project
folder first, then sys.path), without importing anything: a package on the way is searched,
not run, so a library trainer (``sklearn.linear_model:Ridge``) costs no scikit-learn import.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from importlib import machinery
from pathlib import Path

from driftloop.core import config


def trainer_sha256(spec: config.TrainerSpec, base_dir: Path) -> str:
    """sha256 of the trainer's source file (if found) and of `spec` as JSON.

    >>> spec = config.TrainerSpec(function="nowhere_to_be_found:make")
    >>> a = trainer_sha256(spec, Path("."))
    >>> a == trainer_sha256(spec.model_copy(update={"params": {"C": 2}}), Path("."))
    False
    """
    digest = hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
    source = source_file(spec.function.partition(":")[0], base_dir)
    if source is not None:
        with contextlib.suppress(OSError):  # gone meanwhile: the import will say so
            digest.update(source.read_bytes())
    return digest.hexdigest()


def source_file(module: str, base_dir: Path) -> Path | None:
    """The file `module` would be imported from, with `base_dir` first on the path; None if
    it is not found or has no source file (a built-in or a namespace package).

    >>> source_file("driftloop.train.fingerprint", Path(".")).name
    'fingerprint.py'
    >>> source_file("no_such_module_here", Path(".")) is None
    True
    """
    path: list[str] | None = [str(Path(base_dir).resolve()), *sys.path]
    found = None
    for part in module.split("."):
        if path is None:  # a plain module has no submodules
            return None
        found = machinery.PathFinder.find_spec(part, path)
        if found is None:
            return None
        locations = found.submodule_search_locations
        path = list(locations) if locations is not None else None
    if found is None or not found.has_location or found.origin is None:
        return None
    return Path(found.origin)
