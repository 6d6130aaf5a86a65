"""The trainer contract: a user's `module:function` that makes (or fits) a scikit-learn model.

`fit_model` is what every executor (`train.executor`) runs, in-process or in a child process.
The function named by `TrainerSpec.function` has one of two forms:

- ``def make_model(**params)``: returns an *unfitted* estimator (a Pipeline is fine) that
  driftloop fits on the training window; scikit-learn classes work as they are, e.g.
  ``sklearn.linear_model:LogisticRegression``;
- ``def fit(X, y, **params)``: fits and returns a fitted estimator itself.

The module is imported with the project folder (where ``train.py`` lives) first on sys.path.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import pickle
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import threadpoolctl

from driftloop.core import config, errors


def load_trainer(function: str, base_dir: Path) -> Callable[..., Any]:
    """Import `module:function` with `base_dir` first on sys.path and return the function.

    >>> load_trainer("sklearn.linear_model:Ridge", Path(".")).__name__
    'Ridge'
    >>> load_trainer("sklearn.linear_model:Nope", Path("."))
    Traceback (most recent call last):
    ...
    driftloop.core.errors.ConfigError: trainer.function 'sklearn.linear_model:Nope': module ...
    """
    module_name, sep, attr = function.partition(":")
    if not sep or not module_name or not attr:
        raise errors.ConfigError(
            f"trainer.function {function!r} must be 'module:function', e.g. 'train:make_model'")
    with _on_path(base_dir):
        _forget_stale(module_name, base_dir)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (module_name == exc.name
                                         or module_name.startswith(exc.name + ".")):
                raise errors.ConfigError(
                    f"trainer.function {function!r}: no module {module_name!r} in {base_dir} "
                    f"or on the Python path; create {base_dir / (module_name.replace('.', '/'))}"
                    ".py or fix the name") from exc
            raise errors.ConfigError(
                f"trainer.function {function!r}: importing {module_name!r} failed: {exc}; "
                "install the missing package") from exc
        except Exception as exc:
            raise errors.ConfigError(
                f"trainer.function {function!r}: importing {module_name!r} raised "
                f"{type(exc).__name__}: {exc}") from exc
    target = getattr(module, attr, None)
    if target is None:
        public = sorted(name for name, value in vars(module).items()
                        if callable(value) and not name.startswith("_"))[:10]
        raise errors.ConfigError(
            f"trainer.function {function!r}: module {module_name!r} "
            f"({getattr(module, '__file__', '?')}) has no {attr!r}; it defines: "
            f"{', '.join(public) or 'no public functions'}")
    if not callable(target):
        raise errors.ConfigError(
            f"trainer.function {function!r}: {attr!r} is a {type(target).__name__}, not a function")
    return target  # type: ignore[no-any-return]


def fits_itself(function: Callable[..., Any]) -> bool:
    """Does the trainer take `X` and `y` (and so fit the model itself)?"""
    try:
        names = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return "X" in names and "y" in names


def fit_model(spec: config.TrainerSpec, X: Any, y: Any, base_dir: Path) -> Any:
    """A fitted estimator from the trainer `spec.function`, trained on `X`, `y`.

    >>> import numpy as np
    >>> spec = config.TrainerSpec(function="sklearn.linear_model:Ridge", params={"alpha": 0.5})
    >>> model = fit_model(spec, np.arange(10.0).reshape(-1, 1), np.arange(10.0), Path("."))
    >>> round(float(model.predict([[20.0]])[0]), 1)
    19.9
    """
    with _on_path(base_dir):
        function = load_trainer(spec.function, base_dir)
        itself = fits_itself(function)
        if itself and spec.fairness_mitigation is not None:
            raise errors.ConfigError(
                f"trainer.fairness_mitigation needs a trainer that returns an unfitted "
                f"estimator; {spec.function!r} takes X and y and fits itself")
        arguments = {"X": X, "y": y, **spec.params} if itself else dict(spec.params)
        _check_params(spec, function, arguments)
        # the limit for the trainer's own code; `fit_estimator` sets its own, which also covers
        # libraries the trainer imported
        with thread_limits(spec.threads):
            try:
                model = function(**arguments)
            except Exception as exc:
                raise errors.TrainingError(
                    f"trainer {spec.function!r} raised {type(exc).__name__}: {exc}"
                    f"{user_frame(exc, spec.function)}") from exc
        if itself:
            return _checked(spec, model)
        if spec.fairness_mitigation is not None:
            from driftloop.train import mitigation

            mitigate = spec.fairness_mitigation
            model = mitigation.FairnessMitigated(model, mitigate.method, mitigate.feature,
                                                 mitigate.constraint, mitigate.seed)
        return fit_estimator(spec, model, X, y)


def fit_estimator(spec: config.TrainerSpec, model: Any, X: Any, y: Any) -> Any:
    """`model` (an unfitted estimator the trainer `spec.function` made) fitted on `X`, `y`."""
    if not callable(getattr(model, "fit", None)):
        raise errors.TrainingError(
            f"trainer {spec.function!r} returned {type(model).__name__}, which has no "
            "`fit`; return an unfitted scikit-learn estimator, or take X and y and "
            "return a fitted one")
    with thread_limits(spec.threads):
        try:
            fitted = model.fit(X, y)
        except Exception as exc:
            raise errors.TrainingError(
                f"fitting the estimator from {spec.function!r} ({type(model).__name__}) "
                f"raised {type(exc).__name__}: {exc}{user_frame(exc, spec.function)}") from exc
    return _checked(spec, model if fitted is None else fitted)


def user_frame(exc: BaseException, function: str) -> str:
    """Where in the trainer's own module `exc` was raised: " (at train.py:12 in make_model:
    `raise ValueError('oops')`)" from the innermost traceback frame in that module's file;
    "" if the traceback never passed through it (a library trainer)."""
    module_name = function.partition(":")[0]
    origin = getattr(sys.modules.get(module_name), "__file__", None)
    if origin is None:
        return ""
    source = Path(origin).resolve()
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
              if Path(frame.filename).resolve() == source]
    if not frames:
        return ""
    frame = frames[-1]
    # the path as the module name spells it: train.py, pkg/train.py, pkg/__init__.py
    depth = module_name.count(".") + (source.name == "__init__.py")
    shown = source.relative_to(source.parents[depth]).as_posix()
    code = f": `{frame.line}`" if frame.line else ""
    return f" (at {shown}:{frame.lineno} in {frame.name}{code})"


_controller: tuple[int, threadpoolctl.ThreadpoolController] | None = None


def thread_limits(threads: int | None) -> Any:
    """`threadpoolctl.threadpool_limits(threads)`, without re-reading the loaded native
    libraries (about 3 ms) unless modules were imported since the last call.

    >>> with thread_limits(1):
    ...     pass
    """
    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        _controller = (len(sys.modules), threadpoolctl.ThreadpoolController())
    return _controller[1].limit(limits=threads)


def _checked(spec: config.TrainerSpec, model: Any) -> Any:
    if not callable(getattr(model, "predict", None)):
        raise errors.TrainingError(
            f"trainer {spec.function!r} produced {type(model).__name__}, which has no "
            "`predict`; it must give a scikit-learn-compatible estimator")
    return model


def _check_params(spec: config.TrainerSpec, function: Callable[..., Any],
                  arguments: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**arguments)
    except TypeError as exc:
        raise errors.ConfigError(
            f"trainer.params do not fit {spec.function!r}{signature}: {exc}") from exc


@dataclass(frozen=True)
class ParamProblem:
    """A `trainer.params` entry the trainer function cannot take (or a parameter it needs
    that is missing), with the parameters it accepts."""

    param: str
    problem: str
    accepted: tuple[str, ...]


def param_problem(spec: config.TrainerSpec, base_dir: Path) -> ParamProblem | None:
    """Import the trainer as a training would and bind `spec.params` to its signature
    (with X and y for a trainer that fits itself); the first misfit, or None.

    >>> spec = config.TrainerSpec(function="sklearn.linear_model:Ridge", params={"alpa": 1})
    >>> param_problem(spec, Path(".")).problem
    "Ridge takes no parameter 'alpa'"
    """
    function = load_trainer(spec.function, base_dir)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: the training will tell
    parameters = signature.parameters
    itself = fits_itself(function)
    named = tuple(name for name, p in parameters.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and not (itself and name in ("X", "y")))
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return None  # takes any keyword
    name = getattr(function, "__name__", spec.function)
    for param in spec.params:
        if param not in named:
            return ParamProblem(param, f"{name} takes no parameter {param!r}", named)
    arguments = {"X": None, "y": None, **spec.params} if itself else dict(spec.params)
    try:
        signature.bind(**arguments)
    except TypeError as exc:
        return ParamProblem("", f"{name}{signature}: {exc}", named)
    return None


def unpickle(data: bytes, base_dir: Path) -> Any:
    """Unpickle what a training process sent back (`train.executor`), resolving classes as that
    process imported them: `base_dir` first on sys.path, so a class defined in the project's
    folder (its ``train.py``, or a module beside it) is found, and in this project's module
    rather than in a module of the same name another project's trainer left in
    ``sys.modules``. Only bytes from the executor's own child process come here; a stored
    model is never a pickle (`store.skops_trust` keeps its allow-list, which the trainer's
    module is on and a helper module joins through ``trainer.trusted_modules``)."""
    seen: set[str] = set()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            top = module.split(".")[0]
            if top not in seen:
                seen.add(top)
                _forget_stale(module, base_dir)
            return super().find_class(module, name)

    with _on_path(base_dir):
        return Unpickler(io.BytesIO(data)).load()


@contextlib.contextmanager
def _on_path(base_dir: Path) -> Iterator[None]:
    """`base_dir` first on sys.path for the duration (the trainer may import its neighbours)."""
    entry = str(Path(base_dir).resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _forget_stale(module_name: str, base_dir: Path) -> None:
    """Drop a cached module of the same name from another project folder.

    Two pipelines may both have a ``train.py``; a module already imported from elsewhere
    would otherwise shadow this project's. Only names that exist in `base_dir` are dropped.
    """
    top = module_name.split(".")[0]
    root = Path(base_dir).resolve()
    if not ((root / f"{top}.py").exists() or (root / top).is_dir()):
        return
    cached = sys.modules.get(top)
    origin = getattr(cached, "__file__", None)
    if cached is None or (origin is not None and Path(origin).resolve().is_relative_to(root)):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]
