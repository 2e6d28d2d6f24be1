"""`flask --app app demo-data`: a small, realistic data set; running it twice changes nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import click
import requests
from flask import Flask, current_app
from sqlalchemy import select

import clock
from accounts.models import Role, User
from accounts.services import create_user, find_user_by_email, update_public_page
from accounts.timezones import to_local
from admin import analytics
from audit.services import record as audit
from books.reconcile import reconcile_day
from contracts.expiry import expire_due_proposals
from contracts.models import (
    CoachingSession,
    Contract,
    ContractStatus,
    PaymentStatus,
    Proposal,
    ProposalStatus,
    SessionStatus,
)
from contracts.plans import add_months
from contracts.services import (
    accept_proposal,
    decline_proposal,
    send_proposal,
    withdraw_proposal,
)
from demo_history import DAYS as HISTORY_DAYS
from demo_history import load_history
from extensions import db
from offers.membership_periods import period_contract
from offers.memberships import (
    create_membership_offer,
    grants_of,
    membership_offers_of,
    publish_price,
)
from offers.models import (
    CreditGrant,
    Membership,
    MembershipOffer,
    MembershipPeriod,
    MembershipStatus,
    OfferStatus,
)
from offers.services import create_offer, offers_of, set_offer_status
from payments import checkout, plans
from payments.models import (
    Dispute,
    InstalmentStatus,
    Payment,
    PaymentRecordStatus,
    Refund,
    RefundCategory,
    RefundRequest,
    RefundSource,
    RefundStatus,
    RequestStatus,
)
from payments.refunds import quote_now
from payments.standing import split
from payouts.models import ConnectedAccount, SessionShare, ShareStatus
from payouts.shares import hold
from scheduling.models import DayOff, WorkingHours

DEMO_PASSWORD = "coachpact-demo"  # noqa: S105 (printed for the demo logins)

PEOPLE = [
    ("admin@coachpact.test", "Ada Admin", Role.ADMIN, "UTC"),
    ("maya@coachpact.test", "Maya Lindqvist", Role.COACH, "Europe/London"),
    ("tomas@coachpact.test", "Tomás Ferreira", Role.COACH, "America/Los_Angeles"),
    ("ana@coachpact.test", "Ana Ruiz", Role.STUDENT, "America/New_York"),
    ("kenji@coachpact.test", "Kenji Sato", Role.STUDENT, "Asia/Tokyo"),
    ("priya@coachpact.test", "Priya Nair", Role.STUDENT, "Asia/Kolkata"),
]


@dataclass(frozen=True)
class DemoProposal:
    coach: str
    student: str
    title: str
    sessions: int
    minutes: int
    price: int  # minor units
    currency: str
    # What becomes of it: a proposal status, or a contract status (the contract
    # exists with the payment state a real payment would have left).
    outcome: ProposalStatus | ContractStatus
    # A payment plan the coach offers (deposit percent, most instalments), taken at 3.
    plan: tuple[int, int] | None = None


PROPOSALS = [
    DemoProposal(
        "maya",
        "ana",
        "Public speaking, from nervous to natural",
        6,
        60,
        7500,
        "usd",
        ProposalStatus.SENT,
    ),
    DemoProposal(
        "maya",
        "priya",
        "Product management interview prep",
        4,
        45,
        9000,
        "gbp",
        ProposalStatus.DECLINED,
    ),
    DemoProposal(
        "tomas", "kenji", "Marathon training block", 8, 30, 4000, "eur", ProposalStatus.WITHDRAWN
    ),
    DemoProposal(
        "maya", "kenji", "Mindful leadership", 4, 60, 8000, "usd", ProposalStatus.EXPIRED
    ),
    DemoProposal(
        "maya", "ana", "Leadership for new managers", 4, 60, 12000, "usd", ContractStatus.PENDING
    ),
    DemoProposal(
        "tomas", "kenji", "Conversational Portuguese", 10, 45, 5000, "jpy", ContractStatus.ACTIVE
    ),
    DemoProposal(
        "maya", "priya", "Career change roadmap", 3, 90, 15000, "gbp", ContractStatus.COMPLETED
    ),
    DemoProposal("tomas", "ana", "Guitar basics", 5, 30, 3000, "usd", ContractStatus.CANCELLED),
    DemoProposal(
        "tomas", "priya", "Strength training plan", 4, 60, 6000, "eur", ContractStatus.REFUNDED
    ),
    DemoProposal(
        "maya", "kenji", "Negotiation skills", 2, 60, 20000, "usd", ContractStatus.DISPUTED
    ),
    DemoProposal(
        "maya", "ana", "Presentation skills programme", 8, 60, 10000, "usd",
        ContractStatus.ACTIVE, plan=(25, 6),
    ),
    DemoProposal(
        "tomas", "priya", "Spanish for work", 6, 45, 6000, "eur", ContractStatus.PAST_DUE,
        plan=(25, 3),
    ),
]

# Payment status a contract in each state would carry after real payments.
_PAYMENT_FOR = {
    ContractStatus.ACTIVE: PaymentStatus.PAID,
    ContractStatus.COMPLETED: PaymentStatus.PAID,
    ContractStatus.REFUNDED: PaymentStatus.REFUNDED,
    ContractStatus.DISPUTED: PaymentStatus.DISPUTED,
}


def _user(email: str, name: str, role: Role, timezone: str) -> User:
    return find_user_by_email(email) or create_user(
        email=email, name=name, password=DEMO_PASSWORD, role=role, timezone=timezone
    )


def load_demo_data() -> list[User]:
    """Create whatever of the demo set is missing; flushes, the caller commits."""
    users = [_user(*person) for person in PEOPLE]
    by_key = {user.email.split("@")[0]: user for user in users}
    for item in PROPOSALS:
        coach, student = by_key[item.coach], by_key[item.student]
        exists = db.session.scalar(
            select(Proposal.id).filter_by(
                coach_id=coach.id, student_id=student.id, title=item.title
            )
        )
        if exists:
            continue
        proposal = send_proposal(
            coach,
            student_email=student.email,
            title=item.title,
            description=f"{item.sessions} sessions of {item.minutes} minutes with {coach.name}.",
            session_count=item.sessions,
            minutes_per_session=item.minutes,
            price_per_session=item.price,
            currency=item.currency,
        )
        if item.outcome is ProposalStatus.DECLINED:
            decline_proposal(proposal.id, student)
        elif item.outcome is ProposalStatus.WITHDRAWN:
            withdraw_proposal(proposal.id, coach)
        elif item.outcome is ProposalStatus.EXPIRED:
            # Sent long enough ago that nobody answered in time; the expiry job ends it below.
            days = current_app.config["PROPOSAL_EXPIRY_DAYS"] or 14
            proposal.created_at = clock.now() - timedelta(days=days + 2)
            proposal.expires_at = clock.now() - timedelta(days=2)
        elif isinstance(item.outcome, ContractStatus):
            if item.plan:
                proposal.plan_deposit_percent, proposal.plan_max_instalments = item.plan
            contract = accept_proposal(proposal.id, student)
            if item.plan:
                contract.plan_deposit_percent, contract.plan_max_instalments = item.plan
                _start_plan(contract, item.outcome)
            else:
                _settle(contract, item.outcome)
    expire_due_proposals()
    for title, days in SESSIONS.items():
        _add_sessions(title, days)
    _add_working_hours(by_key)
    _add_meeting_places()
    _add_money_back(by_key)
    _add_payouts(by_key)
    _add_offers(by_key)
    _add_memberships(by_key)
    config = current_app.config
    if load_history(config["PLATFORM_FEE_PERCENT"], config["PLATFORM_FEE_MINIMUM"]):
        # The closed days' figures, as the nightly job would have kept them.
        today = clock.now().date()
        analytics.rollup(today - timedelta(days=HISTORY_DAYS + 1), today)
    return users


# The coaches' public pages (/c/<slug>) and their offers: one with plan rules, one
# without, and one of Maya's paused (not shown, not for sale).
PUBLIC_PAGES = {
    "maya": ("maya-lindqvist", "Leadership and career coach in London. I help new managers "
             "find their feet and experienced ones lead through change."),
    "tomas": ("tomas-ferreira", "Language and endurance coach in Los Angeles: Portuguese "
              "for work and travel, and training plans for your first marathon."),
}


@dataclass(frozen=True)
class DemoOffer:
    coach: str
    title: str
    description: str
    sessions: int
    minutes: int
    price: int  # minor units
    currency: str
    plan: tuple[int, int, int | None] | None = None  # deposit %, most instalments, minimum
    status: OfferStatus = OfferStatus.ACTIVE


OFFERS = [
    DemoOffer("maya", "Leadership sprint",
              "Six weekly sessions for new managers: feedback, delegation and your first "
              "hard conversations, with notes after each.", 6, 60, 10000, "usd",
              plan=(25, 3, 30000)),
    DemoOffer("maya", "Interview preparation",
              "Three mock interviews for your next role, with written feedback.",
              3, 45, 6000, "gbp"),
    DemoOffer("maya", "Executive coaching quarter",
              "Twelve sessions over a quarter for senior leaders.", 12, 60, 15000, "usd",
              plan=(20, 6, None), status=OfferStatus.PAUSED),
    DemoOffer("tomas", "Portuguese conversation pack",
              "Ten conversations in Portuguese on the topics you need, at your level.",
              10, 45, 4000, "eur", plan=(20, 4, None)),
    DemoOffer("tomas", "Marathon training block",
              "Eight check-ins over a sixteen-week plan to your first marathon.",
              8, 30, 3500, "eur"),
]


def _add_offers(people: dict[str, User]) -> None:
    """Maya's and Tomás's public pages and offers; a coach with offers is left alone."""
    for key, (slug, bio) in PUBLIC_PAGES.items():
        coach = people[key]
        if coach.slug is None:
            update_public_page(coach, slug=slug, bio=bio)
        if offers_of(coach):
            continue
        for item in (offer for offer in OFFERS if offer.coach == key):
            deposit, most, minimum = item.plan or (None, None, None)
            offer = create_offer(
                coach, title=item.title, description=item.description,
                session_count=item.sessions, minutes_per_session=item.minutes,
                price_per_session=item.price, currency=item.currency,
                plan_deposit_percent=deposit, plan_max_instalments=most,
                plan_minimum_total=minimum,
            )
            if item.status is not OfferStatus.ACTIVE:
                set_offer_status(offer, coach, item.status)


# Membership offers on the coaches' public pages, and the memberships students hold.
MEMBERSHIP_OFFERS = [
    ("maya", "Monthly coaching", "Four sessions a month to keep your growth as a leader "
     "going, with notes after each.", 4, 45, 16000, "usd", MembershipPeriod.MONTH),
    ("tomas", "Weekly Portuguese conversation", "One conversation in Portuguese a week, on "
     "the topics you need.", 1, 30, 3000, "jpy", MembershipPeriod.WEEK),
]


@dataclass(frozen=True)
class DemoMembership:
    student: str
    offer: str
    status: MembershipStatus
    periods_paid: int
    periods_ago: int  # how many periods before the running one it started
    cancel_at_period_end: bool = False


MEMBERSHIPS = [
    DemoMembership("ana", "Monthly coaching", MembershipStatus.ACTIVE, 3, 2),
    # Its renewal failed: the running period has no credits yet.
    DemoMembership("priya", "Monthly coaching", MembershipStatus.PAST_DUE, 1, 1),
    # Canceled last month, after three paid months.
    DemoMembership("kenji", "Monthly coaching", MembershipStatus.CANCELED, 3, 3),
    DemoMembership("kenji", "Weekly Portuguese conversation", MembershipStatus.ACTIVE, 4, 3),
    DemoMembership("ana", "Weekly Portuguese conversation", MembershipStatus.ACTIVE, 2, 1,
                   cancel_at_period_end=True),
]


def _add_memberships(people: dict[str, User]) -> None:
    """The coaches' membership offers (their Prices made at the sandbox when it runs, else
    given demo ids), and memberships as their subscriptions' events would have left them:
    history, written directly. A student with a membership of the offer is left alone."""
    for coach_key, title, description, sessions, minutes, price, currency, period in (
            MEMBERSHIP_OFFERS):
        coach = people[coach_key]
        if any(offer.title == title for offer in membership_offers_of(coach)):
            continue
        offer = create_membership_offer(
            coach, title=title, description=description, sessions_per_period=sessions,
            minutes_per_session=minutes, price_per_period=price, currency=currency,
            period=period)
        if _sandbox_runs():
            db.session.commit()
            publish_price(offer.id)
        else:
            offer.stripe_product_id = f"prod_demo_{_demo_key('product', offer.id)[:16]}"
            offer.stripe_price_id = f"price_demo_{_demo_key('price', offer.id)[:16]}"
    for item in MEMBERSHIPS:
        offer = db.session.scalar(select(MembershipOffer).filter_by(title=item.offer))
        if offer is None:
            continue
        student = people[item.student]
        membership = db.session.scalar(select(Membership).filter_by(
            offer_id=offer.id, student_id=student.id))
        _open_periods(membership or _add_membership(offer, student, item))
    db.session.flush()


def _period_starts(offer: MembershipOffer, item: DemoMembership) -> list[datetime]:
    """The starts of the membership's periods, the running one last (or, for an ended one,
    the day it ended)."""
    today = clock.now().date()
    if item.status is MembershipStatus.CANCELED:
        today = today.replace(day=1) - timedelta(days=10)  # ended last month
    if offer.period is MembershipPeriod.MONTH:
        anchor = today.replace(day=min(today.day, 28)) - timedelta(days=3)
        days = [add_months(anchor, -n) for n in range(item.periods_ago, -1, -1)]
    else:
        anchor = today - timedelta(days=2)
        days = [anchor - timedelta(weeks=n) for n in range(item.periods_ago, -1, -1)]
    return [datetime.combine(day, time(10), tzinfo=UTC) for day in days]


def _period_after(start: datetime, period: MembershipPeriod) -> datetime:
    """The end of the period that begins at `start` (the next one's start)."""
    if period is MembershipPeriod.MONTH:
        return datetime.combine(add_months(start.date(), 1), start.timetz())
    return start + timedelta(weeks=1)


def _add_membership(offer: MembershipOffer, student: User, item: DemoMembership) -> Membership:
    starts = _period_starts(offer, item)
    ended = item.status is MembershipStatus.CANCELED
    key = _demo_key("membership", offer.id, student.id)[:16]
    membership = Membership(
        student_id=student.id, coach_id=offer.coach_id, offer_id=offer.id, title=offer.title,
        sessions_per_period=offer.sessions_per_period,
        minutes_per_session=offer.minutes_per_session, price_per_period=offer.price_per_period,
        currency=offer.currency, period=offer.period, status=item.status,
        stripe_subscription_id=f"sub_demo_{key}", stripe_price_id=offer.stripe_price_id,
        current_period_start=starts[-2] if ended else starts[-1],
        current_period_end=starts[-1] if ended else _period_after(starts[-1], offer.period),
        cancel_at_period_end=item.cancel_at_period_end,
        ended_at=starts[-1] if ended else None, created_at=starts[0],
    )
    db.session.add(membership)
    db.session.flush()
    _history(membership, "membership.active", starts[0], {"status": "active"})
    for n, start in enumerate(starts[:item.periods_paid], 1):
        grant = CreditGrant(
            membership_id=membership.id, stripe_invoice_id=f"in_demo_{key}_{n}",
            sessions=offer.sessions_per_period, period_start=start,
            period_end=_period_after(start, offer.period),
            amount_paid=offer.price_per_period, currency=offer.currency, granted_at=start)
        db.session.add(grant)
        _history(membership, "membership.credits_granted", start,
                 {"invoice": grant.stripe_invoice_id, "sessions": grant.sessions})
    if item.status is not MembershipStatus.ACTIVE:
        _history(membership, f"membership.{item.status.value}", starts[-1],
                 {"status": item.status.value})
    return membership


def _open_periods(membership: Membership) -> None:
    """Each paid grant's period contract, made as `open_period` makes it, its invoice's
    payment written as paid on the period's first day, with made-up Stripe ids. Not through
    `settle`: that would tell both parties and mail them, number an invoice today, and count
    money of weeks ago as paid today, in the books the demo checks against the sandbox."""
    db.session.flush()
    for grant in reversed(grants_of(membership)):  # oldest first: credits roll over
        if grant.contract_id is not None or grant.amount_paid <= 0:
            continue
        key = _demo_key("period", grant.id)[:24]
        invoice = {"id": grant.stripe_invoice_id, "customer": f"cus_demo_{membership.student_id}"}
        contract, payment = period_contract(
            membership, grant, invoice, f"pi_demo_{key}", f"ch_demo_{key}")
        payment.status, payment.paid_at = PaymentRecordStatus.SUCCEEDED, grant.granted_at
        payment.created_at = contract.created_at = grant.granted_at
        contract.status, contract.payment_status = ContractStatus.ACTIVE, PaymentStatus.PAID
        contract.paid_at, contract.amount_paid = grant.granted_at, payment.amount
    db.session.flush()


def _history(membership: Membership, action: str, at: datetime, after: dict) -> None:
    audit(action, membership, actor_label="stripe", after=after).created_at = at


# Sessions on the paid demo contracts, in days from now (negative: past, completed, but for
# those in _TO_MARK, which wait for the coach).
# 00:00 UTC is late afternoon for Tomás in Los Angeles and morning for Kenji in
# Tokyo; 10:00 UTC is a working hour for Maya in London and Priya in Kolkata.
SESSIONS = {
    # The two of the last days are still to be marked: Tomás can complete one at once.
    "Conversational Portuguese": [-14, -7, -2, -1, 9],
    "Career change roadmap": [-40, -33, -26],
    # On a plan: the deposit opened 2 of the 8 sessions.
    "Presentation skills programme": [-1, 6],
}
# Sessions that took place and wait for the coach's mark.
_TO_MARK = {("Conversational Portuguese", -2), ("Conversational Portuguese", -1)}
_SESSION_HOUR = {
    "Conversational Portuguese": 0,
    "Career change roadmap": 10,
    "Presentation skills programme": 15,
}


def _add_sessions(title: str, days: list[int]) -> None:
    # Written directly: the booking rules rightly refuse times in the past.
    contract = db.session.scalar(select(Contract).filter_by(title=title))
    if contract is None or db.session.scalar(
        select(CoachingSession.id).filter_by(contract_id=contract.id).limit(1)
    ):
        return
    today = clock.now().replace(hour=_SESSION_HOUR[title], minute=0, second=0, microsecond=0)
    for offset in days:
        starts_at = today + timedelta(days=offset)
        past = offset < 0 and (title, offset) not in _TO_MARK
        db.session.add(
            CoachingSession(
                contract_id=contract.id,
                coach_id=contract.coach_id,
                booked_by_id=contract.student_id,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=contract.minutes_per_session),
                status=SessionStatus.COMPLETED if past else SessionStatus.SCHEDULED,
                marked_at=starts_at + timedelta(minutes=contract.minutes_per_session)
                if past
                else None,
            )
        )
    db.session.flush()


