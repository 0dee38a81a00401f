from ecommerce.platform.schemas import ApiModel, UtcTime


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
