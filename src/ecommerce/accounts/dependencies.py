"""`CurrentUser`: the caller, from the bearer token (what each route hands its use case;
the use case decides what the caller may do)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ecommerce.accounts.usecases import Accounts
from ecommerce.platform.errors import Unauthorized
from ecommerce.platform.principal import Principal, bearer_token

_bearer = HTTPBearer(auto_error=False)


async def current_user(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None,
                                              Depends(_bearer)]) -> Principal:
    # `_bearer` documents the scheme in OpenAPI; the header is read as the lean paths
    # read it (Accounts.caller), so both paths know the same callers.
    authorization = request.headers.get("authorization")
    if bearer_token(authorization) is None:
        raise Unauthorized()
    principal = await request.app.state.services[Accounts].caller(authorization)
    if principal is None:
        raise Unauthorized("The access token is invalid, has expired, or was revoked")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
