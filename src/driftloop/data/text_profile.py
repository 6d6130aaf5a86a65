"""What a column of free text looks like: empty rate, lengths, writing scripts, languages.

Languages come from py3langid (the `text` extra): langid.py's naive Bayes model over byte
n-grams, which ships inside the package and runs offline (97 languages; loading it takes about
3 s once per process). A text it is not confident about (normalised probability below
`MIN_CONFIDENCE`, typical of a few words) counts as ``und`` (undetermined), an empty one as
``empty``. The script of a text is the Unicode script of most of its letters (``LATIN``,
``CYRILLIC``, ``CJK``, ...), read from `unicodedata` names.

    >>> profile = text_profile(["Guten Morgen, wie geht es dir heute?", "", "Good morning!"])
    >>> profile["rows"], profile["empty_rate"], profile["scripts"]
    (3, 0.3333333333333333, {'LATIN': 2})
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from driftloop.core import errors, types

MIN_CONFIDENCE = 0.5
_WORD = re.compile(r"\w+", re.UNICODE)
# scripts whose letters are named by a first word that is not the script (CJK ideographs, kana)
_SCRIPT_NAMES = {"HIRAGANA": "KANA", "KATAKANA": "KANA", "HANGUL": "HANGUL"}


def script_of(text: str) -> str | None:
    """The script of most letters of `text` (None without letters).

    >>> script_of("Привет, мир"), script_of("東京タワー"), script_of("123")
    ('CYRILLIC', 'CJK', None)
    """
    found: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            first = name.split(" ", 1)[0] if name else "OTHER"
            found[_SCRIPT_NAMES.get(first, first)] += 1
    return found.most_common(1)[0][0] if found else None


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (runs of letters and digits).

    >>> tokens("Hello, World! 42")
    ['hello', 'world', '42']
    """
    return _WORD.findall(text.lower())


@functools.cache
def _identifier(languages: tuple[str, ...] | None) -> Any:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise errors.ConfigError(
            "text columns need a language identifier: pip install 'driftloop[text]' (py3langid)"
        ) from exc
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if languages:
        identifier.set_languages(list(languages))
    return identifier


def languages_of(texts: Sequence[str], languages: Sequence[str] | None = None) -> list[str]:
    """The language of each text (ISO 639-1), ``und`` when unsure, ``empty`` when blank.

    >>> languages_of(["Das ist ein schöner Tag im Park", "C'est une belle journée", " "])
    ['de', 'fr', 'empty']
    """
    identifier = _identifier(tuple(languages) if languages else None)
    found = []
    for text in texts:
        if not text.strip():
            found.append("empty")
            continue
        language, confidence = identifier.classify(text)
        found.append(str(language) if confidence >= MIN_CONFIDENCE else "und")
    return found


def as_texts(values: Iterable[Any]) -> list[str]:
    """Values as text: missing values become empty strings."""
    return ["" if value is None or value != value else str(value) for value in values]


def text_profile(texts: Sequence[str], languages: Sequence[str] | None = None) -> types.JSON:
    """Rows, empty rate, length quantiles (characters), script and language counts."""
    import numpy as np

    lengths = np.array([len(t) for t in texts if t.strip()], dtype=float)
    quantiles = (np.quantile(lengths, [0.1, 0.5, 0.9]).tolist() if len(lengths)
                 else [None, None, None])
    scripts = Counter(s for s in (script_of(t) for t in texts) if s is not None)
    found = Counter(languages_of(texts, languages))
    return {
        "rows": len(texts),
        "empty_rate": (len(texts) - len(lengths)) / len(texts) if texts else 0.0,
        "length": dict(zip(("p10", "p50", "p90"), quantiles, strict=True)),
        "scripts": dict(scripts.most_common()),
        "languages": dict(found.most_common()),
    }
