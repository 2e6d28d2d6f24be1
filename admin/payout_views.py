"""Admin: coach payouts. The session shares by status, the coaches whose connected account
cannot take a transfer yet (and what waits for them), the platform's fees and losses per
currency, and the payout ledger's check (the dashboard's tile).

Read only: shares move through the payout jobs (`payouts.shares`, `payouts.transfers`).
A failed share is retried by the jobs at its `next_attempt_at`; `payouts.transfers` offers
no way to make it due sooner, so the page has no "Retry now" button.

Amounts are never added across currencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

import clock
import jobs
from accounts.models import User
from admin.analytics import payment_fee
from admin.listing import Page, enum_arg, int_arg, keyset_page, query_args
from admin.views import bp
from contracts.models import Contract
from extensions import db
from payments.models import Invoice, Payment
from payments.standing import PAID_STATUSES, given_back, refund_cut
from payouts import ledger, transfers
from payouts.models import (
    UNSENT_STATUSES,
    ConnectedAccount,
    LedgerCheckRun,
    PlatformLoss,
    SessionShare,
    ShareStatus,
)

FILTERS = {status.value: status.value.capitalize() for status in ShareStatus}
LOSSES_SHOWN = 20
LEDGER_LINES_SHOWN = 50


# --- the shares -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareFilters:
    status: ShareStatus | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ShareFilters:
        return cls(status=enum_arg(args, "status", ShareStatus))

    def as_args(self) -> dict[str, str]:
        return query_args(status=self.status)


def share_page(filters: ShareFilters, after: int | None) -> Page[SessionShare]:
    """One page of shares, newest first, each with its coach and contract."""
    query = select(SessionShare).options(
        joinedload(SessionShare.coach), joinedload(SessionShare.contract)
    )
    if filters.status is not None:
        query = query.where(SessionShare.status == filters.status)
    return keyset_page(query, SessionShare.id, after)


def share_counts() -> dict[str, int]:
    """How many shares each filter shows (one statement)."""
    counts = {status.value: 0 for status in ShareStatus}
    for status, count in db.session.execute(
        select(SessionShare.status, func.count()).group_by(SessionShare.status)
    ):
        counts[status.value] = count
    counts["all"] = sum(counts.values())
    return counts


# --- coaches whose account cannot take a transfer ---------------------------------------------


def _not_ready() -> ColumnElement[bool]:
    """An account Stripe will not pay out to yet, or that still owes Stripe details."""
    return or_(
        ConnectedAccount.payouts_enabled.is_(False),
        ConnectedAccount.transfers_active.is_(False),
        func.json_array_length(ConnectedAccount.requirements_due) > 0,
    )


@dataclass
class Waiting:
    """A coach whose shares cannot be sent: no connected account, or one not ready."""

    coach: User
    account: ConnectedAccount | None
    shares: int = 0
    amounts: dict[str, int] = field(default_factory=dict)  # currency → minor units

    @property
    def reason(self) -> str:
        if self.account is None:
            return "No connected account"
        if not self.account.payouts_enabled:
            return "Payouts not enabled"
        if not self.account.transfers_active:
            return "Transfers not active"
        return "Requirements due"


def accounts_not_ready() -> list[Waiting]:
    """Coaches with no account or one not ready, and what their unsent shares hold for them
    (net of the refunds made so far, as the transfer would send it), per currency."""
    rows: dict[int, Waiting] = {}
    for account in db.session.scalars(
        select(ConnectedAccount).options(joinedload(ConnectedAccount.user)).where(_not_ready())
    ):
        rows[account.user_id] = Waiting(account.user, account)
    shares = db.session.execute(
        select(SessionShare, ConnectedAccount)
        .outerjoin(ConnectedAccount, ConnectedAccount.user_id == SessionShare.coach_id)
        .options(joinedload(SessionShare.coach), joinedload(SessionShare.contract))
        .where(
            SessionShare.status.in_(UNSENT_STATUSES),
            or_(ConnectedAccount.id.is_(None), _not_ready()),
        )
    ).all()
    refunded: dict[int, int] = {}
    for share, account in shares:
        row = rows.setdefault(share.coach_id, Waiting(share.coach, account))
        contract: Contract = share.contract
        if contract.id not in refunded:
            refunded[contract.id] = given_back(contract)
        if share.transfer_amount is not None:
            amount = share.transfer_amount
        else:
            amount = share.amount - refund_cut(
                share.amount, refunded[contract.id], contract.total_amount
            )
        row.shares += 1
        row.amounts[share.currency] = row.amounts.get(share.currency, 0) + amount
    return sorted(rows.values(), key=lambda row: (-row.shares, row.coach.name, row.coach.id))


# --- the platform's money ---------------------------------------------------------------------


def platform_fees() -> dict[str, int]:
    """The platform's fee on what arrived, per currency (before refunds): the sum of the
    invoices of the payments that count, so a plan adds the fee on what it paid so far,
    not its contract's whole fee."""
    return {
        currency: int(total)
        for currency, total in db.session.execute(
            select(Payment.currency, func.sum(payment_fee()))
            .join(Payment.contract)
            .outerjoin(Invoice, Invoice.payment_id == Payment.id)
            .where(Payment.status.in_(PAID_STATUSES), Payment.void_reason.is_(None))
            .group_by(Payment.currency)
            .order_by(Payment.currency)
        )
    }


