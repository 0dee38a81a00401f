"""The lean path (`ecommerce.platform.fastpath`) for `POST /api/orders`.

An order that validates (the same `OrderIn` model as the route, from the raw body) and is
placed by its own user or an admin is answered here, through the same `router.place`;
anything else goes to the FastAPI route, which gives the documented refusals."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.types import Scope

from ecommerce.accounts.security import Principal
from ecommerce.orders.router import place
from ecommerce.orders.schemas import OrderIn
from ecommerce.platform.fastpath import header
from ecommerce.platform.idempotency import valid_key

PATH = "/api/orders"


async def place_order(ctx: Any, principal: Principal, body: bytes, scope: Scope
                      ) -> tuple[int, Any] | None:
    try:
        order = OrderIn.model_validate_json(body)
    except ValidationError:
        return None
    if principal.user_id != order.user_id and not principal.is_admin:
        return None
    key = header(scope, b"idempotency-key")
    if key is not None and not valid_key(key):
        return None  # the route's header validation answers it
    return await place(ctx, principal, order, key, PATH)
