"""Money invariants under random interleavings of everything that moves money.

A Hypothesis state machine drives the real services, the ones the views, jobs and commands
call (Checkout and its return page, the Stripe sandbox's card, 3-D Secure and bank-debit
payments, plans and their due sweep with both clocks moved, offline payments, the review
queue, refunds (the app's, a coach's and ones made in the Stripe Dashboard), requests and
their withdrawal, disputes, scheduling, coach payouts), on a few contracts at once, and
after every step checks that the app, Stripe (the sandbox, read through the SDK) and the
payout ledger tell the same story about each contract's money.

Each example starts from nothing: an emptied database and a sandbox of its own, with our
clock frozen on BASE and the sandbox's moved to the same instant. The sandbox holds its
events; after each step they are delivered, signed and in order, to the app's webhook.

Budget: the "money" profile (derandomised, a fixed size) runs in the normal suite, on
SQLite and on PostgreSQL. MONEY_FUZZ_EXAMPLES=N selects "money-fuzz": N examples of up to
60 steps from a random seed, which `--hypothesis-seed` fixes (`make fuzz` prints the one
it uses, so that a failure can be replayed).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from hypothesis.statistics import collector, describe_statistics
from sqlalchemy import select

from offers.models import Membership
from tests.money.conftest import Sandbox, deliver

# --- the budget ----------------------------------------------------------------------------

settings.register_profile(
    "money",
    max_examples=25,
    stateful_step_count=40,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)
settings.register_profile(
    "money-fuzz",
    parent=settings.get_profile("money"),
    max_examples=int(os.environ.get("MONEY_FUZZ_EXAMPLES") or 200),
    stateful_step_count=60,
    derandomize=False,
    print_blob=True,
)


def budget() -> settings:
    return settings.get_profile("money-fuzz" if os.environ.get("MONEY_FUZZ_EXAMPLES")
                                else "money")


# A Monday, far enough ahead that the sandbox's clock (which never runs behind real time)
# can be set to it; cards typed at Checkout expire 12/34.
BASE = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
# usd twice: only usd Checkout sessions offer bank debits.
CURRENCIES = ("usd", "usd", "aud", "chf", "jpy", "krw")
MAX_CONTRACTS = 3
CARDS = {
    "card": "4242424242424242",
    "card_declined": "4000000000000002",
    "card_3ds": "4000002500003155",
}
BANK = {"bank": "000123456789", "bank_fails": "000111111113"}
PAY_HOW = ("card", "card", "card_declined", "card_3ds_ok", "card_3ds_failed", "bank",
           "bank_fails")
PICK = st.integers(0, 5)
# How an admin's confirmation of a money action stands when it arrives: the figures it
# showed are today's, or they changed since ("stale", refused with nothing done).
CONFIRMED = st.sampled_from(("now", "now", "now", "stale"))
OPEN_DISPUTES = ("needs_response", "under_review", "warning_needs_response",
                 "warning_under_review")

try:  # the money core's count of a contract; its pages are checked against it when present
    from payments.standing import standing_of
except ImportError:
    standing_of = None
try:  # the transition tables' home, wherever this version of the code keeps them
    from database.states import TransitionError
except ImportError:
    from contracts.states import TransitionError  # type: ignore[no-redef]


@st.composite
def terms(draw) -> dict[str, Any]:
    """Proposal terms within the form's rules (contracts/forms.py, contracts/plans.py)."""
    currency = draw(st.sampled_from(CURRENCIES))
    if currency == "jpy":
        price = draw(st.integers(500, 40_000))
    elif currency == "krw":
        price = draw(st.integers(5_000, 400_000))
    else:
        price = draw(st.integers(5, 400)) * 100 + draw(st.sampled_from((0, 1, 33, 99)))
    plan = draw(st.one_of(st.none(), st.tuples(st.integers(10, 50), st.integers(2, 4))))
    return {
        "currency": currency,
        "session_count": draw(st.integers(1, 6)),
        "price_per_session": price,
        "plan_deposit_percent": plan[0] if plan else None,
        "plan_max_instalments": plan[1] if plan else None,
    }


@st.composite
def membership_terms(draw) -> dict[str, Any]:
    """A monthly membership offer within its form's rules (offers/forms.py)."""
    currency = draw(st.sampled_from(("usd", "jpy")))
    if currency == "jpy":
        price = draw(st.integers(1_000, 30_000))
    else:
        price = draw(st.integers(10, 300)) * 100 + draw(st.sampled_from((0, 1, 33, 99)))
    return {"currency": currency, "price_per_period": price,
            "sessions_per_period": draw(st.integers(1, 4))}


@dataclass
class Member:
    """A membership of the current example: its periods join `refs` as they are paid."""

    id: int
    label: str
    student_id: int
    coach_id: int
    currency: str


# --- what the app and Stripe say, read once per step -------------------------------------


@dataclass
class Ref:
    """A contract of the current example, as the steps name it."""

    id: int
    label: str
    student_id: int
    coach_id: int
    currency: str
    sessions: list[str] = field(default_factory=list)  # Checkout sessions it ever started


@dataclass
class Side:
    """One contract's money: the app's rows and Stripe's objects, as plain values."""

    ref: Ref
    status: str = ""
    payment_status: str = ""
    total: int = 0
    price: int = 0
    count: int = 0
    fee: int = 0
    earning: int = 0
    amount_paid: int = 0
    amount_returned: int | None = None  # the contract's copy, where the schema has one
    paid_at: datetime | None = None
    released: int = 0
    unlocked: int = 0
    plan_instalments: int | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    instalments: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)  # first sessions' times held
    shares: list[dict[str, Any]] = field(default_factory=list)
    open_request: int | None = None
    ledger_problems: list[str] = field(default_factory=list)
    customer_id: str | None = None
    account_id: str | None = None
    account_ready: bool = False
    # Stripe's side
    intents: list[dict[str, Any]] = field(default_factory=list)
    stripe_refunds: list[dict[str, Any]] = field(default_factory=list)
    stripe_disputes: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)

    # money that counts for the contract (not void, not held), as the app has it
    @property
    def counted(self) -> list[dict[str, Any]]:
        return [p for p in self.payments if p["counts"]]

    @property
    def paid(self) -> int:
        return sum(p["amount"] for p in self.counted)

    @property
    def counted_intents(self) -> set[str]:
        return {p["intent"] for p in self.counted if p["intent"]}

    @property
    def waived(self) -> int:
        """Shortfalls an admin wrote off when accepting a short payment."""
        return sum(p["waived"] for p in self.counted)

    @property
    def on_plan(self) -> bool:
        """Paid by a deposit and instalments (or meant to be: a deposit was paid)."""
        return self.plan is not None or self.plan_instalments is not None or any(
            "plan_instalments" in p["metadata"] for p in self.payments)

    @property
    def open_disputes(self) -> list[dict[str, Any]]:
        counted = {p["id"] for p in self.counted}
        return [d for d in self.disputes if not d["closed"] and d["payment_id"] in counted]

    @property
    def refunded(self) -> int:
        ids = {p["id"] for p in self.counted}
        return sum(r["amount"] for r in self.refunds
                   if r["payment_id"] in ids and r["status"] == "succeeded")

    @property
    def lost(self) -> int:
        """What lost disputes took back (Stripe's word) of the payments that count."""
        return sum(d["amount"] for d in self.stripe_disputes
                   if d["status"] == "lost" and d["payment_intent"] in self.counted_intents)

    @property
    def kept(self) -> int:
        return self.paid - self.refunded - self.lost

    def can_give_back(self) -> list[str]:
        """The payments that count with money that could still go back: offline ones not
        refunded in full, and Stripe charges Stripe would refund (not charged back)."""
        found = []
        intents = {i["id"]: i for i in self.intents}
        for payment in self.counted:
            if payment["refunded"] >= payment["amount"]:
                continue
            if payment["manual"]:
                found.append(f"offline payment {payment['id']}")
                continue
            disputes = [d for d in self.stripe_disputes if d["payment_intent"] == payment["intent"]]
            charged_back = any(d["status"] == "lost" or (
                d["status"] in OPEN_DISPUTES and not d["is_charge_refundable"]) for d in disputes)
            charge = (intents.get(payment["intent"]) or {}).get("latest_charge") or {}
            if not charged_back and charge.get("amount", 0) > charge.get("amount_refunded", 0):
                found.append(f"charge {charge['id']} of payment {payment['id']}")
        return found

    @property
    def scheduled(self) -> list[dict[str, Any]]:
        return [s for s in self.sessions if s["status"] == "scheduled"]

    @property
    def consumed(self) -> int:
        return sum(1 for s in self.sessions
                   if s["status"] in ("completed", "no_show") or s["late"])

    @property
    def delivered(self) -> int:
        return sum(1 for s in self.sessions if s["status"] in ("completed", "no_show"))

    @property
    def pending(self) -> bool:
        return self.status == "pending" and self.payment_status != "processing" \
            and self.paid_at is None

    def describe(self) -> str:
        return (f"{self.ref.label} (contract {self.ref.id}, {self.currency_total()}, "
                f"{self.count} sessions): status {self.status}/{self.payment_status}, "
                f"paid {self.paid}, amount_paid {self.amount_paid}, refunded {self.refunded}, "
                f"lost {self.lost}")

    def currency_total(self) -> str:
        return f"{self.total} {self.ref.currency}"


