"""What people read: refusals, payment methods and timeline entries in words."""

from __future__ import annotations

from admin.timeline_words import action_words, changes_words, event_words
from contracts.models import ProposalStatus, SessionStatus
from contracts.money import method_words
from database.states import refusal
from payments.models import PlanStatus


def test_a_refused_change_says_what_happened():
    assert refusal(ProposalStatus.ACCEPTED, ProposalStatus.DECLINED, "proposal") == (
        "This proposal was accepted already, so it can no longer be declined.")
    assert refusal(PlanStatus.ACTIVE, PlanStatus.ACTIVE, "plan") == "This plan is active already."
    assert refusal(SessionStatus.COMPLETED, SessionStatus.NO_SHOW, "session") == (
        "This session was completed already, so it can no longer be marked a no-show.")


def test_payment_methods_read_as_people_say_them():
    assert method_words("us_bank_account") == "US bank account"
    assert method_words("card") == "Card"
    assert method_words("sepa_debit") == "SEPA Direct Debit"
    assert method_words("klarna") == "Klarna"
    assert method_words(None) == "—"


def test_timeline_words_for_known_and_unknown_codes():
    assert event_words("checkout.session.completed") == (
        "Stripe: the Checkout session was completed")
    assert event_words("invoice.paid") == "Stripe: invoice paid"
    assert action_words("payment.flagged") == "The payment was held for review."
    assert action_words("refund.succeeded") == "The refund went through."
    assert action_words("plan.card_changed") == "Plan card changed."
    assert changes_words({"status": "pending"}, {"status": "active", "amount": 500}, "jpy") == (
        "status: pending → active; amount: ¥500")
    assert changes_words(None, {"detail": {"amount_waived": 1250}}, "eur") == (
        "detail: amount waived €12.50")
    assert changes_words(None, {"method": "bank_transfer", "amount": 20000}, "usd") == (
        "method: Bank transfer; amount: $200.00")
    assert changes_words(None, {"method": "manual"}, "usd") == "method: Offline"
