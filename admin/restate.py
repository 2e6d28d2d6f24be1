"""What each money action of the console restates before it moves money (`admin.confirm`).

Every amount comes from the function the action itself calls (the policy's quote, the
refund's split between Stripe and offline payments, the manual payment's amount), and
the standing afterwards from the money core's own arithmetic: nothing is re-typed here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from flask import url_for

from accounts import localtime
from accounts.models import User
from admin.confirm import Confirmation, Item
from contracts.models import Contract
from contracts.money import format_money, method_words
from contracts.refund_policy import RefundQuote
from offers.memberships import price_in_words
from offers.models import Membership
from payments import manual, refunds
from payments.models import (
    Instalment,
    ManualMethod,
    Payment,
    RefundRequest,
    RequestStatus,
)
from payments.standing import Standing


def _money(amount: int, currency: str) -> str:
    """"$120.00 (USD)": the amount and, for anyone who reads symbols loosely, its currency."""
    return f"{format_money(amount, currency)} ({currency.upper()})"


def _parties(contract: Contract) -> dict[str, str]:
    return {
        "Contract": f"#{contract.id} “{contract.title}”",
        "Student": f"{contract.student.name} ({contract.student.email})",
        "Coach": f"{contract.coach.name} ({contract.coach.email})",
    }


def _contract_page(contract: Contract) -> str:
    return url_for("admin.contract_detail", contract_id=contract.id, _anchor="money-back")


def _refund_lines(preview: refunds.RefundPreview) -> list[str]:
    """Where a refund's money goes, and what the contract keeps afterwards."""
    contract = preview.contract
    currency, student = contract.currency, contract.student.name
    lines = []
    if preview.to_stripe:
        means = method_words(preview.stripe_method).lower() if preview.stripe_method else ""
        way = f"{student}'s {means}" if means and means != "—" else f"the way {student} paid"
        lines.append(
            f"{format_money(preview.to_stripe, currency)} goes back to {way}, "
            "through Stripe; Stripe's answer is shown on the next page."
        )
    if preview.offline:
        lines.append(
            f"{format_money(preview.offline, currency)} was paid offline: it is recorded as "
            f"given back at once, so hand it back to {student} yourself."
        )
    after = preview.after
    lines.append(
        f"Afterwards the contract keeps {format_money(after.kept, currency)} of what was paid: "
        f"{contract.coach.name} keeps {format_money(after.earning, currency)} and Coachpact "
        f"keeps {format_money(after.fee, currency)}."
    )
    return lines


def _standing(preview: refunds.RefundPreview) -> dict[str, str]:
    money, currency = preview.money, preview.contract.currency
    return {
        "Paid": format_money(money.paid, currency),
        "Refunded or on its way": format_money(money.refunded_or_pending, currency),
        "Still refundable": format_money(money.left, currency),
    }


def issue_refund(preview: refunds.RefundPreview, note: str) -> Confirmation:
    contract = preview.contract
    amount = format_money(preview.amount, contract.currency)
    return Confirmation(
        question=f"Refund {amount} to {contract.student.name}?",
        button=f"Refund {amount}",
        back=_contract_page(contract),
        figures={
            **_parties(contract),
            "Refund": _money(preview.amount, contract.currency),
            **_standing(preview),
            "Why (kept with the refund)": note.strip(),
        },
        happens=[
            *_refund_lines(preview),
            "The contract stays as it is unless everything paid goes back.",
        ],
        section="contracts",
    )


def approve_request(
    request: RefundRequest,
    quote: RefundQuote,
    preview: refunds.RefundPreview,
    override_reason: str,
) -> Confirmation:
    contract = preview.contract
    amount = format_money(preview.amount, contract.currency)
    figures = {
        "Request": f"#{request.id}: {request.category_label}",
        **_parties(contract),
        "Refund": _money(preview.amount, contract.currency),
        "Today's quote": f"{format_money(quote.amount, contract.currency)}. {quote.explanation}",
        **_standing(preview),
    }
    if request.offered_by_coach and request.offered_amount is not None:
        figures["Offered by the coach"] = _money(request.offered_amount, contract.currency)
    if override_reason.strip():
        figures["Why a different amount"] = override_reason.strip()
    return Confirmation(
        question=f"Approve request #{request.id} and refund {amount} to {contract.student.name}?",
        button=f"Approve and refund {amount}",
        back=url_for("admin.refunds_page", _anchor=f"request-{request.id}"),
        figures=figures,
        happens=[
            *_refund_lines(preview),
            f"The request is marked approved and {contract.student.name} is told.",
        ],
    )