def _read_app(ref: Ref) -> Side:
    from contracts.models import CoachingSession, Contract
    from extensions import db
    from payments import plans
    from payments.models import (
        Dispute,
        Instalment,
        Payment,
        PaymentRecordStatus,
        Refund,
        RefundRequest,
        RequestStatus,
        StripeCustomer,
    )
    from payouts.ledger import contract_money
    from payouts.models import ConnectedAccount, SessionShare
    from scheduling.models import SlotHold

    paid_statuses = (PaymentRecordStatus.SUCCEEDED, PaymentRecordStatus.PARTIALLY_REFUNDED,
                     PaymentRecordStatus.REFUNDED)
    contract = db.session.get(Contract, ref.id)
    assert contract is not None
    side = Side(
        ref=ref, status=contract.status.value, payment_status=contract.payment_status.value,
        total=contract.total_amount, price=contract.price_per_session,
        count=contract.session_count, fee=contract.platform_fee,
        earning=contract.coach_earning, amount_paid=contract.amount_paid or 0,
        paid_at=contract.paid_at, released=contract.sessions_released,
        amount_returned=getattr(contract, "amount_returned", None),
        unlocked=contract.sessions_unlocked, plan_instalments=contract.plan_instalments,
    )
    for p in db.session.scalars(select(Payment).where(Payment.contract_id == ref.id)
                                .order_by(Payment.id)):
        arrived = p.status in paid_statuses
        side.payments.append({
            "id": p.id, "status": p.status.value, "amount": p.amount,
            "refunded": p.amount_refunded, "intent": p.payment_intent_id,
            "session": p.checkout_session_id, "manual": p.manual_method is not None,
            "void": p.void_reason.value if p.void_reason else None,
            "held": p.held_for_review, "instalment_id": p.instalment_id,
            "failure_reason": p.failure_reason, "arrived": arrived,
            "counts": arrived and p.void_reason is None,
            "waived": getattr(p, "amount_waived", 0), "metadata": dict(p.stripe_metadata or {}),
        })
    side.refunds = [
        {"id": r.id, "payment_id": r.payment_id, "amount": r.amount, "status": r.status.value,
         "stripe_id": r.stripe_refund_id, "source": r.source.value}
        for r in db.session.scalars(select(Refund).where(Refund.contract_id == ref.id)
                                    .order_by(Refund.id))
    ]
    side.disputes = [
        {"stripe_id": d.stripe_dispute_id, "payment_id": d.payment_id, "status": d.status,
         "amount": d.amount, "closed": d.closed_at is not None}
        for d in db.session.scalars(select(Dispute).where(Dispute.contract_id == ref.id))
    ]
    plan = plans.plan_of(ref.id)
    if plan is not None:
        side.plan = {"id": plan.id, "status": plan.status.value, "customer": plan.customer_id}
        side.instalments = [
            {"id": i.id, "number": i.number, "amount": i.amount, "status": i.status.value,
             "needs_auth": i.needs_authentication, "next_attempt_at": i.next_attempt_at}
            for i in db.session.scalars(select(Instalment).where(Instalment.plan_id == plan.id)
                                        .order_by(Instalment.number))
        ]
    side.sessions = [
        {"id": s.id, "status": s.status.value, "starts_at": s.starts_at,
         "late": s.late_cancellation}
        for s in db.session.scalars(select(CoachingSession)
                                    .where(CoachingSession.contract_id == ref.id)
                                    .order_by(CoachingSession.starts_at, CoachingSession.id))
    ]
    side.holds = [
        {"id": h.id, "payment_id": h.payment_id, "status": h.status.value,
         "starts_at": h.starts_at, "expires_at": h.expires_at, "session_id": h.session_id,
         "because": h.ended_because}
        for h in db.session.scalars(select(SlotHold).where(SlotHold.contract_id == ref.id)
                                    .order_by(SlotHold.id))
    ]
    side.shares = [
        {"id": s.id, "number": s.number, "status": s.status.value, "amount": s.amount,
         "transfer_amount": s.transfer_amount, "reversed": s.reversed_amount,
         "lost": s.lost_amount, "transfer_id": s.stripe_transfer_id,
         "waiting": s.reversal_waiting, "waiting_next": s.reversal_next_attempt_at,
         "waiting_error": s.reversal_error}
        for s in db.session.scalars(select(SessionShare)
                                    .where(SessionShare.contract_id == ref.id)
                                    .order_by(SessionShare.number))
    ]
    side.open_request = db.session.scalar(
        select(RefundRequest.id).where(RefundRequest.contract_id == ref.id,
                                       RefundRequest.status == RequestStatus.OPEN))
    if contract.paid_at is not None:
        side.ledger_problems = contract_money(contract).problems
    side.customer_id = db.session.scalar(
        select(StripeCustomer.customer_id).where(StripeCustomer.user_id == ref.student_id))
    account = db.session.scalar(select(ConnectedAccount)
                                .where(ConnectedAccount.user_id == ref.coach_id))
    if account is not None:
        side.account_id, side.account_ready = account.stripe_account_id, account.ready
    return side


@dataclass
class View:
    sides: dict[str, Side]
    stuck_events: list[str]

    def of(self, ref: Ref) -> Side:
        return self.sides[ref.label]


# --- the machine ------------------------------------------------------------------------


@dataclass
class Env:
    app: Any
    client: Any
    fresh_sandbox: Any


