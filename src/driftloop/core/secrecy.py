"""Secrets in a spec: read from the environment where they are used, never written down.

A spec names a secret by reference, ``${NAME}``: ``store: postgresql://ml:${PG_PASSWORD}@db/ml``,
``headers: {Authorization: Bearer ${API_TOKEN}}``. The spec is validated and stored with the
references as written; `expand` replaces them with the environment's values only where a value
is used (the project opens its store, artifacts and source with `expand_all`). Two variables
replace whole fields, so a deployment can keep the spec free of credentials altogether:
``DRIFTLOOP_STORE_URL`` (the `store`) and ``DRIFTLOOP_ARTIFACTS_URL`` (`artifacts.url`).

What leaves the process — the spec stored in the metadata database and its audit log,
messages, logs — goes through `redact`: a password in a URL, a secret-looking query parameter
(``token``, ``key``, ``password``, ``secret``, ``signature``) and the value of a secret-looking
field (``password``, ``token``, ``secret``, ``authorization``, ``*_key``...) become ``***``,
unless the value is itself only ``${NAME}`` references (which hold nothing secret).

>>> redact_url("postgresql://ml:hunter2@db:5432/ml")
'postgresql://ml:***@db:5432/ml'
>>> redact({"url": "https://api.example/x?api_key=abc&page=2", "token": "abc",
...         "headers": {"Authorization": "Bearer ${API_TOKEN}"}})  # doctest: +NORMALIZE_WHITESPACE
{'url': 'https://api.example/x?api_key=***&page=2', 'token': '***',
 'headers': {'Authorization': 'Bearer ${API_TOKEN}'}}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from driftloop.core import errors

STORE_URL = "DRIFTLOOP_STORE_URL"
"""Replaces the spec's `store` when set (a Kubernetes Secret can hold it)."""
ARTIFACTS_URL = "DRIFTLOOP_ARTIFACTS_URL"
"""Replaces the spec's `artifacts.url` when set."""

MASK = "***"
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|auth(orization)?|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"credentials?|signature|sig|key)$", re.IGNORECASE)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def expand(value: str, field: str) -> str:
    """`value` with each ``${NAME}`` replaced by environment variable NAME; a `ConfigError`
    naming `field` and the variable (never a value) when one is not set.

    >>> os.environ["DL_DOCTEST_PASSWORD"] = "s3cr3t"
    >>> expand("postgresql://ml:${DL_DOCTEST_PASSWORD}@db/ml", "store")
    'postgresql://ml:s3cr3t@db/ml'
    >>> expand("${DL_DOCTEST_UNSET}", "store")
    Traceback (most recent call last):
    ...
    driftloop.core.errors.ConfigError: store: environment variable DL_DOCTEST_UNSET is not set
    """

    def variable(match: re.Match[str]) -> str:
        found = os.environ.get(match[1])
        if found is None:
            raise errors.ConfigError(f"{field}: environment variable {match[1]} is not set")
        return found

    return VARIABLE.sub(variable, value)


def expand_all(data: Any, field: str) -> Any:
    """`data` (JSON-like) with every string `expand`ed; `field` is its place in the spec."""
    if isinstance(data, str):
        return expand(data, field)
    if isinstance(data, Mapping):
        return {key: expand_all(value, f"{field}.{key}") for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [expand_all(value, f"{field}[{i}]") for i, value in enumerate(data)]
    return data


def redact_url(url: str) -> str:
    """`url` without its password and with secret-looking query parameters masked.

    >>> redact_url("redis://:pw@127.0.0.1:6379/0"), redact_url("sqlite:///state.db")
    ('redis://:***@127.0.0.1:6379/0', 'sqlite:///state.db')
    >>> redact_url("sqlite:///state.db?token=abc")
    'sqlite:///state.db?token=***'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc = parts.netloc
    if password and not _only_references(password):
        user, _, host = netloc.rpartition("@")
        name, _, _ = user.partition(":")
        netloc = f"{name}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_name(key) and not _only_references(value) for key, value in pairs):
            query = urlencode([(key, MASK if _secret_name(key) and not _only_references(value)
                                else value) for key, value in pairs], safe="*${}")
    if netloc == parts.netloc and query == parts.query:
        return url
    return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def redact(data: Any, name: str = "") -> Any:
    """`data` (JSON-like, or text) with secrets masked: see the module docstring."""
    if isinstance(data, str):
        if name and _secret_name(name) and not _only_references(data):
            return MASK
        return redact_text(data)
    if isinstance(data, Mapping):
        return {key: redact(value, str(key)) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [redact(value, name) for value in data]
    return data


def redact_text(text: str) -> str:
    """`text` (a message) with every URL in it redacted.

    >>> redact_text("cannot connect to postgresql://ml:pw@db/ml: refused")
    'cannot connect to postgresql://ml:***@db/ml: refused'
    """
    return _URL.sub(lambda match: redact_url(match[0]), text)


def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.replace(" ", "_")))


def _only_references(value: str) -> bool:
    """Whether `value` holds nothing but ``${NAME}`` references and non-secret decoration
    (``Bearer ${API_TOKEN}``)."""
    if not VARIABLE.search(value):
        return False
    rest = VARIABLE.sub("", value).strip()
    return rest.lower() in {"", "bearer", "token", "basic"}
