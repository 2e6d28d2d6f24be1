"""The split of a coach's earning over a contract's sessions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.standing import refund_cut, split


@pytest.mark.parametrize(
    ("earning", "count", "expected"),
    [
        (19000, 4, [4750, 4750, 4750, 4750]),  # usd, even
        (10001, 3, [3333, 3333, 3335]),  # usd, the remainder on the last
        (9500, 3, [3166, 3166, 3168]),  # jpy: no minor unit, still exact
        (99, 100, [0] * 99 + [99]),  # less than a unit per session
        (7, 1, [7]),
    ],
)
def test_shares_are_equal_rounded_down_with_the_remainder_on_the_last(earning, count, expected):
    parts = split(earning, count)
    assert parts == expected
    assert sum(parts) == earning


def test_a_refund_takes_its_share_of_each_part_rounded_up():
    assert refund_cut(4750, 5000, 20000) == 1188  # 1187.5
    assert refund_cut(3168, 9500, 10000) == 3010  # jpy 3009.6
    assert refund_cut(4750, 20000, 20000) == 4750  # a full refund takes it all
    assert refund_cut(4750, 0, 20000) == 0
    assert refund_cut(4750, 5000, 10000) == 2375  # exact: nothing to round


@given(st.lists(st.integers(0, 50_000), min_size=1, max_size=8), st.integers(0, 5_000),
       st.data())
def test_the_parts_never_keep_more_than_the_price_kept(parts, fee, data):
    """Whatever goes back, the coach's parts net of their cuts stay within what the
    student's money kept of the price: the platform's fee never goes negative."""
    total = sum(parts) + fee
    if total == 0:
        return
    returned = data.draw(st.integers(0, total))
    kept = sum(part - refund_cut(part, returned, total) for part in parts)
    assert 0 <= kept <= total - returned
    assert all(0 <= refund_cut(part, returned, total) <= part for part in parts)
