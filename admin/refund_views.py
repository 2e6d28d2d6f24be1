"""Admin: money back. Refund requests (one by one or in bulk), refunds, disputes, and a
contract's cancellation with a refund or an admin's own refund.

Each decision commits once; a refund is then sent to Stripe at once (`send_refund`)
so the admin reads Stripe's answer on the next page. When Stripe cannot be reached
the refund stays recorded as pending, and its job and the sweep send it later.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

import clock
from admin import confirm, restate
from admin import queries_refunds as queries
from admin.forms import (
    ApproveRequestForm,
    BulkDecisionForm,
    CancelWithRefundForm,
    IssueRefundForm,
    RejectRequestForm,
    amount_text,
)
from admin.listing import enum_arg
from admin.people_views import render_contract
from admin.views import bp
from contracts.models import Contract
from database.transactions import commit_or_refusal
from extensions import db
from payments import refunds
from payments.models import Refund, RefundRequest, RefundStatus, RequestStatus

# --- refund requests -----------------------------------------------------------------------


@bp.get("/refunds")
def refunds_page() -> str:
    return _requests_page()


def _requests_page(
    refused: ApproveRequestForm | RejectRequestForm | None = None,
    bulk: BulkDecisionForm | None = None,
) -> str:
    """The open requests, each with its forms; a refused form is shown with its errors."""
    rows, total = queries.open_requests()
    approve: dict[int, ApproveRequestForm] = {}
    reject: dict[int, RejectRequestForm] = {}
    for row in rows:
        r = row.request
        proposed = r.offered_amount if r.offered_by_coach else row.quote.amount
        approve[r.id] = ApproveRequestForm(
            formdata=None,
            request_id=r.id,
            # A coach's offer is approved at what they offered; a request at today's quote.
            amount=amount_text(proposed, r.contract.currency) if proposed else "",
        )
        reject[r.id] = RejectRequestForm(formdata=None, request_id=r.id)
    if refused is not None:
        forms: dict[int, Any] = approve if isinstance(refused, ApproveRequestForm) else reject
        if refused.request_id.data in forms:
            forms[refused.request_id.data] = refused
        else:  # decided meanwhile: no longer listed, so its errors are said up top
            for error in _errors(refused):
                flash(error, "warning")
    return render_template(
        "admin/refunds.html",
        section="refunds",
        rows=rows,
        total=total,
        approve_forms=approve,
        reject_forms=reject,
        bulk=bulk or BulkDecisionForm(formdata=None),
    )


def _errors(form: FlaskForm) -> list[str]:
    """Every error of the form, its own (the service's refusal) and its fields'."""
    return [error for errors in form.errors.values() for error in errors]


def _request_or_404(request_id: int | None) -> RefundRequest:
    found = db.session.get(RefundRequest, request_id) if request_id else None
    if found is None:
        abort(404)
    return found


def send_and_tell(refund_id: int) -> None:
    """Ask Stripe now and flash its answer (a refund Stripe could not take yet is swept).

    After every refund decided in the console: requests, contracts, plans.
    """
    sent = refunds.send_now(refund_id)
    if sent.status is RefundStatus.FAILED:
        category = "danger"
    elif sent.stripe_refund_id is None:
        category = "warning"
    else:
        category = "success"
    flash(refunds.describe(sent), category)


@bp.post("/refunds/approve")
def refund_approve() -> str | Response:
    form = ApproveRequestForm()
    wanted = _request_or_404(form.request_id.data)
    contract = wanted.contract
    form.currency = contract.currency
    if form.validate_on_submit():
        assert form.minor_amount is not None  # set by a valid form
        reason = form.override_reason.data or ""
        money = refunds.refundable(contract)
        quote = refunds.quote_now(contract, money)
        proposed = refunds.proposed_amount(wanted, quote.amount)
        preview = refunds.preview_refund(contract, form.minor_amount, money)
        refused = _request_refusal(wanted) or refunds.override_refusal(
            contract, proposed, form.minor_amount, reason, request=wanted) or preview.refusal
        if refused is None:
            page = confirm.ask(restate.approve_request(wanted, quote, preview, reason))
            if page is not None:
                return page
            refund_id, refused = commit_or_refusal(
                lambda: refunds.approve_request(
                    wanted.id, current_user, amount=preview.amount, override_reason=reason,
                    quoted=proposed,
                ).id,
                refunds.RefundRefused,
            )
            if refused is None and refund_id is not None:
                send_and_tell(refund_id)
                return redirect(url_for("admin.refunds_page"))
        form.form_errors.append(refused or "")
    return _requests_page(refused=form)


def _request_refusal(wanted: RefundRequest) -> str | None:
    if wanted.status is not RequestStatus.OPEN:
        return f"Request #{wanted.id} was {wanted.status.value} already; nothing was done."
    return None


@bp.post("/refunds/reject")
def refund_reject() -> str | Response:
    form = RejectRequestForm()
    wanted = _request_or_404(form.request_id.data)
    if form.validate_on_submit():
        _, refused = commit_or_refusal(
            lambda: refunds.reject_request(wanted.id, current_user, note=form.note.data or ""),
            refunds.RefundRefused,
        )
        if refused:
            form.form_errors.append(refused)
        else:
            flash(f"Request #{wanted.id} rejected; the student was told why.", "success")
            return redirect(url_for("admin.refunds_page"))
    return _requests_page(refused=form)


@bp.post("/refunds/decide")
def refund_decide_many() -> str | Response:
    """Approve or reject the ticked requests; the results page says what happened to each.

    Rendered in answer to the POST (no redirect): the service committed each
    request already, and pressing reload again only reports them decided.
    """
    form = BulkDecisionForm()
    if not form.validate_on_submit():
        return _requests_page(bulk=form)
    approve = bool(form.approve.data)
    ids = list(dict.fromkeys(form.request_ids.data or []))
    quoted = None
    if approve:
        ticked = queries.requests_by_id(ids)
        confirmation, quoted = restate.bulk_approval([ticked[i] for i in ids if i in ticked])
        page = confirm.ask(confirmation)
        if page is not None:
            return page
    outcomes = refunds.decide_many(
        ids, current_user, approve=approve, note=form.note.data or "", quoted=quoted
    )
    return render_template(
        "admin/refunds_results.html",
        section="refunds",
        approve=approve,
        outcomes=outcomes,
        requests=queries.requests_by_id([o.request_id for o in outcomes]),
    )


@bp.get("/refunds/all")
def refund_list() -> str:
    status = enum_arg(request.args, "status", RefundStatus)
    return render_template(
        "admin/refunds_list.html",
        section="refunds",
        refunds=queries.recent_refunds(status),
        status=status,
        statuses=list(RefundStatus),
        shown=queries.REFUNDS_SHOWN,
    )


# --- disputes ------------------------------------------------------------------------------


@bp.get("/disputes")
def disputes_page() -> str:
    return render_template(
        "admin/disputes.html",
        section="disputes",
        open_rows=queries.open_dispute_rows(clock.now()),
        closed=queries.closed_disputes(),
    )


# --- a contract: cancel with a refund, or an admin's own refund ---------------------------


def _back_to(contract_id: int) -> Response:
    return redirect(url_for("admin.contract_detail", contract_id=contract_id, _anchor="money-back"))


@bp.post("/contracts/<int:contract_id>/cancel-with-refund")
def contract_cancel_with_refund(contract_id: int) -> str | Response:
    contract = db.get_or_404(Contract, contract_id)
    form = CancelWithRefundForm()
    if form.validate_on_submit():
        reason = form.reason.data or ""
        money = refunds.refundable(contract)
        quote = refunds.quote_now(contract, money)
        refused = refunds.cancel_refusal(contract, money, quote.amount)
        if refused is None:
            page = confirm.ask(restate.cancel_with_refund(contract, quote, money, reason))
            if page is not None:
                return page
            refund_id, refused = commit_or_refusal(
                lambda: _id_or_none(refunds.cancel_active_contract(
                    contract.id, current_user, reason=reason, quoted=quote.amount
                )),
                refunds.RefundRefused,
            )
        if refused is None:
            flash("The contract is cancelled; both parties were told.", "success")
            if refund_id is None:
                flash("Its refund policy gives nothing back now, so no refund was made.", "info")
            else:
                send_and_tell(refund_id)
            return _back_to(contract.id)
        form.form_errors.append(refused)
    return render_contract(contract, cancel_form=form)


def _id_or_none(refund: Refund | None) -> int | None:
    return refund.id if refund is not None else None


@bp.post("/contracts/<int:contract_id>/refund")
def contract_refund(contract_id: int) -> str | Response:
    contract = db.get_or_404(Contract, contract_id)
    form = IssueRefundForm(currency=contract.currency)
    if form.validate_on_submit():
        assert form.minor_amount is not None  # set by a valid form
        amount, note = form.minor_amount, form.note.data or ""
        preview = refunds.preview_refund(contract, amount)
        refused = preview.refusal
        if refused is None:
            page = confirm.ask(restate.issue_refund(preview, note))
            if page is not None:
                return page
            refund_id, refused = commit_or_refusal(
                lambda: refunds.refund_contract(
                    contract.id, current_user, amount=amount, note=note
                ).id,
                refunds.RefundRefused,
            )
            if refused is None and refund_id is not None:
                send_and_tell(refund_id)
                return _back_to(contract.id)
        form.form_errors.append(refused or "")
    return render_contract(contract, refund_form=form)