# Weekly hours on each coach's own wall clock: (weekdays, [(from, to), ...]), 0 = Monday.
WORKING_HOURS = {
    # London: mornings and afternoons with a lunch break; Friday mornings only.
    "maya": [
        ((0, 1, 2, 3), [("09:00", "12:30"), ("13:30", "17:30")]),
        ((4,), [("09:00", "13:00")]),
    ],
    # Los Angeles: early mornings, and late afternoons that are mornings in Tokyo.
    "tomas": [((0, 1, 2, 3, 4), [("07:00", "11:00"), ("15:00", "19:00")])],
}
# Maya takes a day off in ten days' time (on her own calendar).
_DAY_OFF_IN_DAYS = 10

MEETING_PLACES = {
    "Conversational Portuguese": "https://meet.example.org/tomas-kenji-portuguese",
    "Career change roadmap": "Maya's studio, 14 Exmouth Market, London EC1R 4QE",
    "Presentation skills programme": "https://meet.example.org/maya-ana-presentations",
}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _add_working_hours(people: dict[str, User]) -> None:
    """The demo coaches' weekly hours and Maya's day off; a coach with hours is left alone."""
    for key, weeks in WORKING_HOURS.items():
        coach = people[key]
        if db.session.scalar(select(WorkingHours.id).filter_by(coach_id=coach.id).limit(1)):
            continue
        for weekdays, windows in weeks:
            for weekday in weekdays:
                for start, end in windows:
                    db.session.add(
                        WorkingHours(
                            coach_id=coach.id,
                            weekday=weekday,
                            start_minute=_minutes(start),
                            end_minute=_minutes(end),
                        )
                    )
        if key == "maya":
            local_today = to_local(clock.now(), coach.timezone).date()
            db.session.add(
                DayOff(
                    coach_id=coach.id,
                    day=local_today + timedelta(days=_DAY_OFF_IN_DAYS),
                    note="Conference",
                )
            )
    db.session.flush()


