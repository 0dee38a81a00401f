from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from ecommerce.platform.schemas import ApiModel, ApiRequest, UtcTime

Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Role = Literal["CUSTOMER", "ADMIN"]
# An address to send order notices to: one @, no spaces or control characters, a dot in
# the domain; whether it receives mail only sending tells.
Email = Annotated[str, Field(min_length=6, max_length=254,
                             pattern=r"^[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f.]+$")]


class SignupIn(ApiRequest):
    username: Username
    password: Password
    email: Email | None = None


class MeIn(ApiRequest):
    """`PATCH /api/users/me`: the e-mail for order notices, or null to remove it."""

    email: Email | None


class LoginIn(ApiRequest):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class UserOut(ApiModel):
    user_id: int
    username: str
    role: Role


class MeOut(UserOut):
    email: str | None
    created_at: UtcTime


class TokenOut(ApiModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    user_id: int


__all__ = ["SignupIn", "LoginIn", "MeIn", "UserOut", "MeOut", "TokenOut", "datetime"]
