"""API tokens: make a secret, store only its sha256, check a bearer secret and its roles.

`driftloop tokens create` calls `create_token` (the secret is shown once, then only its hash
exists); the server keeps a `TokenCache` of the active tokens, refreshed by its poller, so a
request is authenticated without touching the database (a secret not in the cache is looked up
once, so a token created a moment ago works at once; a revocation takes effect within one poll
interval). Secrets are 256 random bits, so an unsalted sha256 is enough: there is nothing to
guess a dictionary for.

Roles: ``predict`` (POST /v1/predict), ``feedback`` (POST /v1/feedback), ``admin`` (promote,
rollback, retrain), ``view`` (the dashboard, `driftloop.ui`), ``ingest`` (POST /v1/batches).
No role implies another.

    >>> secret = new_secret()
    >>> secret.startswith("dl_") and len(hash_secret(secret)) == 64
    True
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence

from driftloop.core import errors
from driftloop.store import serving

PREFIX = "dl_"
ROLES = serving.ROLES


def new_secret() -> str:
    """A fresh random token secret (``dl_`` + 43 URL-safe characters)."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The sha256 (hex) a secret is stored and looked up by."""
    return serving.hash_secret(secret)


def create_token(
    store: serving.ServingStore, name: str, roles: Sequence[str], *, actor: str,
) -> tuple[serving.Token, str]:
    """Create token `name` with `roles`; returns it and its secret (shown once, never stored)."""
    secret = new_secret()
    token = store.add_token(name, hash_secret(secret), roles, actor=actor)
    return token, secret


MIN_SECRET_LENGTH = 32
"""Characters a secret given from outside must have at least (`register_secret`)."""


def register_secret(
    store: serving.ServingStore, name: str, secret: str, roles: Sequence[str], *, actor: str,
) -> serving.Token:
    """Store token `name` for a secret made elsewhere (a deployment's secret store hands the
    same value to the server's clients); only its sha256 is kept, as for `create_token`.

    >>> from driftloop.store import metadata
    >>> tokens = serving.ServingStore(metadata.MetadataStore.open("sqlite://"))
    >>> register_secret(tokens, "ci", "short", ["predict"], actor="x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    driftloop.core.errors.ConfigError: the secret of token 'ci' has 5 characters; give at least ...
    """
    if len(secret) < MIN_SECRET_LENGTH:
        raise errors.ConfigError(
            f"the secret of token {name!r} has {len(secret)} characters; give at least "
            f"{MIN_SECRET_LENGTH} (e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)")
    return store.add_token(name, hash_secret(secret), roles, actor=actor)


class TokenCache:
    """The active tokens by secret hash, kept in memory for the request path."""

    def __init__(self, store: serving.ServingStore) -> None:
        self.store = store
        self._tokens: dict[str, serving.Token] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Re-read the active tokens (revoked ones drop out)."""
        fresh = self.store.token_hashes()
        with self._lock:
            self._tokens = fresh

    def authenticate(self, secret: str | None) -> serving.Token:
        """The active token with this secret; `AuthError` (401) if missing, unknown or revoked."""
        if not secret:
            raise errors.AuthError(
                "this endpoint needs a token: send `Authorization: Bearer <secret>` "
                "(create one with `driftloop tokens create NAME --role ...`)")
        digest = hash_secret(secret)
        token = self._tokens.get(digest)
        if token is None:
            found = self.store.find_token(digest)
            if found is not None and found.active:
                with self._lock:
                    self._tokens = {**self._tokens, digest: found}
                token = found
        if token is None:
            raise errors.AuthError("the bearer token is unknown or revoked")
        return token

    def cached(self, secret: str) -> serving.Token | None:
        """The active token with this secret if the cache holds it; never asks the store
        (the fast path of predict, `server.fast_predict`, leaves the rest to `authenticate`)."""
        return self._tokens.get(hash_secret(secret))

    @staticmethod
    def allowed(token: serving.Token, role: str) -> bool:
        """True if `token` carries `role`."""
        return token.has(role)
