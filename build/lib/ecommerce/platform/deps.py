"""Annotated dependency aliases every router uses: `Ctx`, `Uow`, `ReadUow`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ecommerce.platform.context import AppContext
from ecommerce.platform.database import UnitOfWork


async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


async def get_uow(request: Request) -> UnitOfWork:
    return request.app.state.ctx.db.uow(write=True)


async def get_read_uow(request: Request) -> UnitOfWork:
    return request.app.state.ctx.db.uow(write=False)


Ctx = Annotated[AppContext, Depends(get_ctx)]
# Not yet open: the route opens it with `async with uow:` around its one service call.
Uow = Annotated[UnitOfWork, Depends(get_uow)]
ReadUow = Annotated[UnitOfWork, Depends(get_read_uow)]
