from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from ecommerce.platform.schemas import ApiModel, ApiRequest, UtcTime

Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Role = Literal["CUSTOMER", "ADMIN"]


class SignupIn(ApiRequest):
    username: Username
    password: Password


class LoginIn(ApiRequest):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class UserOut(ApiModel):
    user_id: int
    username: str
    role: Role


class MeOut(UserOut):
    created_at: UtcTime


class TokenOut(ApiModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    user_id: int


__all__ = ["SignupIn", "LoginIn", "UserOut", "MeOut", "TokenOut", "datetime"]
