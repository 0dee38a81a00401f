from typing import Annotated

from fastapi import APIRouter, Request

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import InvalidCredentials, UsernameTaken, UserNotFound
from ecommerce.accounts.schemas import (
    LoginIn,
    MeIn,
    MeOut,
    PasswordChangeIn,
    SignupIn,
    TokenOut,
    UserOut,
)
from ecommerce.accounts.usecases import Accounts, normalise
from ecommerce.platform.errors import RateLimited, ServerBusy, Unauthorized, responses
from ecommerce.platform.services import provided

router = APIRouter(tags=["auth"])
AccountsDep = Annotated[Accounts, provided(Accounts)]


def _client(request: Request) -> str:
    # The peer address, or X-Forwarded-For's when the peer is one of TRUSTED_PROXIES
    # (uvicorn's proxy headers middleware decides, see platform/serving.py).
    return request.client.host if request.client else "unknown"


@router.post("/api/auth/signup", status_code=201, response_model=UserOut,
             responses=responses(UsernameTaken, RateLimited, ServerBusy))
async def signup(body: SignupIn, request: Request, accounts: AccountsDep) -> UserOut:
    """A customer account; sign-ups are limited per client address (RATE_LIMIT_SIGNUP)."""
    user_id = await accounts.sign_up(body.username, body.password, email=body.email,
                                     client=_client(request))
    return UserOut(user_id=user_id, username=normalise(body.username), role="CUSTOMER")


@router.post("/api/auth/login", response_model=TokenOut,
             responses=responses(InvalidCredentials, RateLimited, ServerBusy))
async def login(body: LoginIn, request: Request, accounts: AccountsDep) -> TokenOut:
    token, user_id = await accounts.log_in(body.username, body.password,
                                           client=_client(request))
    return TokenOut(access_token=token, expires_in=accounts.tokens.ttl, user_id=user_id)


@router.get("/api/users/me", response_model=MeOut, tags=["users"],
            responses=responses(Unauthorized, UserNotFound))
async def me(principal: CurrentUser, accounts: AccountsDep) -> MeOut:
    return await accounts.me(principal)


@router.patch("/api/users/me", response_model=MeOut, tags=["users"],
              responses=responses(Unauthorized, UserNotFound))
async def update_me(body: MeIn, principal: CurrentUser, accounts: AccountsDep) -> MeOut:
    """Set the e-mail for order notices (`email`), or remove it (`null`)."""
    return await accounts.update_me(principal, body.email)


@router.post("/api/users/me/password", response_model=TokenOut, tags=["users"],
             responses=responses(Unauthorized, InvalidCredentials, ServerBusy))
async def change_password(body: PasswordChangeIn, principal: CurrentUser,
                          accounts: AccountsDep) -> TokenOut:
    """A new password: every token issued before stops working; the answer carries a new
    one."""
    token, user_id = await accounts.change_password(principal, body.current_password,
                                                    body.new_password)
    return TokenOut(access_token=token, expires_in=accounts.tokens.ttl, user_id=user_id)