def _add_meeting_places() -> None:
    for title, place in MEETING_PLACES.items():
        contract = db.session.scalar(select(Contract).filter_by(title=title))
        if contract is not None and contract.meeting_location is None:
            contract.meeting_location = place
    db.session.flush()


def _settle(contract: Contract, status: ContractStatus) -> None:
    # Demo contracts past `pending` get the fields, and the record of the Checkout
    # attempt, that a real payment would have left. An active one is paid for real
    # at the Stripe sandbox when it runs, so that it can be refunded for real.
    if status is ContractStatus.ACTIVE and _pay_at_sandbox(contract):
        return
    contract.status = status
    if status in _PAYMENT_FOR:
        contract.payment_status = _PAYMENT_FOR[status]
        # Two days ago: the money of invented payments stays out of today's books, which
        # the demo checks against the sandbox (`_check_books`).
        contract.paid_at = clock.now() - timedelta(days=2)
        contract.amount_paid = contract.total_amount
        refunded = status is ContractStatus.REFUNDED
        db.session.add(
            Payment(
                contract_id=contract.id,
                checkout_session_id=f"cs_test_{_demo_id(contract.id)}",
                payment_intent_id=f"pi_test_{_demo_id(contract.id)}",
                amount=contract.total_amount,
                currency=contract.currency,
                status=PaymentRecordStatus.REFUNDED if refunded else PaymentRecordStatus.SUCCEEDED,
                amount_refunded=contract.total_amount if refunded else 0,
                payment_method_type="card",
                paid_at=contract.paid_at,
                stripe_metadata={"contract_id": str(contract.id), "attempt": "1"},
            )
        )
    db.session.flush()


