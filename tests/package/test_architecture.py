"""The package's shape: layers (import-linter contract in pyproject), public API, import time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import driftloop

ROOT = Path(__file__).resolve().parents[2]


def test_layers_contract_holds() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(linter), "--config", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 1 kept, 0 broken." in done.stdout


def test_public_api_is_sorted_and_importable() -> None:
    assert driftloop.__all__ == sorted(driftloop.__all__)
    for name in driftloop.__all__:
        assert getattr(driftloop, name) is not None


def test_import_is_light() -> None:
    """`import driftloop` must not pull in the heavy stack (pandas, sklearn, sqlalchemy)."""
    heavy = "('pandas', 'sklearn', 'sqlalchemy', 'scipy')"
    code = f"import sys, driftloop; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