def bulk_approval(requests: list[RefundRequest]) -> tuple[Confirmation, dict[int, int]]:
    """The ticked requests at today's quotes, and those quotes by request (for the service)."""
    items, quoted = [], {}
    totals: dict[str, int] = defaultdict(int)
    for request in requests:
        contract = request.contract
        money = refunds.refundable(contract)
        amount = refunds.proposed_amount(request, refunds.quote_now(contract, money).amount)
        refusal = (
            f"it was {request.status.value} already."
            if request.status is not RequestStatus.OPEN
            else refunds.preview_refund(contract, amount, money).refusal
        )
        if refusal is None:
            quoted[request.id] = amount
            totals[contract.currency] += amount
        items.append(Item(
            key=f"Request #{request.id}",
            contract=f"#{contract.id} “{contract.title}”",
            contract_url=url_for("admin.contract_detail", contract_id=contract.id),
            student=contract.student.name,
            coach=contract.coach.name,
            amount=_money(amount, contract.currency),
            refusal=refusal,
        ))
    count = len(quoted)
    many = f"{count} request{'' if count == 1 else 's'}"
    confirmation = Confirmation(
        question=f"Approve {many} at today's quotes and refund them?",
        button=f"Approve and refund {many}",
        back=url_for("admin.refunds_page"),
        figures={},
        items=items,
        totals=[_money(total, currency) for currency, total in sorted(totals.items())],
        happens=[
            "Each request is refunded at its quote, through Stripe (or recorded as given back "
            "by hand for a payment made offline), and its student is told.",
            "Each is decided on its own: one refused does not stop the others, and the next "
            "page says what happened to each.",
            *(["A request marked “Will not be approved” stays as it is."]
              if count < len(items) else []),
        ],
    )
    return confirmation, quoted


def cancel_with_refund(
    contract: Contract,
    quote: RefundQuote,
    money: Standing,
    reason: str,
    *,
    plan: bool = False,
) -> Confirmation:
    """The contract ends with the refund its policy gives now (`quote`, from `money`);
    `plan` when the admin cancels its payment plan (which ends the contract too)."""
    preview = refunds.preview_refund(contract, quote.amount, money) if quote.amount else None
    refund = format_money(quote.amount, contract.currency)
    figures = {
        **_parties(contract),
        "Refund under its policy": _money(quote.amount, contract.currency),
        "The policy says": quote.explanation,
    }
    if preview is not None:
        figures.update(_standing(preview))
    figures["Why (both parties see it)"] = reason.strip()
    happens = [
        f"“{contract.title}” ends now: its open sessions are cancelled and both "
        f"{contract.student.name} and {contract.coach.name} are told why.",
    ]
    if plan:
        happens.insert(0, "The payment plan ends: no unpaid instalment is charged any more.")
    happens += (
        _refund_lines(preview) if preview is not None
        else ["Nothing goes back: the refund policy gives nothing now."]
    )
    return Confirmation(
        question=(f"Cancel {'the plan of ' if plan else ''}“{contract.title}”"
                  + (f" and refund {refund} to {contract.student.name}?" if quote.amount
                     else " with no refund?")),
        button=f"Cancel the {'plan' if plan else 'contract'}"
        + (f" and refund {refund}" if quote.amount else ""),
        back=_contract_page(contract),
        figures=figures,
        happens=happens,
        danger=True,
        section="contracts",
    )


def manual_payment(
    contract: Contract,
    *,
    admin: User,
    method: ManualMethod,
    reference: str,
    received_on: date,
    instalments: int | None,
) -> Confirmation:
    amount = manual.amount_due(contract, instalments)
    money = format_money(amount, contract.currency)
    pays = (
        "The contract's whole total" if instalments is None
        else f"The deposit of a plan of {instalments} instalments"
    )
    happens = [
        f"{money} is recorded as received from {contract.student.name} by "
        f"{method.value.replace('_', ' ')}, recorded by {admin.name}; nothing is charged "
        "through Stripe.",
        f"The contract becomes active, its sessions open, and {contract.student.name} and "
        f"{contract.coach.name} are told.",
    ]
    if instalments is not None:
        happens.append("The plan starts: record each later instalment here when it arrives.")
    happens.append("The payment is never deleted; a mistake is undone by a refund.")
    return Confirmation(
        question=f"Record {money} received from {contract.student.name}?",
        button=f"Record {money} received",
        back=url_for("admin.contract_detail", contract_id=contract.id),
        figures={
            **_parties(contract),
            "Amount received": _money(amount, contract.currency),
            "What it pays": pays,
            "Paid by": method.value.replace("_", " ").capitalize(),
            "Reference": reference.strip(),
            "Received on": f"{received_on:%-d %B %Y}",
        },
        happens=happens,
        section="contracts",
    )


def offline_instalment(instalment: Instalment, reference: str, admin: User) -> Confirmation:
    """An instalment of a plan recorded as paid offline (`payments.plans`)."""
    contract = instalment.plan.contract
    money = format_money(instalment.amount, contract.currency)
    return Confirmation(
        question=f"Record instalment {instalment.number} of {money} received from "
        f"{contract.student.name}?",
        button=f"Record {money} received",
        back=url_for("admin.contract_detail", contract_id=contract.id, _anchor="payment-plan"),
        figures={
            **_parties(contract),
            "Amount received": _money(instalment.amount, contract.currency),
            "What it pays": f"Instalment {instalment.number}, due {instalment.due_on:%-d %B %Y}",
            "Reference": reference.strip(),
        },
        happens=[
            f"{money} is recorded as received from {contract.student.name} by bank transfer "
            f"today, recorded by {admin.name}; the instalment is not charged through Stripe.",
            "The contract's paid share grows, and with it the sessions it opens.",
            "The payment is never deleted; a mistake is undone by a refund.",
        ],
        section="contracts",
    )