PLAN_INSTALMENTS = 3


def _start_plan(contract: Contract, status: ContractStatus) -> None:
    """A contract on a plan: its deposit paid at the sandbox when it runs (so instalments
    can be charged for real), else as a real deposit would have left it; a past-due one
    has its first instalment failed after every retry."""
    if status is ContractStatus.ACTIVE and _pay_at_sandbox(contract, PLAN_INSTALMENTS):
        return
    started = clock.now() - timedelta(days=45 if status is ContractStatus.PAST_DUE else 3)
    deposit = Payment(
        contract_id=contract.id,
        checkout_session_id=f"cs_test_{_demo_id(contract.id)}",
        payment_intent_id=f"pi_test_{_demo_id(contract.id)}",
        customer_id=f"cus_demo_{contract.student_id}",
        amount=plans.deposit_of(contract, PLAN_INSTALMENTS),
        currency=contract.currency,
        status=PaymentRecordStatus.SUCCEEDED,
        payment_method_type="card",
        paid_at=started,
        created_at=started,
        stripe_metadata={"contract_id": str(contract.id), "attempt": "1",
                         "plan_instalments": str(PLAN_INSTALMENTS)},
    )
    db.session.add(deposit)
    db.session.flush()
    plan = plans.start_plan(contract, deposit, PLAN_INSTALMENTS)
    contract.status, contract.payment_status = ContractStatus.ACTIVE, PaymentStatus.PARTIALLY_PAID
    contract.paid_at, contract.amount_paid = started, deposit.amount
    if status is ContractStatus.PAST_DUE:
        first = plan.instalments[1]
        first.status, first.attempts = InstalmentStatus.FAILED, 4
        first.last_error = "Your card has insufficient funds."
        contract.status = ContractStatus.PAST_DUE
    db.session.flush()