def platform_losses() -> dict[str, tuple[int, int]]:
    """Reversals Stripe refused, per currency: (how many, how much)."""
    return {
        currency: (int(count), int(total))
        for currency, count, total in db.session.execute(
            select(PlatformLoss.currency, func.count(), func.sum(PlatformLoss.amount))
            .group_by(PlatformLoss.currency)
            .order_by(PlatformLoss.currency)
        )
    }


def waiting_reversals() -> list[SessionShare]:
    """Reversals Stripe refused for the coach's short balance, asked again until they go
    through or, after `transfers.REVERSAL_GIVE_UP`, become a loss: oldest first."""
    return list(
        db.session.scalars(
            select(SessionShare)
            .options(joinedload(SessionShare.coach), joinedload(SessionShare.contract))
            .where(SessionShare.reversal_waiting_since.is_not(None))
            .order_by(SessionShare.reversal_waiting_since, SessionShare.id)
        )
    )


def latest_losses(limit: int = LOSSES_SHOWN) -> list[PlatformLoss]:
    return list(
        db.session.scalars(
            select(PlatformLoss)
            .options(joinedload(PlatformLoss.share).joinedload(SessionShare.coach))
            .order_by(PlatformLoss.id.desc())
            .limit(limit)
        )
    )


# --- the ledger check ---------------------------------------------------------------------


def ledger_check() -> LedgerCheckRun | None:
    """The last run of the ledger check (a periodic job runs it every
    `ledger.CHECK_EVERY_MINUTES`); None before the first. No page runs the check itself:
    it reads every paid contract."""
    return ledger.latest_check()


@bp.post("/payouts/ledger-check")
def ledger_check_now() -> Response:
    """Run the ledger check now, in the background; the page shows it once done."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    if jobs.enqueue(ledger.ledger_check_job):
        flash("The ledger check is running; its result shows here in a moment.", "success")
    else:
        flash("The job queue could not be reached; the periodic check runs it later.",
              "warning")
    return redirect(url_for("admin.payouts_page", _anchor="ledger-check"))


# --- the page -------------------------------------------------------------------------------


@bp.get("/payouts")
def payouts_page() -> str:
    filters = ShareFilters.from_args(request.args)
    after = int_arg(request.args, "after")
    return render_template(
        "admin/payouts.html",
        section="payouts",
        filters=filters,
        filter_labels=FILTERS,
        counts=share_counts(),
        page=share_page(filters, after),
        after=after,
        waiting=accounts_not_ready(),
        fees=platform_fees(),
        losses=platform_losses(),
        latest_losses=latest_losses(),
        waiting_reversals=waiting_reversals(),
        give_up=transfers.REVERSAL_GIVE_UP,
        check=ledger_check(),
        check_every=ledger.CHECK_EVERY_MINUTES,
        lines_shown=LEDGER_LINES_SHOWN,
        now=clock.now(),
    )


@bp.post("/payouts/retry")
def payout_retry() -> Response:
    """Try a failed transfer again now (the periodic job sends it within a minute)."""
    form = FlaskForm()
    share_id = request.form.get("share_id", type=int)
    if not form.validate_on_submit() or share_id is None:
        abort(400)
    try:
        transfers.retry_now(share_id, current_user)
        db.session.commit()
    except LookupError as exc:
        db.session.rollback()
        flash(f"Nothing to retry: {exc}.", "warning")
    else:
        flash("The transfer is due again; it is sent within a minute.", "success")
    return redirect(url_for("admin.payouts_page", status="failed"))
