"""Operations endpoints: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from ecommerce.platform import metrics
from ecommerce.platform.http import JsonResponse

router = APIRouter(tags=["operations"])


def alive() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness, through FastAPI."""
    return alive()


@router.get("/livez")
async def livez() -> dict[str, str]:
    """Liveness on the lean path, ahead of FastAPI (this route answers only if the lean
    path passes it on): the cheapest request the server answers, a load balancer's
    natural probe, and the lean path's ceiling in the benchmarks beside /healthz's."""
    return alive()


async def lean_livez(ctx: object, scope: object) -> tuple[int, dict[str, str], None]:
    return 200, alive(), None


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
async def readyz(request: Request) -> JsonResponse:
    ctx = request.app.state.ctx  # anything with `db` and `redis` (ecommerce.context)
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with ctx.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        checks["database"] = f"unavailable: {type(error).__name__}"
    if ctx.redis is not None:
        try:
            async with asyncio.timeout(2):
                await ctx.redis.ping()
            checks["redis"] = "ok"
        except Exception as error:  # noqa: BLE001
            checks["redis"] = f"unavailable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                          status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def prometheus() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
