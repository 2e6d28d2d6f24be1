"""A declined instalment in Chromium: the student's Payments page says it was declined,
when it is tried again, and what they can do meanwhile."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.payments.test_money_notices import declined  # noqa: F401 (fixture)
from tests.payments.test_plans_flow import (  # noqa: F401 (fixtures)
    at,
    instalment,
    on_plan,
    plan_contract,
    request_context,
)
from tests.support import log_in, shot

pytestmark = pytest.mark.browser


def test_the_student_sees_the_declined_instalment_and_its_next_step(
    db, page, live_url, declined  # noqa: F811
):
    contract_id, student, _ = declined
    first = instalment(db, contract_id, 1)
    log_in(page, live_url, student.email, PASSWORD)
    page.goto(f"{live_url}/payments")
    row = page.locator(f'tr[data-instalment="{first.id}"]')
    status = row.locator('[data-status="declined"]')
    assert status.inner_text() == "Declined — retrying on 11 Apr"
    assert "1 attempt so far · Your card has insufficient funds." in row.inner_text()
    shot(page, "instalment-declined")
    row.get_by_role("link", name="Update your card").click()
    page.wait_for_url(f"{live_url}/payment-methods")
