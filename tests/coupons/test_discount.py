"""The money rules of coupons, as properties over every possible input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ecommerce.coupons.discount import discount_for

subtotals = st.integers(min_value=0, max_value=50 * 1_000 * 100_000_000)
amounts = st.integers(min_value=1, max_value=100_000_000)


@given(subtotal=subtotals, value=amounts)
def test_fixed_takes_the_value_but_never_more_than_the_subtotal(subtotal, value):
    discount = discount_for("FIXED", value, None, subtotal)
    assert discount == min(value, subtotal)
    assert 0 <= subtotal - discount <= subtotal


@given(subtotal=subtotals, percent=st.integers(min_value=1, max_value=100),
       cap=st.none() | amounts)
def test_percent_is_floored_and_capped(subtotal, percent, cap):
    discount = discount_for("PERCENT", percent, cap, subtotal)
    exact = subtotal * percent // 100
    assert discount == (exact if cap is None else min(exact, cap))
    assert discount * 100 <= subtotal * percent  # never rounds up
    assert 0 <= discount <= subtotal
    assert isinstance(discount, int)


def test_known_values():
    assert discount_for("PERCENT", 10, None, 12_345) == 1_234
    assert discount_for("PERCENT", 33, 5_000, 100_000) == 5_000
    assert discount_for("PERCENT", 100, None, 9_999) == 9_999
    assert discount_for("FIXED", 5_000, None, 3_000) == 3_000
