"""Who is calling: what every adapter (a FastAPI route, a lean path) hands a use case."""

from __future__ import annotations

from dataclasses import dataclass

from ecommerce.platform.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the token says."""

    user_id: int
    role: str
    version: int = 0  # the token's version of its user's tokens (accounts.security)

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


def ensure_self_or_admin(caller: Principal, user_id: int) -> None:
    """A customer may only act for themself; an admin for anyone (else 403)."""
    if caller.user_id != user_id and not caller.is_admin:
        raise Forbidden()


def require_admin(caller: Principal | None) -> None:
    """An administrator's action (else 403)."""
    if caller is None or not caller.is_admin:
        raise Forbidden("This needs an administrator")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