class MoneyMachine(RuleBasedStateMachine):
    env: Env  # set by the test

    def __init__(self) -> None:
        super().__init__()
        import clock
        from extensions import db

        db.session.rollback()
        # A clean slate: the app's tables emptied (children first) and a new sandbox.
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        clock.reset()
        self.sandbox: Sandbox = self.env.fresh_sandbox()
        self.cursor: str | None = None  # the last sandbox event handled
        self.suppressed: set[str] = set()  # sessions whose genuine completion is withheld
        self.completed: set[str] = set()  # sessions paid (or a debit on its way)
        self.debits: dict[str, Ref] = {}  # bank debits on their way, by Checkout session
        self.refs: list[Ref] = []
        self.members: list[Member] = []
        self.users = 0
        self._view: View | None = None
        self._stripe_seen: tuple[str | None, tuple[list[dict[str, Any]], ...]] | None = None
        self._checked: dict[str, str] = {}  # each contract's state when last found sound
        self.move_to(BASE)
        self.admin_id = self._user("admin")

    # -- plumbing ----------------------------------------------------------------------

    def log(self, ref: Ref | None, text: str) -> None:
        note(f"{ref.label + ': ' if ref else ''}{text}")

    def _user(self, role: str) -> int:
        from accounts.models import Role, User
        from extensions import db

        self.users += 1
        user = User(email=f"{role}{self.users}@example.com", name=f"{role.title()} {self.users}",
                    password_hash="!", role=Role(role), timezone="UTC")
        db.session.add(user)
        db.session.commit()
        return user.id

    def user(self, user_id: int) -> Any:
        from accounts.models import User
        from extensions import db

        return db.session.get(User, user_id)

    @property
    def admin(self) -> Any:
        return self.user(self.admin_id)

    def move_to(self, when: datetime) -> None:
        """Both clocks, ours and the sandbox's (Stripe's), to the same instant."""
        import clock

        clock.freeze(when)
        offset = int((when - datetime.now(UTC)).total_seconds())
        response = self.sandbox.tool("clock", offset_seconds=offset)
        assert response.status_code == 200, response.text

    def now(self) -> datetime:
        import clock

        return clock.now()

    def done(self, first: tuple[str, ...] = ()) -> None:
        """After a step: nothing of ours open, Stripe's events delivered (those of the
        types in `first` before the others), the periodic jobs run, the view stale."""
        from extensions import db

        db.session.rollback()
        self.pump(first)
        self.periodic_jobs()
        self.pump()
        self._adopt_periods()
        self._view = None

    def _adopt_periods(self) -> None:
        """Each membership period paid meanwhile is a contract: it joins the refs, so that
        every rule and check that moves or reads a contract's money takes it too."""
        from contracts.models import Contract
        from extensions import db

        known = {ref.id for ref in self.refs}
        for member in self.members:
            for contract in db.session.scalars(select(Contract).where(
                    Contract.membership_id == member.id).order_by(Contract.period_start)):
                if contract.id not in known:
                    ref = Ref(contract.id, f"{member.label}.{contract.id}", member.student_id,
                              member.coach_id, member.currency)
                    self.refs.append(ref)
                    self.log(ref, f"{member.label}'s period {contract.period_start:%Y-%m-%d} – "
                                  f"{contract.period_end:%Y-%m-%d} is contract {contract.id}: "
                                  f"{contract.session_count} sessions, {contract.total_amount}")
        db.session.rollback()

    def periodic_jobs(self) -> None:
        """What the consumer's periodic jobs do at this moment: charge the instalments
        due (`flask payments charge-due`), close the membership periods that are over, make
        the shares of delivered sessions, take back what refunds take from transfers and
        send the transfers due."""
        import jobs
        from extensions import db
        from offers import membership_periods
        from payments import plans
        from payouts import shares, transfers

        with jobs.job_context():
            due = plans.due_instalment_ids()
            charged = [plans.charge_instalment(instalment_id) for instalment_id in due]
        with jobs.job_context():
            # The hourly job: membership periods over, with nothing left scheduled, close.
            membership_periods.close_ended_periods()
            db.session.commit()
        with jobs.job_context():
            shares.make_and_release()
            transfers.settle_refunds()
            sent = [transfers.transfer_share(share_id) for share_id in transfers.due_share_ids()]
        for outcome in charged:
            event(f"instalment charge: {outcome}")
        if charged or sent:
            self.log(None, f"the periodic jobs charge {charged or 'nothing'}, transfer "
                           f"{sent or 'nothing'}")
        # Stripe is always reachable here: "not reached" means the app could not ask.
        assert "unreached" not in charged, (
            f"an instalment due could not be charged (Stripe 'not reached' while it is up): "
            f"{charged}")

    def pump(self, first: tuple[str, ...] = ()) -> None:
        """Deliver every new sandbox event to the webhook, signed, oldest first (or those of
        the types in `first` before the others, as Stripe does not promise an order); then
        retry the ones the app could not match yet (an admin's "retry now" on the inbox)."""
        from extensions import db
        from payments.inbox import processing as events
        from payments.models import EventStatus, WebhookEvent

        # Every type goes to the endpoint, as to one subscribed to all: the app records
        # those it does not handle as ignored.
        while True:
            batch = self.sandbox.events_after(self.cursor)
            # Connected accounts' events (account.updated, payouts) are listed apart and go
            # to the Connect endpoint.
            connected = self.sandbox.connected_events()
            if not batch and not connected:
                break
            if batch:
                self.cursor = batch[-1]["id"]
            for item in sorted(batch, key=lambda item: item["type"] not in first):
                obj = item["data"]["object"]
                if item["type"].startswith("checkout.session.") and obj["id"] in self.suppressed:
                    continue
                status = deliver(self.env.client, item)
                assert status == 200, f"the webhook answered {status} to {item['type']}"
            for item in connected:
                status = deliver(self.env.client, item)
                assert status == 200, f"the Connect webhook answered {status} to {item['type']}"
        for _ in range(2):
            db.session.rollback()
            waiting = list(db.session.scalars(select(WebhookEvent.id).where(
                WebhookEvent.status == EventStatus.RECEIVED)))
            if not waiting:
                break
            for event_id in waiting:
                events.retry_now(event_id)
                db.session.commit()
        db.session.rollback()

    def view(self) -> View:
        if self._view is None:
            self._view = self._read()
        return self._view

    def _read(self) -> View:
        from extensions import db
        from payments.models import EventStatus, WebhookEvent

        db.session.rollback()
        sides = {ref.label: _read_app(ref) for ref in self.refs}
        intents, stripe_refunds, disputes, transfers = self._stripe()
        for side in sides.values():
            key = str(side.ref.id)
            # A membership period's intent is its invoice's: named by the payment, not by
            # metadata of ours.
            paid_by = {p["intent"] for p in side.payments if p["intent"]}
            side.intents = [i for i in intents if (i.get("metadata") or {}).get("contract_id")
                            == key or i["id"] in paid_by]
            mine = {i["id"] for i in side.intents}
            side.stripe_refunds = [r for r in stripe_refunds if r.get("payment_intent") in mine]
            side.stripe_disputes = [d for d in disputes if d.get("payment_intent") in mine]
            side.transfers = [t for t in transfers
                              if t.get("transfer_group") == f"contract-{side.ref.id}"]
        stuck = [
            f"{e.type} ({e.stripe_event_id}): {e.status.value}, {e.last_error}"
            for e in db.session.scalars(select(WebhookEvent).where(
                WebhookEvent.status != EventStatus.PROCESSED))
        ]
        db.session.rollback()
        return View(sides=sides, stuck_events=stuck)

    def _stripe(self) -> tuple[list[dict[str, Any]], ...]:
        """Stripe's payment intents (with their charge), refunds, disputes and transfers,
        through the SDK. Read again only after new events: each change of them at Stripe
        (a charge, a refund, a dispute, a transfer or reversal) comes with one."""
        if self._stripe_seen is None or self._stripe_seen[0] != self.cursor:
            sdk = self.sandbox.sdk.v1
            lists = (self.sandbox.listed(sdk.payment_intents, expand=["data.latest_charge"]),
                     self.sandbox.listed(sdk.refunds), self.sandbox.listed(sdk.disputes),
                     self.sandbox.listed(sdk.transfers))
            self._stripe_seen = (self.cursor, lists)
        return self._stripe_seen[1]

    def pick(self, index: int, refs: list[Ref]) -> Ref | None:
        return refs[index % len(refs)] if refs else None

    def refs_where(self, test) -> list[Ref]:
        view = self.view()
        return [ref for ref in self.refs if test(view.of(ref))]

    def refused(self, ref: Ref | None, what: str, exc: BaseException) -> None:
        from extensions import db

        db.session.rollback()
        event(f"refused: {re.sub(r'[0-9]+', 'N', what)}")
        self.log(ref, f"{what} refused: {type(exc).__name__}: {exc}")

    # -- contracts ---------------------------------------------------------------------

    def _new_contract(self, values: dict[str, Any]) -> None:
        from contracts.money import MoneyError
        from contracts.services import ProposalError, accept_proposal, send_proposal
        from extensions import db

        label = f"c{len(self.refs) + 1}"
        coach_id, student_id = self._user("coach"), self._user("student")
        try:
            proposal = send_proposal(
                self.user(coach_id), student_email=self.user(student_id).email,
                title=f"Coaching {label}", description="Sessions of interview practice.",
                minutes_per_session=60, **values)
            db.session.commit()
            contract = accept_proposal(proposal.id, self.user(student_id))
            db.session.commit()
        except (ProposalError, MoneyError) as exc:
            self.refused(None, f"a proposal with {values}", exc)
            return
        ref = Ref(contract.id, label, student_id, coach_id, values["currency"])
        self.refs.append(ref)
        self.log(ref, f"contract {contract.id}: {values['session_count']} × "
                      f"{values['price_per_session']} {values['currency']}, plan "
                      f"{values['plan_deposit_percent']}%/{values['plan_max_instalments']}")

    @initialize(values=terms())
    def first_contract(self, values: dict[str, Any]) -> None:
        self._new_contract(values)
        self.done()

    @precondition(lambda self: len(self.refs) < MAX_CONTRACTS)
    @rule(values=terms())
    def another_contract(self, values: dict[str, Any]) -> None:
        self._new_contract(values)
        self.done()

    def _plan_choice(self, ref: Ref, plan: int | None) -> int | None:
        from contracts.models import Contract
        from extensions import db
        from payments import plans

        if plan is None:
            return None
        options = plans.options(db.session.get(Contract, ref.id))
        return options[plan % len(options)].instalments if options else None

    # -- paying through Checkout ---------------------------------------------------------

    def _checkout(self, ref: Ref, instalments: int | None,
                  first_session: datetime | None = None) -> str | None:
        from extensions import db
        from payments import checkout
        from payments.stripe_api import PaymentProviderError

        try:
            url = checkout.start_checkout(ref.id, self.user(ref.student_id),
                                          instalments=instalments, first_session=first_session)
            db.session.commit()
        except (checkout.NotPayable, PaymentProviderError) as exc:
            self.refused(ref, "the pay button", exc)
            return None
        session_id = url.rstrip("/").rsplit("/", 1)[-1]
        if session_id not in ref.sessions:
            ref.sessions.append(session_id)
        return session_id

    def _pay_page(self, ref: Ref, session_id: str, how: str) -> str:
        """Pay a Checkout session at the sandbox as the hosted page does; its outcome."""
        if how.startswith("bank") and ref.currency != "usd":
            # Checkout offers bank debits in usd only: the student uses a card instead.
            how = {"bank": "card", "bank_fails": "card_declined"}[how]
        if how.startswith("bank"):
            response = self.sandbox.pay(session_id, bank_account=BANK[how], name="Student")
        else:
            card = CARDS["card_3ds" if how.startswith("card_3ds") else how]
            response = self.sandbox.pay(session_id, card_number=card)
        body = response.json()
        if response.status_code == 400:
            return f"refused by the page: {body['error']['message']}"
        outcome = body["outcome"]
        if outcome == "requires_action":
            answer = "succeeded" if how == "card_3ds_ok" else "failed"
            response = self.sandbox.tool(f"checkout/sessions/{session_id}/authenticate",
                                         outcome=answer)
            outcome = response.json().get("outcome") or "failed"
            how = f"{how} (3-D Secure {answer})"
        if outcome == "processing":
            self.debits[session_id] = ref
        if outcome in ("succeeded", "processing"):
            self.completed.add(session_id)
        return f"{how}: {outcome}"

    def _return_page(self, ref: Ref, session_id: str) -> None:
        from extensions import db
        from payments import checkout
        from payments.stripe_api import PaymentProviderError

        if session_id in self.suppressed:
            # Its mismatch exists only in the event delivered: Stripe's own session would
            # contradict it. A real mismatch would hold on this page too.
            return
        try:
            checkout.confirm_return(ref.id, self.user(ref.student_id), session_id)
            db.session.commit()
        except PaymentProviderError as exc:
            self.refused(ref, "the return page", exc)

    @precondition(lambda self: self.refs_where(lambda s: s.pending))
    @rule(pick=PICK, how=st.sampled_from(PAY_HOW), plan=st.none() | st.integers(0, 3),
          returns=st.booleans())
    def pay(self, pick: int, how: str, plan: int | None, returns: bool) -> None:
        """The student pays at Checkout, in full or a plan's deposit; maybe comes back to the
        success page (else only the webhook tells the app)."""
        ref = self.pick(pick, self.refs_where(lambda s: s.pending))
        assert ref is not None
        instalments = self._plan_choice(ref, plan)
        session_id = self._checkout(ref, instalments)
        if session_id is not None:
            outcome = self._pay_page(ref, session_id, how)
            event(f"pay with {outcome}"[:48])
            what = f"a {instalments}-instalment plan's deposit" if instalments else "in full"
            back = ", returns to the success page" if returns else ""
            self.log(ref, f"pays {what} at {session_id} with {outcome}{back}")
            if returns:
                self._return_page(ref, session_id)
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.pending and not s.scheduled))
    @rule(pick=PICK, how=st.sampled_from(PAY_HOW), plan=st.none() | st.integers(0, 3),
          slot=st.integers(0, 40), returns=st.booleans())
    def pay_with_a_first_session(self, pick: int, how: str, plan: int | None, slot: int,
                                 returns: bool) -> None:
        """The student picks the first session's time on the pay page (held while the
        Checkout session can be paid, booked when it is), then pays as in `pay`."""
        from scheduling import availability

        ref = self.pick(pick, self.refs_where(lambda s: s.pending and not s.scheduled))
        assert ref is not None
        slots = availability.free_slots(self._contract(ref), from_day=self.now().date(), days=7)
        if not slots:
            self.log(ref, "no free time to hold this week")
            return
        starts_at = slots[slot % len(slots)].starts_at
        instalments = self._plan_choice(ref, plan)
        session_id = self._checkout(ref, instalments, first_session=starts_at)
        if session_id is not None:
            outcome = self._pay_page(ref, session_id, how)
            event(f"pay holding a time with {outcome}"[:56])
            back = ", returns to the success page" if returns else ""
            self.log(ref, f"holds {starts_at:%a %d %b %H:%M}, pays at {session_id} with "
                          f"{outcome}{back}")
            if returns:
                self._return_page(ref, session_id)
        self.done()

    def _stale_sessions(self) -> list[tuple[Ref, str]]:
        found = []
        for ref in self.refs:
            for session_id in ref.sessions:
                if session_id not in self.suppressed and session_id not in self.completed:
                    found.append((ref, session_id))
        return found

    @precondition(lambda self: self._stale_sessions())
    @rule(pick=PICK, how=st.sampled_from(("card", "card_declined", "bank")))
    def pay_an_older_session(self, pick: int, how: str) -> None:
        """A Checkout page left open in another tab is paid later (a second payment, or one
        after the contract closed)."""
        candidates = self._stale_sessions()
        ref, session_id = candidates[pick % len(candidates)]
        outcome = self._pay_page(ref, session_id, how)
        event(f"pay an older session with {outcome}"[:60])
        self.log(ref, f"pays the older Checkout session {session_id} with {outcome}")
        self.done()

    @precondition(lambda self: self.debits)
    @rule(pick=PICK)
    def settle_debit(self, pick: int) -> None:
        """A bank debit settles as its test account says (000123456789 succeeds)."""
        session_id = sorted(self.debits)[pick % len(self.debits)]
        ref = self.debits.pop(session_id)
        response = self.sandbox.tool(f"checkout/sessions/{session_id}/settle")
        self.log(ref, f"the bank debit of {session_id} settles: "
                      f"{response.json().get('payment_status', response.text[:120])}")
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.pending))
    @rule(pick=PICK, plan=st.none() | st.integers(0, 3))
    def payment_held_for_review(self, pick: int, plan: int | None) -> None:
        """Stripe reports a completed Checkout session whose amount does not match the
        contract: the signed event says another amount than the attempt asked for."""
        ref = self.pick(pick, self.refs_where(lambda s: s.pending))
        assert ref is not None
        instalments = self._plan_choice(ref, plan)
        session_id = self._checkout(ref, instalments)
        if session_id is not None:
            outcome = self._pay_page(ref, session_id, "card")
            genuine = next((e for e in reversed(self.sandbox.events_after(self.cursor))
                            if e["type"] == "checkout.session.completed"
                            and e["data"]["object"]["id"] == session_id), None)
            if genuine is None:
                self.log(ref, f"a payment to hold could not be made: {outcome}")
            else:
                self.suppressed.add(session_id)
                tampered = {**genuine, "id": genuine["id"] + "_mismatch"}
                tampered["data"] = {"object": {**genuine["data"]["object"]}}
                amount = genuine["data"]["object"]["amount_total"]
                tampered["data"]["object"]["amount_total"] = amount - 1
                from extensions import db

                db.session.rollback()
                assert deliver(self.env.client, tampered) == 200
                self.log(ref, f"pays {'a deposit' if instalments else 'in full'} at {session_id};"
                              f" the event says {amount - 1} instead of {amount}")
        self.done()

    def _held(self) -> list[tuple[Ref, int]]:
        view = self.view()
        return [(ref, p["id"]) for ref in self.refs for p in view.of(ref).payments if p["held"]]

    @precondition(lambda self: self.refs_where(lambda s: s.pending))
    @rule(pick=PICK, part=st.sampled_from((2, 4)))
    def session_made_elsewhere(self, pick: int, part: int) -> None:
        """A Checkout session for the contract that the app never recorded (made in the
        Stripe Dashboard, say), for a part of the total, is paid: Stripe's own events report
        an amount that does not match."""
        ref = self.pick(pick, self.refs_where(lambda s: s.pending))
        assert ref is not None
        side = self.view().of(ref)
        from contracts.money import MIN_CHARGE_AMOUNT

        amount = max(side.total // part, MIN_CHARGE_AMOUNT[ref.currency])
        if amount >= side.total:
            self.log(ref, "no smaller amount Stripe would charge")
            return
        metadata = {"contract_id": str(ref.id)}
        session = self.sandbox.sdk.v1.checkout.sessions.create({
            "mode": "payment", "metadata": metadata,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": ref.currency, "unit_amount": amount,
                "product_data": {"name": "Coaching, part payment"}}}],
            "payment_intent_data": {"metadata": metadata,
                                    "transfer_group": f"contract-{ref.id}"},
            "success_url": "https://example.com/paid",
        })
        outcome = self._pay_page(ref, session.id, "card")
        self.log(ref, f"a session made outside the app, for {amount} of {side.total}, is paid "
                      f"with {outcome}")
        self.done()

    @precondition(lambda self: self._held())
    @rule(pick=PICK, decision=st.sampled_from(("accept", "write_off", "refund")))
    def review(self, pick: int, decision: str) -> None:
        """An admin decides a held payment: accept it (writing off what it lacks, where the
        review queue offers that), or refund it in full."""
        import inspect

        from extensions import db
        from payments.checkout import review

        candidates = self._held()
        ref, payment_id = candidates[pick % len(candidates)]
        note = "checked against the bank statement"
        try:
            if decision == "refund":
                review.refund_held_payment(payment_id, self.admin, note)
            elif decision == "write_off" and "waive_shortfall" in inspect.signature(
                    review.accept_held_payment).parameters:
                review.accept_held_payment(payment_id, self.admin, note, waive_shortfall=True)
            else:
                review.accept_held_payment(payment_id, self.admin, note)
            db.session.commit()
            self.log(ref, f"an admin decides held payment {payment_id}: {decision}")
        except review.ReviewRefused as exc:
            self.refused(ref, f"deciding held payment {payment_id} ({decision})", exc)
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.pending))
    @rule(pick=PICK, plan=st.none() | st.integers(0, 3))
    def manual_payment(self, pick: int, plan: int | None) -> None:
        """An admin records an offline payment of the total, or of a plan's deposit."""
        from extensions import db
        from payments.manual import ManualPaymentRefused, record_manual_payment
        from payments.models import ManualMethod

        ref = self.pick(pick, self.refs_where(lambda s: s.pending))
        assert ref is not None
        instalments = self._plan_choice(ref, plan)
        try:
            record_manual_payment(ref.id, self.admin, method=ManualMethod.BANK_TRANSFER,
                                  reference=f"TR-{ref.label}", received_on=self.now().date(),
                                  note="", instalments=instalments)
            db.session.commit()
            self.log(ref, "an admin records an offline payment of "
                          + (f"a {instalments}-instalment plan's deposit" if instalments
                             else "the total"))
        except ManualPaymentRefused as exc:
            self.refused(ref, "an offline payment", exc)
        self.done()

    # -- plans ------------------------------------------------------------------------

    @rule(days=st.sampled_from((1, 3, 8, 16, 31)))
    def time_passes(self, days: int) -> None:
        """Days go by on both clocks; the periodic jobs charge what fell due."""
        when = (self.now() + timedelta(days=days)).replace(hour=10, minute=0)
        self.move_to(when)
        self.log(None, f"{days} day(s) pass, to {when:%Y-%m-%d %H:%M}")
        self.done()

    def _next_due(self) -> list[tuple[Ref, datetime]]:
        view = self.view()
        found = []
        for ref in self.refs:
            side = view.of(ref)
            if side.plan is None or side.plan["status"] != "active":
                continue
            due = [i["next_attempt_at"] for i in side.instalments
                   if i["status"] == "scheduled" and i["number"] > 0 and not i["needs_auth"]]
            if due:
                found.append((ref, min(due)))
        return found

    @precondition(lambda self: self._next_due())
    @rule(pick=PICK)
    def until_next_instalment(self, pick: int) -> None:
        """Both clocks move to a running plan's next charge; the periodic jobs run."""
        candidates = self._next_due()
        ref, when = candidates[pick % len(candidates)]
        if when > self.now():
            self.move_to(when)
        self.log(ref, f"time moves to its next instalment, {self.now():%Y-%m-%d %H:%M}")
        self.done()

    def _with_plan(self, *statuses: str) -> list[Ref]:
        return self.refs_where(lambda s: s.plan is not None and s.plan["status"] in statuses)

    @precondition(lambda self: self._with_plan("active", "paused"))
    @rule(pick=PICK, outcome=st.sampled_from(("decline", "authentication_required", "succeed")))
    def saved_card_behaves(self, pick: int, outcome: str) -> None:
        """The student's saved card declines, asks for authentication, or works again."""
        ref = self.pick(pick, self._with_plan("active", "paused"))
        assert ref is not None
        customer = self.view().of(ref).customer_id
        if customer is None:
            self.log(ref, "no Stripe customer: nothing to set")
            return
        response = self.sandbox.tool(f"customers/{customer}/next", outcome=outcome)
        unset = "" if response.status_code == 200 else f" (not set: {response.text[:80]})"
        self.log(ref, f"the saved card will {outcome} from now on{unset}")
        self._view = None

    def _instalments(self, test) -> list[tuple[Ref, dict[str, Any]]]:
        view = self.view()
        return [(ref, i) for ref in self.refs for i in view.of(ref).instalments
                if i["number"] > 0 and test(i)]

    @precondition(lambda self: self._instalments(
        lambda i: i["status"] == "failed" or (i["status"] == "scheduled" and i["needs_auth"])))
    @rule(pick=PICK, how=st.sampled_from(("card", "card_declined", "bank")), returns=st.booleans())
    def pay_instalment_by_hand(self, pick: int, how: str, returns: bool) -> None:
        """The student pays an instalment the bank wanted confirmed (or that failed) through
        Checkout."""
        from extensions import db
        from payments import checkout
        from payments.stripe_api import PaymentProviderError

        candidates = self._instalments(
            lambda i: i["status"] == "failed" or (i["status"] == "scheduled" and i["needs_auth"]))
        ref, instalment = candidates[pick % len(candidates)]
        try:
            url = checkout.start_instalment_checkout(ref.id, instalment["id"],
                                                     self.user(ref.student_id))
            db.session.commit()
        except (checkout.NotPayable, PaymentProviderError) as exc:
            self.refused(ref, f"paying instalment {instalment['number']} by hand", exc)
            self.done()
            return
        session_id = url.rstrip("/").rsplit("/", 1)[-1]
        ref.sessions.append(session_id)
        outcome = self._pay_page(ref, session_id, how)
        self.log(ref, f"pays instalment {instalment['number']} by hand with {outcome}")
        if returns:
            self._return_page(ref, session_id)
        self.done()

    @precondition(lambda self: self._instalments(lambda i: i["status"] in ("scheduled", "failed")))
    @rule(pick=PICK)
    def manual_instalment(self, pick: int) -> None:
        """An admin records an instalment paid offline."""
        from extensions import db
        from payments import plans

        candidates = self._instalments(lambda i: i["status"] in ("scheduled", "failed"))
        ref, instalment = candidates[pick % len(candidates)]
        plan_status = self.view().of(ref).plan["status"]
        try:
            plans.record_manual_instalment(instalment["id"], self.admin,
                                           reference=f"TR-{instalment['id']}", note="")
            db.session.commit()
            self.log(ref, f"an admin records instalment {instalment['number']} "
                          f"({instalment['amount']}) paid offline")
        except plans.PlanRefused as exc:
            self.refused(ref, "recording an instalment offline", exc)
        except TransitionError as exc:
            self.refused(ref, "recording an instalment offline", exc)
            # The money arrived: an admin must be able to say so (README: "record an
            # instalment paid offline"), whether the plan runs or is paused.
            raise AssertionError(
                f"{ref.label}: instalment {instalment['number']} ({instalment['status']}) of a "
                f"{plan_status} plan could not be recorded as paid offline: {exc}") from exc
        self.done()

    @precondition(lambda self: self._with_plan("active", "paused"))
    @rule(pick=PICK, action=st.sampled_from(("pause", "resume")))
    def pause_or_resume(self, pick: int, action: str) -> None:
        from extensions import db
        from payments import plans

        ref = self.pick(pick, self._with_plan("active", "paused"))
        assert ref is not None
        plan_id = self.view().of(ref).plan["id"]
        try:
            getattr(plans, action)(plan_id, self.admin)
            db.session.commit()
            self.log(ref, f"an admin {action}s the plan")
        except (plans.PlanRefused, TransitionError) as exc:
            self.refused(ref, f"{action} the plan", exc)
        self.done()

    @precondition(lambda self: self._instalments(lambda i: i["status"] in ("scheduled", "failed")))
    @rule(pick=PICK, days=st.integers(0, 20))
    def move_instalment(self, pick: int, days: int) -> None:
        from extensions import db
        from payments import plans

        candidates = self._instalments(lambda i: i["status"] in ("scheduled", "failed"))
        ref, instalment = candidates[pick % len(candidates)]
        day = self.now().date() + timedelta(days=days)
        try:
            plans.move_instalment(instalment["id"], self.admin, day)
            db.session.commit()
            self.log(ref, f"an admin moves instalment {instalment['number']} to {day}")
        except (plans.PlanRefused, TransitionError) as exc:
            self.refused(ref, "moving an instalment", exc)
        self.done()

    @precondition(lambda self: self._with_plan("active", "paused"))
    @rule(pick=PICK)
    def cancel_plan(self, pick: int) -> None:
        """An admin cancels the plan: the contract is cancelled with its policy's refund."""
        from extensions import db
        from payments import plans, refunds

        ref = self.pick(pick, self._with_plan("active", "paused"))
        assert ref is not None
        side = self.view().of(ref)
        try:
            refund = plans.cancel_plan(side.plan["id"], self.admin, reason="the student moved")
            refund_id = refund.id if refund else None
            db.session.commit()
        except (plans.PlanRefused, TransitionError, refunds.RefundRefused) as exc:
            self.refused(ref, "cancelling the plan", exc)
            refundable = side.can_give_back()
            if side.status in ("active", "past_due") and refundable:
                # README: cancelling a plan "cancels the contract with the refund its policy
                # gives for what was paid"; refused only when nothing could go back.
                raise AssertionError(
                    f"{ref.label}: an admin could not cancel the {side.plan['status']} plan of "
                    f"an {side.status} contract although {refundable} could give money back: "
                    f"{exc}") from exc
            self.done()
            return
        self._sent(ref, refund_id, "cancels the plan")
        self.done()

    # -- money back --------------------------------------------------------------------

    def _sent(self, ref: Ref, refund_id: int | None, what: str) -> None:
        """After a refund is decided, the console asks Stripe at once (`send_now`)."""
        from payments import refunds

        if refund_id is None:
            self.log(ref, f"an admin {what}; no refund")
            return
        sent = refunds.send_now(refund_id)
        self.log(ref, f"an admin {what}: refund {refund_id} of {sent.amount}: "
                      f"{sent.status.value}")

    def _paid(self) -> list[Ref]:
        return self.refs_where(lambda s: s.paid_at is not None)

    @precondition(lambda self: self._paid())
    @rule(pick=PICK)
    def request_refund(self, pick: int) -> None:
        from sqlalchemy.exc import IntegrityError

        from extensions import db
        from payments import refunds
        from payments.models import RefundCategory

        ref = self.pick(pick, self._paid())
        assert ref is not None
        try:
            made = refunds.request_refund(ref.id, self.user(ref.student_id),
                                          category=RefundCategory.SCHEDULE,
                                          reason="The sessions no longer fit my week.")
            db.session.commit()
            self.log(ref, f"the student asks for a refund; quoted {made.quoted_amount}")
        except (refunds.RefundRefused, IntegrityError) as exc:
            self.refused(ref, "a refund request", exc)
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.open_request is not None))
    @rule(pick=PICK, decision=st.sampled_from(("quote", "quote", "other", "reject")),
          share=st.sampled_from((1, 2, 4)), confirmed=CONFIRMED)
    def decide_request(self, pick: int, decision: str, share: int, confirmed: str) -> None:
        """An admin approves a request at the quote, or at another amount with a reason
        (a share of what is refundable), or rejects it. An approval is confirmed at the
        quote the confirmation page showed: today's, or one that changed since ("stale"),
        which is refused."""
        from extensions import db
        from payments import refunds

        ref = self.pick(pick, self.refs_where(lambda s: s.open_request is not None))
        assert ref is not None
        request_id = self.view().of(ref).open_request
        try:
            if decision == "reject":
                refunds.reject_request(request_id, self.admin, note="Outside the policy.")
                db.session.commit()
                self.log(ref, "an admin rejects the refund request")
            else:
                contract = self._contract(ref)
                amount = None
                if decision == "other":
                    amount = max(refunds.refundable(contract).left // share, 1)
                quoted = self._confirmed_quote(contract, confirmed, request_id)
                refund = refunds.approve_request(request_id, self.admin, amount=amount,
                                                 override_reason="goodwill" if amount else "",
                                                 quoted=quoted)
                assert confirmed != "stale", "an approval confirmed at a stale quote went through"
                refund_id = refund.id
                db.session.commit()
                self._sent(ref, refund_id, f"approves the request ({decision})")
        except refunds.RefundRefused as exc:
            self.refused(ref, f"deciding the refund request ({decision}, {confirmed})", exc)
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.open_request is not None))
    @rule(pick=PICK)
    def student_withdraws_request(self, pick: int) -> None:
        """The student takes their request back; no admin can decide it afterwards."""
        from extensions import db
        from payments import refunds
        from payments.models import RefundRequest

        ref = self.pick(pick, self.refs_where(lambda s: s.open_request is not None))
        assert ref is not None
        request_id = self.view().of(ref).open_request
        offered = db.session.get(RefundRequest, request_id).offered_by_coach
        try:
            refunds.withdraw_request(request_id, self.user(ref.student_id))
            db.session.commit()
        except refunds.RefundRefused as exc:
            # Only a coach's offer is not the student's to withdraw.
            assert offered, f"{ref.label}: the student could not withdraw their request: {exc}"
            self.refused(ref, "withdrawing the coach's offer", exc)
            self.done()
            return
        assert not offered, f"{ref.label}: the student withdrew the coach's offer"
        self.log(ref, f"the student withdraws refund request {request_id}")
        for decide in (lambda: refunds.approve_request(request_id, self.admin),
                       lambda: refunds.reject_request(request_id, self.admin, note="Too late.")):
            try:
                decide()
            except refunds.RefundRefused as exc:
                assert "withdrew" in str(exc), exc
            else:
                raise AssertionError(f"{ref.label}: a withdrawn request was decided")
            finally:
                db.session.rollback()
        self.done()

    @precondition(lambda self: self._paid())
    @rule(pick=PICK, share=st.sampled_from(("terms", "half", "above", "everything", "too_much",
                                            "zero")))
    def coach_offers_refund(self, pick: int, share: str) -> None:
        """The coach gives money back: within the refund terms it is refunded at once, above
        them it waits for an admin as an offer; a bad amount changes nothing."""
        from sqlalchemy import func
        from sqlalchemy.exc import IntegrityError

        from extensions import db
        from payments import refunds
        from payments.models import Refund, RefundRequest

        ref = self.pick(pick, self._paid())
        assert ref is not None
        contract = self._contract(ref)
        money = refunds.refundable(contract)
        terms, left = refunds.quote_now(contract, money).amount, money.refundable
        blocked = refunds.refusal(contract, money)
        waiting = refunds.open_request_of(contract) is not None
        amount = {"terms": terms, "half": terms // 2, "above": terms + max((left - terms) // 2, 1),
                  "everything": left, "too_much": left + 1, "zero": 0}[share]

        def rows() -> tuple[int, int]:
            return (db.session.scalar(select(func.count()).select_from(Refund)
                                      .where(Refund.contract_id == ref.id)),
                    db.session.scalar(select(func.count()).select_from(RefundRequest)
                                      .where(RefundRequest.contract_id == ref.id)))

        before = rows()
        try:
            seen, made_id = refunds.offer_refund(ref.id, self.user(ref.coach_id), amount=amount,
                                                 reason="A session was cut short.")
            db.session.commit()
        except (refunds.RefundRefused, IntegrityError) as exc:
            self.refused(ref, f"the coach's offer of {amount} ({share})", exc)
            assert rows() == before, f"{ref.label}: a refused offer wrote rows"
            assert blocked or amount <= 0 or amount > left or (amount > terms and waiting), (
                f"{ref.label}: the coach could not give back {amount} of {left} refundable "
                f"(terms {terms}): {exc}")
            self.done()
            return
        assert not blocked and 0 < amount <= left, (
            f"{ref.label}: the coach gave back {amount} of {left} refundable: {blocked}")
        assert seen.straight_through == (amount <= terms)
        if seen.straight_through:
            sent = refunds.send_now(made_id)
            self.log(ref, f"the coach refunds {amount} (terms {terms}): refund {made_id} "
                          f"{sent.status.value}")
        else:
            self.log(ref, f"the coach offers {amount} above the terms ({terms}): request "
                          f"{made_id} for an admin")
        self.done()

    def _confirmed_quote(self, contract: Any, confirmed: str, request_id: int | None = None
                         ) -> int:
        """The amount an admin's confirmation page showed: today's quote (what the coach
        offered, on a coach's offer), or another ("stale")."""
        from extensions import db
        from payments import refunds
        from payments.models import RefundRequest

        quote = refunds.quote_now(contract).amount
        if request_id is not None:
            quote = refunds.proposed_amount(db.session.get(RefundRequest, request_id), quote)
        return quote + 1 if confirmed == "stale" else quote

    def _contract(self, ref: Ref) -> Any:
        from contracts.models import Contract
        from extensions import db

        return db.session.get(Contract, ref.id)

    @precondition(lambda self: self._paid())
    @rule(pick=PICK, share=st.sampled_from(("all", "half", "session", "one")))
    def admin_refund(self, pick: int, share: str) -> None:
        """An admin refunds some of a contract (a goodwill gesture, a correction)."""
        from extensions import db
        from payments import refunds

        ref = self.pick(pick, self._paid())
        assert ref is not None
        contract = self._contract(ref)
        left = refunds.refundable(contract).left
        amount = {"all": left, "half": left // 2, "session": contract.price_per_session,
                  "one": 1}[share] or 1
        try:
            refund_id = refunds.refund_contract(ref.id, self.admin, amount=amount,
                                                note="goodwill").id
            db.session.commit()
        except refunds.RefundRefused as exc:
            self.refused(ref, f"an admin refund of {amount} ({share})", exc)
            self.done()
            return
        self._sent(ref, refund_id, f"refunds {amount} ({share} of {left} refundable)")
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.status in ("active", "past_due")))
    @rule(pick=PICK, confirmed=CONFIRMED)
    def cancel_with_refund(self, pick: int, confirmed: str) -> None:
        """An admin cancels an active contract with the refund its policy gives now, as
        confirmed on its confirmation page (a stale quote is refused, nothing done)."""
        from extensions import db
        from payments import refunds

        ref = self.pick(pick, self.refs_where(lambda s: s.status in ("active", "past_due")))
        assert ref is not None
        refundable = self.view().of(ref).can_give_back()
        quoted = self._confirmed_quote(self._contract(ref), confirmed)
        try:
            refund = refunds.cancel_active_contract(ref.id, self.admin, reason="coach left",
                                                    quoted=quoted)
            assert confirmed != "stale", "a cancellation confirmed at a stale quote went through"
            refund_id = refund.id if refund else None
            db.session.commit()
        except refunds.RefundRefused as exc:
            self.refused(ref, f"cancelling the active contract with a refund ({confirmed})", exc)
            if confirmed == "stale":
                self.done()
                return
            # README: "an admin cancels an active one, with the refund its policy gives at
            # that moment, through the same refund path": refused only when nothing could go
            # back (Stripe refuses refunds of a charge charged back).
            assert not refundable, (
                f"{ref.label}: an admin could not cancel an active contract although "
                f"{refundable} could give money back: {exc}")
            self.done()
            return
        self._sent(ref, refund_id, "cancels the contract")
        self.done()

    @precondition(lambda self: self._paid())
    @rule(pending=st.booleans())
    def refunds_go_pending(self, pending: bool) -> None:
        """From now on Stripe's refunds wait for the bank (or succeed at once again)."""
        self.sandbox.configure(refund_outcome="pending" if pending else "succeeded")
        self.log(None, f"new refunds at Stripe are {'pending' if pending else 'succeeded'}")

    def _stripe_pending_refunds(self) -> list[tuple[Ref, str]]:
        view = self.view()
        return [(ref, r["id"]) for ref in self.refs for r in view.of(ref).stripe_refunds
                if r["status"] == "pending"]

    @precondition(lambda self: self._stripe_pending_refunds())
    @rule(pick=PICK, outcome=st.sampled_from(("succeeded", "failed")))
    def settle_refund(self, pick: int, outcome: str) -> None:
        candidates = self._stripe_pending_refunds()
        ref, refund_id = candidates[pick % len(candidates)]
        response = self.sandbox.tool(f"refunds/{refund_id}/settle", outcome=outcome)
        self.log(ref, f"the bank settles refund {refund_id}: {outcome} "
                      f"({response.status_code})")
        self.done()

    def _dashboard_refundable(self) -> list[tuple[Ref, dict[str, Any]]]:
        """Stripe's succeeded charges with something left to refund (charged back or not:
        Stripe decides)."""
        view = self.view()
        return [(ref, intent["latest_charge"]) for ref in self.refs
                for intent in view.of(ref).intents
                if intent["status"] == "succeeded" and isinstance(intent["latest_charge"], dict)
                and intent["latest_charge"]["amount"] > intent["latest_charge"]["amount_refunded"]]

    @precondition(lambda self: self._dashboard_refundable())
    @rule(pick=PICK, share=st.sampled_from(("all", "half", "one")), charge_first=st.booleans())
    def dashboard_refund(self, pick: int, share: str, charge_first: bool) -> None:
        """Someone refunds a charge in the Stripe Dashboard, around the app: its
        `charge.refunded` may come before its `refund.created`."""
        import stripe

        candidates = self._dashboard_refundable()
        ref, charge = candidates[pick % len(candidates)]
        left = charge["amount"] - charge["amount_refunded"]
        amount = {"all": left, "half": left // 2, "one": 1}[share] or 1
        try:
            made = self.sandbox.sdk.v1.refunds.create(
                {"charge": charge["id"], "amount": amount, "reason": "requested_by_customer"})
            event(f"Dashboard refund ({share}): {made.status}, "
                  f"{'charge.refunded' if charge_first else 'refund.created'} first")
            self.log(ref, f"a refund of {amount} ({share} of {left}) on {charge['id']} in the "
                          f"Stripe Dashboard: {made.status}; "
                          f"{'charge.refunded' if charge_first else 'refund.created'} first")
        except stripe.InvalidRequestError as exc:
            self.refused(ref, "a Dashboard refund", exc)
        self.done(first=("charge.refunded",) if charge_first else ())

    # -- memberships -------------------------------------------------------------------

    @precondition(lambda self: not self.members)
    @rule(values=membership_terms())
    def join_membership(self, values: dict[str, Any]) -> None:
        """A coach's monthly membership, joined with 4242 through subscription Checkout:
        each paid invoice becomes a paid contract of its period (`_adopt_periods`)."""
        from extensions import db
        from offers.memberships import create_membership_offer, publish_price, start_joining
        from offers.models import MembershipPeriod

        label = f"m{len(self.members) + 1}"
        coach_id, student_id = self._user("coach"), self._user("student")
        offer = create_membership_offer(
            self.user(coach_id), title=f"Membership {label}", description="Monthly.",
            minutes_per_session=60, period=MembershipPeriod.MONTH, **values)
        db.session.commit()
        publish_price(offer.id)
        url = start_joining(offer.id, self.user(student_id))
        membership_id = db.session.scalar(select(Membership.id).where(
            Membership.student_id == student_id))
        member = Member(membership_id, label, student_id, coach_id, values["currency"])
        self.members.append(member)
        response = self.sandbox.pay(url.rstrip("/").rsplit("/", 1)[-1],
                                    card_number=CARDS["card"])
        self.log(None, f"{label}: membership {membership_id}, {values}: "
                       f"{response.json().get('outcome')}")
        self.done()

    def _live_members(self) -> list[Member]:
        from extensions import db

        found = [m for m in self.members
                 if (row := db.session.get(Membership, m.id)) is not None and not row.ended
                 and row.current_period_end is not None]
        db.session.rollback()
        return found

    @precondition(lambda self: self._live_members())
    @rule(pick=PICK)
    def membership_renews(self, pick: int) -> None:
        """Both clocks to just past the period's end: Stripe renews with the saved card."""
        from extensions import db

        member = self.pick(pick, self._live_members())
        assert member is not None
        end = db.session.get(Membership, member.id).current_period_end
        db.session.rollback()
        self.move_to(max(end, self.now()) + timedelta(minutes=5))
        self.log(None, f"{member.label}: the clocks pass the period's end ({end:%Y-%m-%d})")
        self.done()

    @precondition(lambda self: self._live_members())
    @rule(pick=PICK, more=st.integers(-2, 3), price=st.integers(-50, 150))
    def member_moves(self, pick: int, more: int, price: int) -> None:
        """The student moves to another of the coach's memberships, in the same currency:
        with more sessions, the prorated difference is invoiced at once and its invoice
        adds sessions to the running period; else it takes effect at the next period."""
        from extensions import db
        from offers.membership_changes import move
        from offers.memberships import MembershipError, create_membership_offer, publish_price
        from offers.models import MembershipPeriod
        from payments.stripe_api import PaymentProviderError

        member = self.pick(pick, self._live_members())
        assert member is not None
        row = db.session.get(Membership, member.id)
        sessions = min(max(row.sessions_per_period + more, 1), 6)
        amount = max(row.price_per_period * (100 + price) // 100, 1000)
        offer = create_membership_offer(
            self.user(member.coach_id), title=f"Membership {member.label} ({sessions})",
            description="Monthly.", minutes_per_session=60, period=MembershipPeriod.MONTH,
            currency=member.currency, price_per_period=amount, sessions_per_period=sessions)
        db.session.commit()
        publish_price(offer.id)
        try:
            move(member.id, self.user(member.student_id), offer.id)
            self.log(None, f"{member.label}: moves to {sessions} sessions for {amount}")
        except (MembershipError, PaymentProviderError) as exc:
            self.refused(None, f"moving {member.label}", exc)
        self.done()

    @precondition(lambda self: self._live_members())
    @rule(pick=PICK, periods=st.integers(1, 2), resume=st.booleans())
    def coach_pauses_membership(self, pick: int, periods: int, resume: bool) -> None:
        """The coach pauses collection for some periods (the renewals then are voided:
        nothing paid, no credits), or resumes a paused one."""
        from extensions import db
        from offers.membership_changes import pause
        from offers.membership_changes import resume as resume_collection
        from offers.memberships import MembershipError
        from payments.stripe_api import PaymentProviderError

        member = self.pick(pick, self._live_members())
        assert member is not None
        coach = self.user(member.coach_id)
        paused = db.session.get(Membership, member.id).paused_until is not None
        try:
            if paused and resume:
                resume_collection(member.id, coach)
                self.log(None, f"{member.label}: the coach resumes collection")
            else:
                pause(member.id, coach, periods)
                self.log(None, f"{member.label}: the coach pauses {periods} period(s)")
        except (MembershipError, PaymentProviderError) as exc:
            self.refused(None, f"pausing or resuming {member.label}", exc)
        self.done()

    @precondition(lambda self: self._live_members())
    @rule(pick=PICK, confirmed=CONFIRMED)
    def coach_ends_membership(self, pick: int, confirmed: str) -> None:
        """The coach ends the membership now, with the running period's prorated refund as
        the confirmation page showed it (a stale figure is refused, nothing done)."""
        from extensions import db
        from offers.membership_cancel import cancel_now, refund_preview
        from offers.memberships import MembershipError

        member = self.pick(pick, self._live_members())
        assert member is not None
        quoted = refund_preview(db.session.get(Membership, member.id))
        quoted += 1 if confirmed == "stale" else 0
        db.session.rollback()
        try:
            refund = cancel_now(member.id, self.user(member.coach_id), reason="coach moved",
                                quoted=quoted)
            assert confirmed != "stale", "an ending confirmed at a stale refund went through"
            db.session.commit()
        except MembershipError as exc:
            self.refused(None, f"ending {member.label} now ({confirmed})", exc)
            assert confirmed == "stale", f"{member.label} could not be ended: {exc}"
            self.done()
            return
        self.log(None, f"{member.label}: the coach ends it now, refund "
                       f"{refund.amount if refund else 0} (quoted {quoted})")
        self.done()

    # -- disputes ----------------------------------------------------------------------

    def _disputable(self) -> list[tuple[Ref, dict[str, Any]]]:
        view = self.view()
        found = []
        for ref in self.refs:
            for intent in view.of(ref).intents:
                charge = intent.get("latest_charge")
                if (intent["status"] == "succeeded" and isinstance(charge, dict)
                        and not charge.get("disputed")
                        and charge["amount"] > charge["amount_refunded"]):
                    found.append((ref, charge))
        return found

    @precondition(lambda self: self._disputable())
    @rule(pick=PICK, part=st.booleans(), refundable=st.booleans())
    def dispute_opens(self, pick: int, part: bool, refundable: bool) -> None:
        """The student's bank opens a chargeback on a charge: for what is left of it, or a
        part of that."""
        candidates = self._disputable()
        ref, charge = candidates[pick % len(candidates)]
        left = charge["amount"] - charge["amount_refunded"]
        amount = max(left // 2, 1) if part else left
        response = self.sandbox.tool(f"charges/{charge['id']}/dispute", amount=amount,
                                     refundable="true" if refundable else "false")
        self.log(ref, f"a dispute of {amount} opens on {charge['id']} ({charge['amount']}, "
                      f"{charge['amount_refunded']} refunded; refundable {refundable}): "
                      f"{response.status_code}")
        self.done()

    def _open_disputes(self) -> list[tuple[Ref, str]]:
        view = self.view()
        return [(ref, d["id"]) for ref in self.refs for d in view.of(ref).stripe_disputes
                if d["status"] in OPEN_DISPUTES]

    @precondition(lambda self: self._open_disputes())
    @rule(pick=PICK, won=st.booleans())
    def dispute_closes(self, pick: int, won: bool) -> None:
        candidates = self._open_disputes()
        ref, dispute_id = candidates[pick % len(candidates)]
        response = self.sandbox.tool(f"disputes/{dispute_id}/close",
                                     outcome="won" if won else "lost")
        self.log(ref, f"the bank decides dispute {dispute_id}: {'won' if won else 'lost'} "
                      f"({response.status_code})")
        self.done()

    # -- sessions ----------------------------------------------------------------------

    @precondition(lambda self: self.refs_where(lambda s: s.status == "active"))
    @rule(pick=PICK, by_coach=st.booleans(), slot=st.integers(0, 3))
    def book(self, pick: int, by_coach: bool, slot: int) -> None:
        from extensions import db
        from scheduling import availability, sessions

        ref = self.pick(pick, self.refs_where(lambda s: s.status == "active"))
        assert ref is not None
        slots = availability.free_slots(self._contract(ref), from_day=self.now().date(), days=7)
        if not slots:
            self.log(ref, "no free slot this week")
            return
        starts_at = slots[(slot * 7) % len(slots)].starts_at
        who = ref.coach_id if by_coach else ref.student_id
        try:
            sessions.book_session(ref.id, self.user(who), starts_at=starts_at)
            db.session.commit()
            who_booked = "coach" if by_coach else "student"
            self.log(ref, f"the {who_booked} books {starts_at:%a %d %b %H:%M}")
        except (sessions.SchedulingError, sessions.SchedulingClosed) as exc:
            self.refused(ref, "booking a session", exc)
        self.done()

    def _scheduled(self) -> list[tuple[Ref, dict[str, Any]]]:
        view = self.view()
        return [(ref, s) for ref in self.refs for s in view.of(ref).scheduled]

    @precondition(lambda self: self._scheduled())
    @rule(pick=PICK, status=st.sampled_from(("completed", "completed", "no_show")))
    def session_takes_place(self, pick: int, status: str) -> None:
        """Time moves to just after a booked session's start; the coach marks it."""
        from contracts.models import SessionStatus
        from extensions import db
        from scheduling import sessions

        candidates = self._scheduled()
        ref, booked = candidates[pick % len(candidates)]
        if booked["starts_at"] > self.now():
            self.move_to(booked["starts_at"] + timedelta(minutes=50))
        try:
            sessions.mark_session(booked["id"], self.user(ref.coach_id), SessionStatus(status))
            db.session.commit()
            self.log(ref, f"the session of {booked['starts_at']:%a %d %b %H:%M} is marked {status}")
        except (sessions.SchedulingError, sessions.SchedulingClosed, TransitionError) as exc:
            self.refused(ref, f"marking a session {status}", exc)
        self.done()

    @precondition(lambda self: self._scheduled())
    @rule(pick=PICK, by_coach=st.booleans())
    def cancel_session(self, pick: int, by_coach: bool) -> None:
        from extensions import db
        from scheduling import sessions

        candidates = self._scheduled()
        ref, booked = candidates[pick % len(candidates)]
        who = ref.coach_id if by_coach else ref.student_id
        try:
            cancelled = sessions.cancel_session(booked["id"], self.user(who))
            late = cancelled.late_cancellation
            db.session.commit()
            self.log(ref, f"the {'coach' if by_coach else 'student'} cancels the session of "
                          f"{booked['starts_at']:%a %d %b %H:%M}{' (late)' if late else ''}")
        except (sessions.SchedulingError, sessions.SchedulingClosed, TransitionError) as exc:
            self.refused(ref, "cancelling a session", exc)
        self.done()

    # -- coach payouts -----------------------------------------------------------------

    @precondition(lambda self: self.refs_where(lambda s: not s.account_ready))
    @rule(pick=PICK)
    def coach_onboards(self, pick: int) -> None:
        """The coach sets up payouts and completes Stripe's onboarding."""
        from payouts import accounts

        ref = self.pick(pick, self.refs_where(lambda s: not s.account_ready))
        assert ref is not None
        account = accounts.connect_account(self.user(ref.coach_id))
        response = self.sandbox.tool(f"accounts/{account.stripe_account_id}/onboard")
        self.log(ref, f"the coach onboards {account.stripe_account_id}: {response.status_code}")
        self.done()

    @rule()
    def transfer_due(self) -> None:
        """What `flask payouts transfer-due --ahead 4d` does: shares of delivered sessions
        made, refunds taken back from transfers, and every transfer due four days from now
        (past the hold) sent."""
        import clock
        import jobs
        from payouts import shares, transfers

        with clock.ahead(timedelta(days=4)), jobs.job_context():
            shares.make_and_release()
            transfers.settle_refunds()
            due = transfers.due_share_ids()
            outcomes = [transfers.transfer_share(share_id) for share_id in due]
        for outcome in outcomes:
            event(f"transfer: {outcome}")
        self.log(None, f"payouts run (4 days ahead): {outcomes or 'nothing due'}")
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.account_ready))
    @rule(pick=PICK)
    def coach_paid_out(self, pick: int) -> None:
        """The coach's balance goes to the bank: later reversals find nothing to take."""
        ref = self.pick(pick, self.refs_where(lambda s: s.account_ready))
        assert ref is not None
        account = self.view().of(ref).account_id
        response = self.sandbox.tool(f"accounts/{account}/payout", currency=ref.currency)
        self.log(ref, f"the coach's balance is paid out: {response.status_code}")
        self.done()

    @precondition(lambda self: self.refs_where(lambda s: s.account_ready))
    @rule(pick=PICK)
    def coach_tops_up_balance(self, pick: int) -> None:
        """The coach adds funds to their Stripe balance (what the app asks of them when a
        reversal waits for it): a waiting reversal goes through at its next try."""
        ref = self.pick(pick, self.refs_where(lambda s: s.account_ready))
        assert ref is not None
        account = self.view().of(ref).account_id
        balance = self.sandbox.sdk.v1.balance.retrieve(options={"stripe_account": account})
        have = sum(b.amount for b in balance.available if b.currency == ref.currency)
        response = self.sandbox.tool(f"accounts/{account}/balance", currency=ref.currency,
                                     available=have + 1_000_000)
        self.log(ref, f"the coach tops up their balance: {response.status_code}")
        self.done()

    # -- the invariants ----------------------------------------------------------------
    #
    # One invariant runs every check (so the printed steps stay readable); each failing
    # `assert` line is a bug of its own to Hypothesis, shrunk and reported separately.

    @invariant()
    def money_adds_up(self) -> None:
        view = self.view()
        assert not view.stuck_events, f"Stripe events the app could not apply: {view.stuck_events}"
        for ref in self.refs:
            side = view.of(ref)
            state = repr(side)
            if self._checked.get(ref.label) == state:
                continue  # nothing changed since it was found sound
            self.check_arrived(side)
            self.check_amounts(side)
            self.check_refunds(side)
            self.check_disputes(side)
            self.check_status(side)
            self.check_sessions(side)
            self.check_holds(side)
            self.check_transfers(side)
            self.check_failures(side)
            assert not side.ledger_problems, f"{side.describe()}: ledger: {side.ledger_problems}"
            if standing_of is not None:
                self.check_standing(side)
            self._checked[ref.label] = state
        for member in self.members:
            self.check_membership(member)

    def check_membership(self, member: Member) -> None:
        """Each invoice Stripe was paid for the subscription granted its period once, and
        each one that charged money is one payment of one period contract of that amount;
        periods follow one another; an ended membership keeps no session booked after
        its end."""
        from contracts.models import CoachingSession, Contract, SessionStatus
        from extensions import db
        from offers.models import CreditGrant
        from payments.models import Payment

        row = db.session.get(Membership, member.id)
        assert row is not None
        paid = [] if row.stripe_subscription_id is None else [
            i for i in self.sandbox.listed(self.sandbox.sdk.v1.invoices,
                                           subscription=row.stripe_subscription_id)
            if i["status"] == "paid"]
        grants = {g.stripe_invoice_id: g for g in db.session.scalars(
            select(CreditGrant).where(CreditGrant.membership_id == member.id))}
        assert sorted(grants) == sorted(i["id"] for i in paid), (
            f"{member.label}: credits granted for {sorted(grants)}, Stripe paid "
            f"{sorted(i['id'] for i in paid)}")
        for invoice in paid:
            payments = list(db.session.scalars(select(Payment).where(
                Payment.stripe_invoice_id == invoice["id"])))
            if invoice["amount_paid"] == 0:
                assert not payments, f"{member.label}: a payment for the free {invoice['id']}"
                continue
            [payment] = payments
            contract = db.session.get(Contract, payment.contract_id)
            assert (contract.membership_id, contract.total_amount, payment.amount) == (
                member.id, invoice["amount_paid"], invoice["amount_paid"]), (
                f"{member.label}: {invoice['id']} of {invoice['amount_paid']} is payment "
                f"{payment.amount} of contract {contract.id} ({contract.total_amount})")
            assert grants[invoice["id"]].contract_id == contract.id
        periods = list(db.session.scalars(select(Contract).where(
            Contract.membership_id == member.id).order_by(Contract.period_start)))
        # Renewals follow one another; a move's top-up lies inside the period it adds to.
        renewals = [p for p in periods if not any(
            o.id < p.id and o.period_start <= p.period_start and o.period_end >= p.period_end
            for o in periods)]
        for before, after in zip(renewals, renewals[1:], strict=False):
            assert before.period_end <= after.period_start, (
                f"{member.label}: periods {before.id} and {after.id} overlap")
        if row.ended and row.ended_at is not None:
            late = db.session.scalars(select(CoachingSession.id).where(
                CoachingSession.contract_id.in_([p.id for p in periods]),
                CoachingSession.status == SessionStatus.SCHEDULED,
                CoachingSession.starts_at >= row.ended_at)).all()
            assert not late, f"{member.label} ended with sessions {late} booked after its end"
        db.session.rollback()

    def check_arrived(self, side: Side) -> None:
        """What Stripe says succeeded is what the app has arrived (or holds for review)."""
        by_intent = {p["intent"]: p for p in side.payments if p["intent"]}
        succeeded = [i for i in side.intents if i["status"] == "succeeded"]
        for intent in succeeded:
            payment = by_intent.get(intent["id"])
            assert payment is not None, (
                f"{side.describe()}: Stripe's succeeded {intent['id']} "
                f"({intent['amount_received']}) has no payment record")
            assert payment["arrived"] or payment["held"], (
                f"{side.describe()}: Stripe's succeeded {intent['id']} is a {payment['status']} "
                f"payment in the app")
            assert payment["amount"] == intent["amount_received"], (
                f"{side.describe()}: payment {payment['id']} is {payment['amount']}, Stripe "
                f"received {intent['amount_received']}")
        at_stripe = {i["id"] for i in succeeded}
        for payment in side.payments:
            if payment["arrived"] and not payment["manual"]:
                assert payment["intent"] in at_stripe, (
                    f"{side.describe()}: payment {payment['id']} ({payment['status']}) has no "
                    f"succeeded charge at Stripe")
        stripe_counted = sum(i["amount_received"] for i in succeeded
                             if i["id"] in side.counted_intents)
        offline = sum(p["amount"] for p in side.counted if p["manual"])
        assert side.paid == stripe_counted + offline, (
            f"{side.describe()}: paid {side.paid} ≠ Stripe's {stripe_counted} + offline {offline}")

    def check_amounts(self, side: Side) -> None:
        """The contract's own figures are its payments'; nothing is collected twice."""
        assert side.amount_paid == side.paid, (
            f"{side.describe()}: Contract.amount_paid {side.amount_paid} ≠ the payments that "
            f"count, {side.paid}")
        if side.amount_returned is not None:
            assert side.amount_returned == side.refunded + side.lost, (
                f"{side.describe()}: Contract.amount_returned {side.amount_returned} ≠ refunded "
                f"{side.refunded} + lost {side.lost}")
        assert side.paid <= side.total, (
            f"{side.describe()}: more arrived ({side.paid}) than the total {side.total}")
        for instalment in side.instalments:
            paying = [p for p in side.counted if p["instalment_id"] == instalment["id"]]
            assert len(paying) <= 1, (
                f"{side.describe()}: instalment {instalment['number']} was collected "
                f"{len(paying)} times: payments {[p['id'] for p in paying]}")
            assert (instalment["status"] == "paid") == bool(paying), (
                f"{side.describe()}: instalment {instalment['number']} is "
                f"{instalment['status']} with {len(paying)} payment(s) that count")

    def check_refunds(self, side: Side) -> None:
        """Refunds in the app are Stripe's (offline ones for offline payments), never more
        than was paid; a payment that does not count goes back in full."""
        at_stripe: dict[str, int] = {}
        for refund in side.stripe_refunds:
            if refund["status"] == "succeeded":
                at_stripe[refund["payment_intent"]] = (
                    at_stripe.get(refund["payment_intent"], 0) + refund["amount"])
        for payment in side.payments:
            if not payment["arrived"]:
                continue
            ours = sum(r["amount"] for r in side.refunds
                       if r["payment_id"] == payment["id"] and r["status"] == "succeeded")
            assert payment["refunded"] == ours <= payment["amount"], (
                f"{side.describe()}: payment {payment['id']} of {payment['amount']} says "
                f"{payment['refunded']} refunded, its refunds {ours}")
            if payment["intent"]:
                stripe_says = at_stripe.get(payment["intent"], 0)
                assert ours == stripe_says, (
                    f"{side.describe()}: payment {payment['id']}: refunded {ours} here, "
                    f"{stripe_says} at Stripe")
            if payment["void"]:
                # Sent back in full (the bank may still fail it: then it is for an admin):
                # what refunds made in the Stripe Dashboard before had not given back.
                mine = [r for r in side.refunds if r["payment_id"] == payment["id"]]
                voided = min((r["id"] for r in mine if r["source"] == "duplicate"),
                             default=None)
                asked = sum(r["amount"] for r in mine if r["source"] == "duplicate" or (
                    r["source"] == "dashboard" and r["status"] in ("pending", "succeeded")
                    and (voided is None or r["id"] < voided)))
                assert asked == payment["amount"], (
                    f"{side.describe()}: payment {payment['id']} ({payment['void']}) does not "
                    f"count, but a refund of {asked} of its {payment['amount']} was made")
        assert side.refunded <= side.paid, (
            f"{side.describe()}: refunded {side.refunded} of a paid {side.paid}")

    def check_disputes(self, side: Side) -> None:
        ours = {d["stripe_id"]: d for d in side.disputes}
        for dispute in side.stripe_disputes:
            mine = ours.get(dispute["id"])
            assert mine is not None, (
                f"{side.describe()}: Stripe's dispute {dispute['id']} is not recorded")
            assert (mine["status"], mine["amount"]) == (dispute["status"], dispute["amount"]), (
                f"{side.describe()}: dispute {dispute['id']} is {mine['status']} {mine['amount']} "
                f"here, {dispute['status']} {dispute['amount']} at Stripe")
        if side.open_disputes:
            assert side.status == "disputed", (
                f"{side.describe()}: dispute {side.open_disputes[0]['stripe_id']} is open but the "
                f"contract is {side.status}")
        if side.status == "disputed":
            assert side.open_disputes, f"{side.describe()}: disputed with no open dispute"

    def check_status(self, side: Side) -> None:
        """The payment status is what the money says; a contract with nothing kept is
        neither active nor past due."""
        returned = side.refunded + side.lost
        if side.paid == 0 and side.waived == 0:
            assert side.payment_status in ("pending", "processing", "failed"), (
                f"{side.describe()}: nothing arrived, yet {side.payment_status}")
            assert side.status in ("pending", "cancelled"), (
                f"{side.describe()}: nothing arrived, yet {side.status}")
            return
        if side.open_disputes:
            expected = "disputed"
        elif returned >= side.paid:
            expected = "refunded"
        elif returned > 0:
            expected = "partially_refunded"
        elif side.paid + side.waived >= side.total:
            expected = "paid"
        else:
            expected = "partially_paid"
        assert side.payment_status == expected, (
            f"{side.describe()}: payment status {side.payment_status}, the money says {expected}")
        assert side.status != "pending", f"{side.describe()}: pending with money arrived"
        if returned >= side.paid:
            assert side.status not in ("active", "past_due"), (
                f"{side.describe()}: everything went back but the contract is {side.status}")
        if side.status == "refunded":
            # Below zero when the sandbox withdraws a lost dispute's amount from a charge
            # refunded meanwhile (Stripe stops at a full refund): still nothing kept.
            assert side.kept <= 0, f"{side.describe()}: refunded while {side.kept} is kept"

    def check_sessions(self, side: Side) -> None:
        """Sessions open to book never exceed what the money kept pays for."""
        open_ = len(side.scheduled)
        if side.status in ("pending", "cancelled", "refunded", "completed") or side.kept <= 0:
            assert open_ == 0, (
                f"{side.describe()}: {open_} session(s) still booked")
            return
        returned = side.refunded + side.lost
        if side.on_plan or side.paid + side.waived < side.total:
            covered = min(side.paid + side.waived, side.total)
            allowed = side.count * max(covered - returned, 0) // side.total
        else:
            allowed = side.count - returned // side.price
        assert open_ <= max(allowed - side.consumed, 0), (
            f"{side.describe()}: {open_} booked and {side.consumed} used session(s), but the "
            f"money kept pays for {allowed}")
        booked_or_used = open_ + side.consumed
        assert booked_or_used <= max(side.unlocked, side.consumed), (
            f"{side.describe()}: {booked_or_used} session(s) booked or used, "
            f"{side.unlocked} unlocked")

    def check_holds(self, side: Side) -> None:
        """A held time is decided when its payment counts, booked once, and only one time
        at a time is held for a contract."""
        payments = {p["id"]: p for p in side.payments}
        sessions = {s["id"]: s for s in side.sessions}
        live = [h for h in side.holds if h["status"] == "held" and h["expires_at"] > self.now()]
        assert len(live) <= 1, f"{side.describe()}: {len(live)} times held at once: {live}"
        booked = [h for h in side.holds if h["status"] == "booked"]
        assert len({h["session_id"] for h in booked}) == len(booked), (
            f"{side.describe()}: one session booked for two holds: {booked}")
        assert len(booked) <= 1, f"{side.describe()}: {len(booked)} first sessions booked"
        for hold in side.holds:
            payment = payments[hold["payment_id"]]
            if hold["status"] == "booked":
                assert payment["counts"], (
                    f"{side.describe()}: hold {hold['id']} booked for payment "
                    f"{payment['id']} ({payment['status']}), which does not count")
                booked_session = sessions.get(hold["session_id"])
                assert booked_session is not None and (
                    booked_session["starts_at"] == hold["starts_at"]), (
                    f"{side.describe()}: hold {hold['id']} booked, its session "
                    f"{hold['session_id']} is {booked_session}")
            if payment["arrived"]:
                # Settling decided it: booked, lapsed, or given back with a void payment.
                assert hold["status"] != "held", (
                    f"{side.describe()}: payment {payment['id']} arrived, its hold "
                    f"{hold['id']} is still held")

    def check_transfers(self, side: Side) -> None:
        """Transfers less reversals at Stripe are the app's shares, never more than the
        coach's earning for the sessions delivered."""
        ours = {s["transfer_id"]: s for s in side.shares if s["transfer_id"]}
        for transfer in side.transfers:
            share = ours.get(transfer["id"])
            assert share is not None, (
                f"{side.describe()}: Stripe's transfer {transfer['id']} has no share")
            assert (share["transfer_amount"], share["reversed"]) == (
                transfer["amount"], transfer["amount_reversed"]), (
                f"{side.describe()}: share {share['id']} sent {share['transfer_amount']}, "
                f"reversed {share['reversed']}; Stripe: {transfer['amount']}, reversed "
                f"{transfer['amount_reversed']}")
        for share in side.shares:
            if share["waiting"]:
                # A reversal refused for the coach's short balance waits: asked again later,
                # never a loss while it waits.
                assert share["status"] == "transferred" and share["waiting_next"], (
                    f"{side.describe()}: share {share['id']} waits for a reversal: {share}")
                assert "balance_insufficient" in (share["waiting_error"] or ""), (
                    f"{side.describe()}: share {share['id']} waits for no short balance")
        sent = [s for s in side.shares if s["status"] == "transferred"]
        assert len(sent) == len(side.transfers), (
            f"{side.describe()}: {len(sent)} shares transferred, {len(side.transfers)} transfers "
            f"at Stripe")
        net = sum(s["transfer_amount"] - s["reversed"] for s in sent)
        earned = side.earning * side.delivered // side.count
        assert net <= earned, (
            f"{side.describe()}: {net} sent to the coach for {side.delivered} of {side.count} "
            f"sessions (earning {side.earning}, so at most {earned})")

    def check_failures(self, side: Side) -> None:
        for payment in side.payments:
            if payment["arrived"]:
                assert not payment["failure_reason"], (
                    f"{side.describe()}: {payment['status']} payment {payment['id']} says it "
                    f"failed: {payment['failure_reason']!r}")

    def check_standing(self, side: Side) -> None:
        """`payments.standing` counts what the rows and Stripe say, and the student's
        Payments page and the coach's Earnings and Payouts pages show its figures (read
        through the functions those pages render)."""
        from extensions import db
        from payments.history import earnings_of, payments_of_student
        from payouts.ledger import coach_payouts

        ref = side.ref
        contract = self._contract(ref)
        standing = standing_of(contract)
        figures = (standing.arrived, standing.refunded, standing.lost, standing.waived)
        assert figures == (side.paid, side.refunded, side.lost, side.waived), (
            f"{side.describe()}: standing arrived/refunded/lost/waived {figures}")
        shown = [p for p in payments_of_student(self.user(ref.student_id))
                 if p.contract_id == ref.id and p.void_reason is None
                 and p.status.value in ("succeeded", "partially_refunded", "refunded")]
        page = (sum(p.amount for p in shown), sum(p.amount_refunded for p in shown))
        assert page == (standing.arrived, standing.refunded), (
            f"{side.describe()}: Payments page received/refunded {page}, standing "
            f"{standing.arrived}/{standing.refunded}")
        if contract.paid_at is not None:
            coach = self.user(ref.coach_id)
            [row] = [r for r in earnings_of(coach).contracts if r.contract_id == ref.id]
            page = (row.received, row.refunded, row.fee, row.net_earning)
            wanted = (standing.arrived, standing.returned, standing.fee, standing.earning)
            assert page == wanted, (
                f"{side.describe()}: Earnings page received/refunded/fee/net {page}, "
                f"standing {wanted}")
            assert 0 <= row.earned <= row.net_earning, (
                f"{side.describe()}: earned {row.earned} of a net {row.net_earning}")
            [money] = [m for c, m in coach_payouts(coach).contracts if c.id == ref.id]
            page = (money.paid, money.refunded, money.disputes_lost, money.waived)
            assert page == figures, (
                f"{side.describe()}: Payouts page paid/refunded/lost/waived {page}, "
                f"standing {figures}")
        if standing.waived == 0:
            # What was kept splits into the platform's fee and the coach's earning.
            assert standing.fee >= 0 and 0 <= standing.earning <= max(side.kept, 0), (
                f"{side.describe()}: standing fee {standing.fee}, earning {standing.earning}, "
                f"kept {side.kept}")
        db.session.rollback()

    def teardown(self) -> None:
        """At the end of each run, Stripe's books and ours agree, day by day: every balance
        transaction has its record and every record its transaction, with the same amount
        (`books.reconcile`). Stripe's fee is read on the way, as the nightly check does."""
        from books import reconcile
        from extensions import db
        from payments.models import Dispute, Payment, Refund
        from payouts.models import SessionShare, TransferReversal

        db.session.rollback()
        days = {datetime.fromtimestamp(t["created"], UTC).date()
                for t in self.sandbox.listed(self.sandbox.sdk.v1.balance_transactions)}
        for column in (Payment.paid_at, Refund.created_at, Dispute.created_at,
                       Dispute.closed_at, SessionShare.transferred_at,
                       TransferReversal.created_at):
            days.update(moment.date() for moment in db.session.scalars(
                select(column).where(column.is_not(None))))
        # Transfers are sent four days ahead of Stripe's clock (`transfer_due`, as the
        # command's --ahead does): the check finds such records at Stripe by their ids.
        for day in sorted(days):
            found = reconcile.check_day(day)
            db.session.rollback()
            assert not found.items, (
                f"the books of {day} differ: " + "; ".join(i.note for i in found.items))


# --- the test -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def request_context(app):
    """Services link to pages in what they tell people, as they do inside a request."""
    with app.test_request_context():
        yield


def test_money_adds_up_whatever_happens(request, app, db, client, fresh_sandbox):
    class Machine(MoneyMachine):
        env = Env(app=app, client=client, fresh_sandbox=fresh_sandbox)

    def keep_statistics(stats: dict[str, Any]) -> None:
        # What the pytest plugin does for @given tests, so that
        # --hypothesis-show-statistics reports this run too.
        stats["nodeid"] = request.node.nodeid
        request.node.hypothesis_statistics = describe_statistics(stats)

    with collector.with_value(keep_statistics):
        run_state_machine_as_test(Machine, settings=budget())