def _pay_at_sandbox(contract: Contract, instalments: int | None = None) -> bool:
    """Pay `contract` by card through Checkout at the running sandbox (the deposit of a
    plan of `instalments`, when given); False if no sandbox runs."""
    if not _sandbox_runs():
        return False
    config = current_app.config
    base = config["STRIPE_API_BASE"]
    with current_app.test_request_context(base_url=config["APP_BASE_URL"]):
        session_url = checkout.start_checkout(
            contract.id, contract.student, instalments=instalments
        )
        session_id = session_url.rstrip("/").rsplit("/", 1)[-1]
        paid = requests.post(
            f"{base}/_sandbox/checkout/sessions/{session_id}/pay",
            data={"card_number": "4242424242424242", "email": contract.student.email},
            timeout=10,
        )
        paid.raise_for_status()
        checkout.confirm_return(contract.id, contract.student, session_id)
    return contract.status is ContractStatus.ACTIVE


def _sandbox_runs() -> bool:
    config = current_app.config
    if not config.get("STRIPE_USES_SANDBOX"):
        return False
    try:
        requests.get(f"{config['STRIPE_API_BASE']}/_sandbox/config", timeout=2).raise_for_status()
    except requests.RequestException:
        return False
    return True


def _check_books() -> None:
    """Today's reconciliation with Stripe's books, as the admin would run it: the money the
    demo moved at the sandbox today matches our records (the invented history is older)."""
    if _sandbox_runs():
        reconcile_day(clock.now().date())


