"""Annotated dependency aliases for units of work: `Uow`, `ReadUow` (not yet open: the
route opens it with `async with uow:` around its one service call). The context is
`ecommerce.context.Ctx`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ecommerce.platform.database import UnitOfWork


async def get_uow(request: Request) -> UnitOfWork:
    return request.app.state.ctx.db.uow(write=True)


async def get_read_uow(request: Request) -> UnitOfWork:
    return request.app.state.ctx.db.uow(write=False)


# Not yet open: the route opens it with `async with uow:` around its one service call.
Uow = Annotated[UnitOfWork, Depends(get_uow)]
ReadUow = Annotated[UnitOfWork, Depends(get_read_uow)]
