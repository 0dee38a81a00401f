"""`CurrentUser` and `AdminUser`: the caller, from the bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ecommerce.accounts.security import Principal
from ecommerce.platform.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False)


async def current_user(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None,
                                        Depends(_bearer)]) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    principal = request.app.state.ctx.tokens.read(credentials.credentials)
    if principal is None:
        raise Unauthorized("The access token is invalid or has expired")
    return principal


async def admin_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This needs an administrator")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]


def ensure_self_or_admin(principal: Principal, user_id: int) -> None:
    """A customer may only act for themself; an admin for anyone."""
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden()
