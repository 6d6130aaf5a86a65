"""Two DataFrames compared for drift, for a notebook: `compare(reference, current)`.

The reference frame is profiled the way a model's training data is (`data.profile`), then the
current frame is tested against that profile by the very rule a pipeline uses
(`drift.report.detect_drift`, configured by a `DriftSpec`). The result is a `Comparison`: a
`DriftReport` that also keeps the binned shares of both sides, so it can render itself as the
HTML report `driftloop report` writes (`to_html`) or as a table in Jupyter (`_repr_html_`).

Column kinds come from the reference frame's dtypes: numbers are numeric, booleans, text and
categories are categorical; dates and times are left out (no drift test reads them).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.core import config, errors
from driftloop.data import profile as profiles
from driftloop.drift import histograms
from driftloop.drift import report as drift_reports
from driftloop.ui import drift_report


@dataclass(frozen=True)
class Comparison(drift_reports.DriftReport):
    """A `DriftReport` of two frames, with what it needs to draw them.

    Attributes
    ----------
    shapes
        Column name -> the binned shares of the reference and the current frame.
    sides
        A line of text about each side, shown at the top of the HTML report.
    """

    shapes: Mapping[str, histograms.Histogram] = dataclasses.field(
        default_factory=dict, repr=False, compare=False)
    sides: drift_report.Sides = dataclasses.field(
        default_factory=lambda: drift_report.Sides("reference", "current"), compare=False)

    def to_html(self, path: str | Path | None = None, *, title: str = "driftloop drift") -> str:
        """The self-contained HTML report; written to `path` too when it is given.

        Parameters
        ----------
        path
            The file to write (UTF-8), or None to only return the text.
        title
            The page's title.

        Returns
        -------
        str
            The HTML document.
        """
        text = drift_report.render_drift(self, self.shapes, self.sides, title=title)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def _repr_html_(self) -> str:
        """The verdict and the table of columns, drifted first (Jupyter shows this)."""
        verdict = "Dataset drift" if self.drifted else "No dataset drift"
        tested = sum(column.test_ran for column in self.columns)
        head = (f"<p><b>{verdict}</b>: {len(self.drifted_columns)} of {tested} tested columns "
                f"drifted ({self.drifted_share:.0%}; the threshold is {self.columns_share:.0%})."
                f"<br>{html.escape(self.sides.reference)} → {html.escape(self.sides.current)}</p>")
        table = self.to_frame().sort_values(["drifted", "effect"], ascending=False)
        columns = ["kind", "test", "statistic", "p_adjusted", "effect", "threshold", "drifted"]
        body: str = table[columns].to_html(float_format="{:.4g}".format, na_rep="")
        return head + body


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: config.DriftSpec | Mapping[str, Any] | None = None,
) -> Comparison:
    """Test every column of `current` against the same column of `reference`.

    Parameters
    ----------
    reference
        The data a model learned from (or any baseline).
    current
        The data to test; it must have every column of `reference` that is tested.
    spec
        The `drift:` section of a pipeline spec, as a `DriftSpec` or a dict (``{"alpha": 0.01,
        "numeric": {"test": "psi"}}``); None: the defaults (KS for numbers, chi-square for
        categories, Holm correction, 30 % of the columns).

    Returns
    -------
    Comparison
        The `DriftReport`; ``.drifted`` is the dataset verdict, ``.to_frame()`` the columns.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> import driftloop
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(0, 1, 1000), "c": rng.choice(["a", "b"], 1000)})
    >>> current = pd.DataFrame({"x": rng.normal(1, 1, 1000), "c": rng.choice(["a", "b"], 1000)})
    >>> report = driftloop.compare(reference, current)
    >>> report.drifted, report.drifted_columns
    (True, ['x'])
    >>> report.to_frame().loc["x", "test"]
    'ks'
    """
    drift = _drift_spec(spec)
    kinds = column_kinds(reference)
    if not kinds:
        raise errors.ValidationError(
            "the reference frame has no numeric or categorical column to compare",
            reasons={"*": ["no testable column"]})
    profile = profiles.build_profile(reference, columns=kinds)
    found = drift_reports.detect_drift(profile, current, drift)
    shapes = histograms.column_histograms(profile, current, [c.name for c in found.columns])
    sides = drift_report.Sides(reference=f"reference: {len(reference)} rows",
                               current=f"current: {len(current)} rows")
    fields = {f.name: getattr(found, f.name) for f in dataclasses.fields(found)}
    return Comparison(**fields, shapes=shapes, sides=sides)


def column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Column -> "numeric" or "categorical", from the dtypes (dates and times left out).

    >>> column_kinds(pd.DataFrame({"x": [1.0], "n": [2], "b": [True], "s": ["a"],
    ...                            "t": pd.to_datetime(["2024-01-01"])}))
    {'x': 'numeric', 'n': 'numeric', 'b': 'categorical', 's': 'categorical'}
    """
    kinds: dict[str, str] = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            continue
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        kinds[str(name)] = "numeric" if numeric else "categorical"
    return kinds


def _drift_spec(spec: config.DriftSpec | Mapping[str, Any] | None) -> config.DriftSpec:
    if spec is None:
        return config.DriftSpec()
    if isinstance(spec, config.DriftSpec):
        return spec
    try:
        return config.DriftSpec.model_validate(dict(spec))
    except ValueError as exc:  # pydantic's ValidationError
        raise errors.ConfigError(f"the drift spec given to compare is not valid: {exc}") from exc
