"""How an adapter finds the use cases the composition root built for a running app.

Each domain's use case object (`Orders`, `Wallet`, ...) is registered by its class in
`app.state.services` when the app starts; a route asks for one by class
(`Annotated[Orders, provided(Orders)]`) and the lean paths look it up the same way. So a
domain never imports the composition root, and a use case receives only the collaborators
it was built with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Depends, Request

T = TypeVar("T")
Services = dict[type, Any]
_getters: dict[type, Callable[[Request], Any]] = {}


def provided(kind: type[T]) -> Any:
    """A FastAPI dependency on the app's `kind` use cases."""
    getter = _getters.get(kind)
    if getter is None:
        def getter(request: Request) -> T:
            return request.app.state.services[kind]

        getter.__name__ = f"provided_{kind.__name__}"
        _getters[kind] = getter
    return Depends(getter)