def _add_money_back(people: dict[str, User]) -> None:
    """A refund request waiting for an admin, a refund made, and an open dispute."""
    if db.session.scalar(select(RefundRequest.id).limit(1)):
        return
    moment = clock.now()
    active = db.session.scalar(select(Contract).filter_by(title="Conversational Portuguese"))
    if active is not None and active.status is ContractStatus.ACTIVE:
        offer = quote_now(active)
        db.session.add(
            RefundRequest(
                contract_id=active.id,
                student_id=active.student_id,
                category=RefundCategory.SCHEDULE,
                reason="I am moving to Lisbon next month and will learn in person there.",
                quoted_amount=offer.amount,
                created_at=moment - timedelta(hours=5),
            )
        )
    refunded = db.session.scalar(select(Contract).filter_by(title="Strength training plan"))
    if refunded is not None and refunded.paid_at is not None:
        request = RefundRequest(
            contract_id=refunded.id,
            student_id=refunded.student_id,
            category=RefundCategory.PERSONAL,
            reason="An injury means I cannot train for the next months.",
            quoted_amount=refunded.total_amount,
            status=RequestStatus.APPROVED,
            approved_amount=refunded.total_amount,
            decided_by_id=people["admin"].id,
            decided_at=moment - timedelta(days=1),
            created_at=moment - timedelta(days=2),
        )
        db.session.add(request)
        db.session.flush()
        payment = db.session.scalar(select(Payment).filter_by(contract_id=refunded.id))
        db.session.add(
            Refund(
                payment_id=payment.id,
                contract_id=refunded.id,
                request_id=request.id,
                amount=refunded.total_amount,
                currency=refunded.currency,
                status=RefundStatus.SUCCEEDED,
                source=RefundSource.STUDENT_REQUEST,
                stripe_reason="requested_by_customer",
                stripe_refund_id=f"re_demo_{_demo_id(refunded.id)}",
                requested_by_id=people["admin"].id,
                created_at=moment - timedelta(days=1),
                settled_at=moment - timedelta(days=1),
            )
        )
        refunded.sessions_released = refunded.session_count
        refunded.amount_returned = refunded.total_amount
    disputed = db.session.scalar(select(Contract).filter_by(title="Negotiation skills"))
    if disputed is not None and disputed.paid_at is not None:
        payment = db.session.scalar(select(Payment).filter_by(contract_id=disputed.id))
        db.session.add(
            Dispute(
                stripe_dispute_id=f"dp_demo_{_demo_id(disputed.id)}",
                payment_id=payment.id,
                contract_id=disputed.id,
                amount=disputed.total_amount,
                currency=disputed.currency,
                reason="product_not_received",
                status="needs_response",
                evidence_due_by=moment + timedelta(days=4),
                created_at=moment - timedelta(days=1),
                contract_status_before=ContractStatus.ACTIVE.value,
                payment_status_before=PaymentStatus.PAID.value,
            )
        )
    db.session.flush()


