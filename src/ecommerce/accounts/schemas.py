from datetime import datetime
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field

from ecommerce.platform.schemas import ApiModel, ApiRequest, UtcTime

Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Role = Literal["CUSTOMER", "ADMIN"]


def deliverable(address: str) -> str:
    """One address that an SMTP server without SMTPUTF8 can deliver to: an ASCII local
    part, a domain that is a real host name (an international one is taken and sent in its
    IDNA form); stored as email-validator normalises it. Whether it receives mail only
    sending tells (no DNS is asked here)."""
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False,
                                 allow_domain_literal=False, allow_quoted_local=False)
    except EmailNotValidError as error:
        raise ValueError(f"not an address mail can be sent to: {error}") from None
    return checked.normalized


# An address to send order notices to (one, deliverable syntax; see `deliverable`). The
# pattern states what a JSON Schema can (an ASCII local part, a dotted domain); the rest
# of email-validator's rules (IDNA, label lengths) only the server checks.
EMAIL_PATTERN = (r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                 r"@[^\s@.\x00-\x1f\x7f]+(\.[^\s@.\x00-\x1f\x7f]+)+$")
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN),
                  AfterValidator(deliverable)]


class SignupIn(ApiRequest):
    username: Username
    password: Password
    email: Email | None = None


class MeIn(ApiRequest):
    """`PATCH /api/users/me`: the e-mail for order notices, or null to remove it."""

    email: Email | None


class PasswordChangeIn(ApiRequest):
    """`POST /api/users/me/password`: the current password and the new one."""

    current_password: Annotated[str, Field(min_length=1, max_length=128)]
    new_password: Password


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


__all__ = ["SignupIn", "LoginIn", "MeIn", "PasswordChangeIn", "UserOut", "MeOut", "TokenOut",
           "datetime"]
