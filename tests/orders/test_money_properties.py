"""The money rules as properties, through the API on every database: discounts, the
minimum order, the balance cap and the recharge limits, and paying exactly what is held."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import assert_error, make_coupon, make_product, make_user

CAP = 100_000_000
examples = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

coupons = st.one_of(
    st.tuples(st.just("FIXED"), st.integers(1, 50_000), st.none()),
    st.tuples(st.just("PERCENT"), st.integers(1, 100), st.none() | st.integers(1, 50_000)))
lines = st.lists(st.tuples(st.integers(1, 30_000), st.integers(1, 5)), min_size=1, max_size=3)


def spec_discount(kind: str, value: int, cap: int | None, subtotal: int) -> int:
    """SPEC §4, written out again on purpose: FIXED min(value, subtotal); PERCENT
    floor(subtotal × value / 100), capped when a cap is set."""
    if kind == "FIXED":
        return min(value, subtotal)
    discount = subtotal * value // 100
    return discount if cap is None else min(discount, cap)


async def balance(client, user) -> int:  # noqa: ANN001
    return (await client.get(f"/api/balance/{user.id}", headers=user.headers)).json()["balance"]


_codes = iter(range(10**9))


@examples
@given(coupon=coupons, minimum=st.integers(0, 60_000), order_lines=lines)
async def test_an_order_pays_the_subtotal_less_the_spec_discount_or_nothing(
        shop, client, coupon, minimum, order_lines):
    kind, value, cap = coupon
    user = await make_user(shop, balance=1_000_000)
    code = await make_coupon(shop, code=f"P{next(_codes)}", discount_type=kind, value=value,
                             max_discount=cap, min_order=minimum)
    claimed = await client.post("/api/coupons/claim", headers=user.headers,
                                json={"userId": user.id, "couponCode": code})
    assert claimed.status_code == 200, claimed.text
    items = []
    for price, quantity in order_lines:
        items.append({"productId": await make_product(shop, price=price, stock=5),
                      "quantity": quantity})
    subtotal = sum(price * quantity for price, quantity in order_lines)

    response = await client.post("/api/orders", headers=user.headers,
                                 json={"userId": user.id, "items": items, "couponCode": code})

    held = (await client.get(f"/api/users/{user.id}/coupons", headers=user.headers)).json()
    if subtotal < minimum:
        assert_error(response, 400, "COUPON_NOT_USABLE")
        assert await balance(client, user) == 1_000_000
        assert held[0]["status"] == "AVAILABLE"
        return
    assert response.status_code == 201, response.text
    discount = spec_discount(kind, value, cap, subtotal)
    order = response.json()
    assert (order["totalPrice"], order["discountAmount"], order["paidAmount"]) == (
        subtotal, discount, subtotal - discount)
    assert 0 <= order["paidAmount"] <= subtotal
    assert await balance(client, user) == 1_000_000 - (subtotal - discount)
    assert held[0]["status"] == "USED"


@examples
@given(start=st.integers(0, CAP), amounts=st.lists(
    st.integers(-1_000, 10_000_100) | st.sampled_from([1, 10_000_000, CAP]), max_size=6))
async def test_recharges_respect_the_limits_and_the_cap(shop, client, start, amounts):
    user = await make_user(shop, balance=start)
    expected = start
    for amount in amounts:
        response = await client.post("/api/balance/recharge", headers=user.headers,
                                     json={"userId": user.id, "amount": amount})
        if not 1 <= amount <= 10_000_000:
            assert_error(response, 400, "INVALID_REQUEST")
        elif expected + amount > CAP:
            assert_error(response, 400, "BALANCE_LIMIT_EXCEEDED")
        else:
            assert response.status_code == 200, response.text
            expected += amount
            assert response.json()["newBalance"] == expected
    assert await balance(client, user) == expected


@examples
@given(price=st.integers(1, 100_000), quantity=st.integers(1, 10),
       short=st.integers(-3, 3))
async def test_an_order_is_paid_exactly_when_the_balance_covers_it(shop, client, price,
                                                                   quantity, short):
    cost = price * quantity
    held = max(0, cost + short)
    user = await make_user(shop, balance=held)
    product = await make_product(shop, price=price, stock=quantity)
    response = await client.post("/api/orders", headers=user.headers, json={
        "userId": user.id, "items": [{"productId": product, "quantity": quantity}]})
    if held >= cost:
        assert response.status_code == 201, response.text
        assert await balance(client, user) == held - cost
    else:
        assert_error(response, 402, "INSUFFICIENT_BALANCE")
        assert await balance(client, user) == held
        stock = (await client.get(f"/api/products/{product}")).json()["stock"]
        assert stock == quantity