def _add_payouts(people: dict[str, User]) -> None:
    """Maya is onboarded (her account is ready): her delivered sessions' shares were
    transferred once out of their hold, the latest one is still held. Tomás never set up
    payouts: his shares are due and wait for his account.

    Shares are numbered and split as `payouts.shares.make_shares` does (by session start,
    `split` of the coach's earning), so the payout ledger adds up; a session that has a
    share already is left alone.
    """
    maya, tomas = people["maya"], people["tomas"]
    if not db.session.scalar(select(ConnectedAccount.id).filter_by(user_id=maya.id)):
        db.session.add(
            ConnectedAccount(
                user_id=maya.id,
                stripe_account_id=f"acct_demo_{_demo_key('account', maya.id)[:16]}",
                charges_enabled=True,
                payouts_enabled=True,
                details_submitted=True,
                transfers_active=True,
                requirements_due=[],
                created_at=clock.now() - timedelta(days=60),
            )
        )
    titles = [item.title for item in PROPOSALS if isinstance(item.outcome, ContractStatus)]
    contracts = db.session.scalars(
        select(Contract)
        .where(Contract.title.in_(titles), Contract.coach_id.in_([maya.id, tomas.id]),
               Contract.paid_at.is_not(None))
        .order_by(Contract.id)
    )
    for contract in contracts:
        _add_shares(contract, onboarded=contract.coach_id == maya.id)
    db.session.flush()


