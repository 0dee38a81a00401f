from fastapi import APIRouter, Request

from ecommerce.accounts import usecases
from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import InvalidCredentials, UsernameTaken, UserNotFound
from ecommerce.accounts.schemas import LoginIn, MeIn, MeOut, SignupIn, TokenOut, UserOut
from ecommerce.context import Ctx
from ecommerce.platform.errors import RateLimited, ServerBusy, Unauthorized, responses

router = APIRouter(tags=["auth"])


@router.post("/api/auth/signup", status_code=201, response_model=UserOut,
             responses=responses(UsernameTaken, ServerBusy))
async def signup(body: SignupIn, ctx: Ctx) -> UserOut:
    user_id = await usecases.sign_up(ctx.db, ctx.passwords, ctx.clock, body.username,
                                    body.password, email=body.email)
    return UserOut(user_id=user_id, username=usecases.normalise(body.username), role="CUSTOMER")


@router.post("/api/auth/login", response_model=TokenOut,
             responses=responses(InvalidCredentials, RateLimited, ServerBusy))
async def login(body: LoginIn, request: Request, ctx: Ctx) -> TokenOut:
    # The peer address, or X-Forwarded-For's when the peer is one of TRUSTED_PROXIES
    # (uvicorn's proxy headers middleware decides, see cli.serve).
    client = request.client.host if request.client else "unknown"
    token, user_id = await usecases.log_in(
        ctx.db, ctx.passwords, ctx.tokens, ctx.clock, body.username, body.password,
        limits=usecases.LoginLimits(ctx.login_limit, ctx.login_account_limit), client=client)
    return TokenOut(access_token=token, expires_in=ctx.settings.jwt_ttl_seconds, user_id=user_id)


@router.get("/api/users/me", response_model=MeOut, tags=["users"],
            responses=responses(Unauthorized, UserNotFound))
async def me(principal: CurrentUser, ctx: Ctx) -> MeOut:
    return await usecases.me(ctx.db, principal)


@router.patch("/api/users/me", response_model=MeOut, tags=["users"],
              responses=responses(Unauthorized, UserNotFound))
async def update_me(body: MeIn, principal: CurrentUser, ctx: Ctx) -> MeOut:
    """Set the e-mail for order notices (`email`), or remove it (`null`)."""
    return await usecases.update_me(ctx.db, principal, body.email)
