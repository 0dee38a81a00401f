from typing import Literal

from ecommerce.platform.schemas import ApiModel, UtcTime

EventStatus = Literal["PENDING", "DELIVERED", "FAILED"]


class ConsumerOut(ApiModel):
    """`lag`: events it has not finished; of them `pending`: taken and working or waiting
    for a retry; `dead`: failed every quick attempt (retried slowly while young, or by an
    admin). `configured`: whether this process's settings switch it on."""

    name: str
    lag: int
    pending: int
    dead: int
    configured: bool


class DeadEventOut(ApiModel):
    event_id: str
    event_type: str
    order_id: int | None
    attempts: int
    last_error: str | None
    occurred_at: UtcTime
    next_attempt_at: UtcTime | None  # its next slow retry; null: only an admin's


class DeliveryOut(ApiModel):
    event_id: str
    consumer: str
    status: str
    attempts: int
    next_attempt_at: UtcTime | None
    last_error: str | None


class EventOut(ApiModel):
    id: int
    event_id: str
    event_type: str
    order_id: int | None
    status: EventStatus
    attempts: int
    next_attempt_at: UtcTime | None
    last_error: str | None
    created_at: UtcTime
    delivered_at: UtcTime | None
    streamed_at: UtcTime | None


class DeliveryStatusOut(ApiModel):
    """Where events go: without a data platform URL, PENDING events have nowhere to go and
    stay pending; `stream`: they are published to a broker the consumers read, named by
    `broker` (kafka or redis; outbox: none, the consumers read the outbox); `relay`: this
    server runs the consumers (RUN_CONSUMERS; beside its workers under `serve`)."""

    data_platform: bool
    stream: bool
    broker: Literal["kafka", "redis", "outbox"]
    relay: bool