def _add_shares(contract: Contract, *, onboarded: bool) -> None:
    shares = db.session.scalars(select(SessionShare).filter_by(contract_id=contract.id)).all()
    shared = {share.session_id for share in shares}
    sessions = db.session.scalars(
        select(CoachingSession)
        .where(CoachingSession.contract_id == contract.id,
               CoachingSession.status.in_((SessionStatus.COMPLETED, SessionStatus.NO_SHOW)))
        .order_by(CoachingSession.starts_at, CoachingSession.id)
    )
    parts = split(contract.coach_earning, contract.session_count)
    payment_id = db.session.scalar(
        select(Payment.id).filter_by(contract_id=contract.id).order_by(Payment.id).limit(1)
    )
    number = len(shares)
    for session in sessions:
        if session.id in shared or number >= contract.session_count:
            continue
        number += 1
        marked = session.marked_at or session.ends_at
        due_at = marked + hold()
        share = SessionShare(
            session_id=session.id, contract_id=contract.id, coach_id=contract.coach_id,
            number=number, amount=parts[number - 1], currency=contract.currency,
            status=ShareStatus.HELD, due_at=due_at, next_attempt_at=due_at, created_at=marked,
        )
        if due_at <= clock.now():
            share.status = ShareStatus.DUE
            if onboarded:  # sent by the payout job as soon as its hold was over
                share.status = ShareStatus.TRANSFERRED
                share.transfer_amount = share.amount
                share.attempts = 1
                share.source_payment_id = payment_id
                share.stripe_transfer_id = f"tr_demo_{_demo_key('transfer', session.id)[:16]}"
                share.transferred_at = due_at + timedelta(minutes=1)
        db.session.add(share)


def _demo_key(*parts: object) -> str:
    return hashlib.sha256("-".join(["coachpact-demo", *map(str, parts)]).encode()).hexdigest()


def _demo_id(contract_id: int) -> str:
    # Stripe-like ids (the page shows their last 8 characters), the same on every run.
    return hashlib.sha256(f"coachpact-demo-{contract_id}".encode()).hexdigest()[:24]


def register_cli(app: Flask) -> None:
    from payouts.ledger import record_check

    @app.cli.command("demo-data")
    def demo_data() -> None:
        """Load demo users, proposals and contracts (idempotent) and print the logins."""
        users = load_demo_data()
        db.session.commit()
        _check_books()
        # The admin's dashboard shows the payout ledger's last check from the start.
        record_check()
        db.session.commit()
        click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for user in users:
            click.echo(f"  {user.role.value:<8} {user.email:<24} {user.timezone}")
        pages = ", ".join(f"/c/{slug}" for slug, _bio in PUBLIC_PAGES.values())
        click.echo(f"Coaches' public pages (no login needed): {pages}")
