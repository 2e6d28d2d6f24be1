"""The split of a coach's earning over a contract's sessions."""

from __future__ import annotations

import pytest

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


def test_a_refund_takes_its_share_of_each_part_rounded_down():
    assert refund_cut(4750, 5000, 20000) == 1187  # 1187.5
    assert refund_cut(3168, 9500, 10000) == 3009  # jpy 3009.6
    assert refund_cut(4750, 20000, 20000) == 4750  # a full refund takes it all
    assert refund_cut(4750, 0, 20000) == 0
