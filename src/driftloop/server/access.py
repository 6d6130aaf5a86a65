"""Who may call an endpoint: a FastAPI dependency that checks the bearer token's role.

`require(server, role)` is the one check every authenticated route uses; it answers 401 for a
missing or unknown token (through `auth.Tokens.authenticate`) and 403 for a token without the
role, and gives the route the token's name (the actor of audit rows).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from driftloop.server import state

bearer = HTTPBearer(auto_error=False, description="A driftloop token: `driftloop tokens create`")


def require(server: state.ServerState, role: str) -> Any:
    """A dependency that lets in tokens with `role` (and no token at all for `predict` when
    the server allows anonymous predictions)."""
    anonymous = role == "predict" and server.settings.anonymous_predict

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> str:
        if credentials is None and anonymous:
            return "anonymous"
        token = server.tokens.authenticate(credentials.credentials if credentials else None)
        if not server.tokens.allowed(token, role):
            raise HTTPException(
                403, f"token {token.name!r} lacks the role {role!r} "
                f"(it has: {', '.join(token.roles)})")
        return token.name

    return Depends(check)
