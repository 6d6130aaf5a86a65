"""Checks of free-text columns (`text:` in the spec): data-quality signals, never quarantine.

A batch's text columns are profiled (`data.text_profile`: empty rate, length quantiles,
scripts, languages; languages and scripts on at most `max_rows` sampled texts) and compared
with the profile of the first accepted batch, the reference (kept by the caller):

* more empty texts than `max_empty_rate`;
* a median length outside the reference's 10-90 % length range;
* more than 5 % of texts in a script the reference did not have (e.g. CYRILLIC in a LATIN
  column), or in languages the reference did not have.

Whether the mix of languages drifted is a statistical question, answered by `drift.text`.

    >>> from driftloop.core.text_spec import TextSpec
    >>> spec = TextSpec(columns=["t"], max_empty_rate=0.2)
    >>> reference = {"t": text_profile.text_profile(["a short note"] * 20)}
    >>> batch = ["Очень длинный отзыв о товаре, который пришёл вовремя"] * 10 + [""] * 5
    >>> for message in text_signals({"t": batch}, spec, reference)["t"]:
    ...     print(message)
    t: 33% of texts are empty (more than max_empty_rate 20%)
    t: median length 52 characters is outside the reference's 10-90% range [12, 12]
    t: 100% of texts are in scripts the reference did not have (CYRILLIC)
    t: 100% of texts are in languages the reference did not have (ru)
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from driftloop.core import text_spec, types
from driftloop.data import text_profile

NEW_SHARE = 0.05
"""Share of texts in a script or language the reference lacked that is a signal."""


def profiles(
    columns: Mapping[str, Sequence[Any]], spec: text_spec.TextSpec,
) -> dict[str, types.JSON]:
    """The text profile of each column (languages and scripts on a sample of `max_rows`)."""
    found = {}
    for name, values in columns.items():
        texts = text_profile.as_texts(values)
        whole = text_profile.text_profile([]) if not texts else None
        sample = texts if len(texts) <= spec.max_rows else random.Random(spec.seed).sample(
            texts, spec.max_rows)
        found[name] = whole or {
            **text_profile.text_profile(sample, spec.languages),
            "rows": len(texts),
            "empty_rate": sum(not t.strip() for t in texts) / len(texts),
        }
    return found


def text_signals(
    columns: Mapping[str, Sequence[Any]], spec: text_spec.TextSpec,
    reference: Mapping[str, types.JSON] | None,
) -> dict[str, list[str]]:
    """Signals per column (see the module docstring); `reference`: the first batch's profiles."""
    signals: dict[str, list[str]] = {}
    for name, profile in profiles(columns, spec).items():
        found = []
        if profile["rows"] and profile["empty_rate"] > spec.max_empty_rate:
            found.append(f"{name}: {profile['empty_rate']:.0%} of texts are empty (more than "
                         f"max_empty_rate {spec.max_empty_rate:.0%})")
        before = (reference or {}).get(name)
        if before is not None:
            found.extend(_against(name, profile, before))
        if found:
            signals[name] = found
    return signals


def _against(name: str, profile: types.JSON, reference: types.JSON) -> list[str]:
    found = []
    low, high = reference["length"]["p10"], reference["length"]["p90"]
    median = profile["length"]["p50"]
    if None not in (low, high, median) and not low <= median <= high:
        found.append(f"{name}: median length {median:.0f} characters is outside the "
                     f"reference's 10-90% range [{low:.0f}, {high:.0f}]")
    for key, what in (("scripts", "scripts"), ("languages", "languages")):
        counts, known = profile[key], set(reference[key])
        new = {k: v for k, v in counts.items() if k not in known and k not in {"und", "empty"}}
        total = sum(v for k, v in counts.items() if k != "empty")
        if total and sum(new.values()) / total > NEW_SHARE:
            share = sum(new.values()) / total
            found.append(f"{name}: {share:.0%} of texts are in {what} the reference did not "
                         f"have ({', '.join(sorted(new))})")
    return found