def held_payment_refund(payment: Payment, amount: int, note: str) -> Confirmation:
    """A payment held for review, refused and given back in full (`payments.checkout.review`)."""
    contract = payment.contract
    money = format_money(amount, payment.currency)
    return Confirmation(
        question=f"Refuse payment #{payment.id} and refund {money} to {contract.student.name}?",
        button=f"Refund {money}",
        back=url_for("admin.reviews", _anchor=f"held-{payment.id}"),
        figures={
            "Payment": f"#{payment.id}, {format_money(payment.amount, payment.currency)} "
            "held for review",
            **_parties(contract),
            "Refund": _money(amount, payment.currency),
            "Why (kept with the decision)": note.strip(),
        },
        happens=[
            f"{money} goes back to {contract.student.name} in full, through Stripe.",
            "The payment does not count for the contract: it stays as it was, and both "
            "parties are told.",
        ],
        section="reviews",
    )


# --- a membership: end it now, pause or resume its collection -----------------------------


def _membership_parties(membership: Membership) -> dict[str, str]:
    student, coach = membership.student, membership.coach
    return {
        "Membership": f"#{membership.id} “{membership.title}”, {price_in_words(membership)}",
        "Student": f"{student.name} ({student.email})",
        "Coach": f"{coach.name} ({coach.email})",
    }


def _membership_page(membership: Membership) -> str:
    return url_for("admin.membership_detail", membership_id=membership.id,
                   _anchor="membership-actions")


def _day(moment: datetime | None) -> str:
    return localtime(moment, "%d %b %Y")


def end_membership(membership: Membership, refund: int, reason: str) -> Confirmation:
    """The membership ends now, with the running period's prorated refund, `refund`
    (`offers.membership_cancel.refund_preview`)."""
    student, money = membership.student.name, format_money(refund, membership.currency)
    return Confirmation(
        question=f"End “{membership.title}” now"
        + (f" and refund {money} to {student}?" if refund else " with no refund?"),
        button="End the membership now" + (f" and refund {money}" if refund else ""),
        back=_membership_page(membership),
        figures={
            **_membership_parties(membership),
            "Running period": f"{_day(membership.current_period_start)} – "
            f"{_day(membership.current_period_end)}",
            "Refund of the whole days left": _money(refund, membership.currency),
            "Why (both parties see it)": reason.strip(),
        },
        happens=[
            "Stripe cancels the subscription now: nothing more is charged.",
            "The running period's contract ends; sessions booked from now on are cancelled, "
            f"and those delivered stay paid to {membership.coach.name}.",
            f"{money} goes back to the card that paid the running period's invoice, through "
            "Stripe; Stripe's answer is shown on the next page." if refund
            else "Nothing goes back: nothing of the running period is refundable now.",
            f"{student} and {membership.coach.name} are told why, by mail too.",
        ],
        danger=True,
        section="memberships",
    )


def pause_membership(membership: Membership, periods: int, charged_on: datetime) -> Confirmation:
    """Collection paused for `periods` renewals (`offers.membership_changes.pause`)."""
    student, renewals = membership.student.name, f"{periods} renewal{'s' if periods != 1 else ''}"
    return Confirmation(
        question=f"Pause “{membership.title}” for {periods} period{'s' if periods != 1 else ''}?",
        button="Pause collection",
        back=_membership_page(membership),
        figures={
            **_membership_parties(membership),
            "Renewals not charged": f"the next {renewals}, from "
            f"{_day(membership.current_period_end)}",
            "Stripe charges again on": _day(charged_on),
        },
        happens=[
            f"Stripe voids the next {renewals}: {student} pays nothing and gets no new "
            f"sessions until {_day(charged_on)}, when Stripe charges again by itself.",
            "The running period keeps its sessions.",
            f"{student} and {membership.coach.name} are told.",
        ],
        section="memberships",
    )


def resume_membership(membership: Membership) -> Confirmation:
    """Collection resumes at the next renewal (`offers.membership_changes.resume`)."""
    return Confirmation(
        question=f"Resume collection of “{membership.title}”?",
        button="Resume collection",
        back=_membership_page(membership),
        figures={
            **_membership_parties(membership),
            "Paused until": _day(membership.paused_until),
            "Next renewal, charged": f"{_day(membership.current_period_end)}, "
            f"{_money(membership.price_per_period, membership.currency)}",
        },
        happens=[
            f"Stripe charges the next renewal again: {membership.student.name} pays "
            f"{format_money(membership.price_per_period, membership.currency)} on "
            f"{_day(membership.current_period_end)} and gets that period's sessions.",
            f"{membership.student.name} and {membership.coach.name} are told.",
        ],
        section="memberships",
    )
