"""The coach is told, in words, when money goes to them, when a refund takes some back,
and when Stripe needs more from them to keep paying out; once each."""

from __future__ import annotations

from sqlalchemy import select

from tests.payments.test_refund_requests import log_in_as, text_of
from tests.payouts.conftest import run_payouts, settle_funds, shares
from tests.payouts.test_payouts_flow import HOLD, _refund
from tests.support import at_once, wait_for


def notices(db, coach, words: str) -> list[tuple[str, str | None]]:
    from notifications.models import Notification

    db.session.expire_all()
    return [(n.message, n.link) for n in db.session.scalars(
        select(Notification).where(Notification.user_id == coach.id,
                                   Notification.message.contains(words))
        .order_by(Notification.id))]


def test_a_transfer_tells_the_coach_once(app, db, clock, sandbox, paid, deliver, ready_account):
    from notifications.models import OutboxMail
    from payouts import transfers
    from payouts.shares import make_session_shares

    contract_id, _, coach = paid
    deliver(1)
    clock.advance(HOLD)
    make_session_shares.call_local()
    db.session.commit()
    share_id = shares(db, contract_id)[0].id
    # Two jobs at once, then the periodic run: one transfer, one notice.
    at_once(app, transfers.transfer_share, [share_id, share_id])
    run_payouts(db)
    assert transfers.transfer_share(share_id) == "not_due"
    assert notices(db, coach, "on its way") == [(
        "$47.50 for your session of 3 May on “Interview coaching” is on its way to your bank "
        "account. Stripe pays it out on your account's payout schedule.", "/payouts/")]
    [mail] = db.session.scalars(select(OutboxMail).filter_by(recipient=coach.email).where(
        OutboxMail.subject.contains("on its way")))
    assert mail.subject == "Coachpact: $47.50 for “Interview coaching” is on its way"
    assert mail.body.endswith("/payouts/")


def test_a_reversal_tells_the_coach_what_the_refund_took_back_once(
    db, clock, sandbox, paid, deliver, ready_account, admin
):
    contract_id, _, coach = paid
    deliver(1)
    clock.advance(HOLD)
    run_payouts(db)
    settle_funds(sandbox)
    _refund(db, contract_id, admin, 5000)  # a quarter of $200.00
    run_payouts(db)
    run_payouts(db)  # nothing more to take back, no one told again
    assert shares(db, contract_id)[0].reversed_amount == 1188
    assert notices(db, coach, "took back") == [(
        "A refund to the student of “Interview coaching” took back $11.88 of what you were "
        "paid for your session of 3 May. Stripe has taken it from your account already; "
        "there is nothing for you to do.", "/payouts/")]


def test_an_account_stripe_asks_more_of_tells_the_coach_in_words_once(
    db, client, sandbox, paid, ready_account
):
    from payouts import accounts
    from payouts.models import ConnectedAccount

    coach = paid[2]
    # Onboarding asked for everything from the start: no one was told of that.
    assert notices(db, coach, "Stripe needs") == []
    response = sandbox.tool(f"accounts/{ready_account}/require",
                            fields="individual.verification.document,tos_acceptance.ip,"
                                   "individual.something_new")
    assert response.status_code == 200, response.text

    def asked() -> bool:
        db.session.expire_all()
        return bool(db.session.scalar(select(ConnectedAccount.requirements_due).filter_by(
            stripe_account_id=ready_account)))

    wait_for(asked, 10, "the account's requirements")
    [(message, link)] = notices(db, coach, "Stripe needs")
    assert message == (
        "Stripe needs more information to keep paying you out: some personal details, "
        "a photo of your ID document and your acceptance of Stripe's terms of service. "
        "It takes a few minutes on Stripe's page; until then your payouts may be paused.")
    assert "tos_acceptance" not in message and link == "/payouts/setup/again"
    # The payouts page says the same, with the way to Stripe's page.
    log_in_as(client, coach)
    page = client.get("/payouts/").get_data(as_text=True).replace("&#39;", "'")
    assert text_of(page, "requirements-due") == (
        "Some personal details A photo of your ID document Your acceptance of Stripe's terms "
        "of service")
    assert "Give Stripe what it needs" in page
    # The coach's return from Stripe reads the same account again: no second notice; a
    # further ask while the first is open tells no one twice either.
    accounts.refresh(db.session.merge(coach))
    db.session.commit()
    sandbox.tool(f"accounts/{ready_account}/require", fields="individual.address.line1")
    wait_for(lambda: "individual.address.line1" in (db.session.scalar(
        select(ConnectedAccount.requirements_due).filter_by(stripe_account_id=ready_account,
                                                           ).execution_options(
            populate_existing=True)) or []), 10, "the second ask")
    assert len(notices(db, coach, "Stripe needs")) == 1


def test_requirement_keys_read_as_words():
    from payouts.accounts import requirement_words

    assert requirement_words(["external_account", "individual.dob.day", "individual.dob.month",
                              "tos_acceptance.date", "tos_acceptance.ip",
                              "company.tax_id", "unknown.key"]) == [
        "the bank account to pay you into", "your date of birth",
        "your acceptance of Stripe's terms of service", "some details about your company",
        "a few more details about you"]
