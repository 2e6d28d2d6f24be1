from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from contracts import lists, services
from contracts.forms import CancelContractForm, ConfirmForm, ProposalForm, TermsForm
from contracts.models import Contract, ProposalStatus
from contracts.money import CURRENCY_DECIMALS, MoneyError, currency_symbol
from extensions import db

bp = Blueprint("contracts", __name__, url_prefix="/contracts")

# What packages above contracts add to the contract page (scheduling: its sessions), each
# a function of the contract returning template variables; their init_app registers them.
DETAIL_SECTIONS: list[Callable[[Contract], dict[str, Any]]] = []


@bp.before_request
@login_required
def require_login() -> None:
    """Every page here is for logged-in users only."""


@bp.get("/")
def index() -> str | Response:
    if current_user.is_admin:
        return redirect(url_for("admin.dashboard"))  # an admin's home is the console
    status = request.args.get("status", "all")
    if status not in lists.CONTRACT_FILTERS:
        status = "all"
    search = request.args.get("q", "")[:100]
    return render_template(
        "contracts/index.html",
        contracts=lists.contracts_page(
            current_user, status=status, search=search, page=request.args.get("page", 1, int)
        ),
        filters=lists.CONTRACT_FILTERS,
        status=status,
        search=search.strip(),
        open_proposals=lists.open_proposals_of(current_user),
        closed_proposals=lists.closed_proposals_of(current_user),
        shown_status=services.shown_status,
    )


@bp.route("/proposals/new", methods=["GET", "POST"])
def new_proposal() -> str | Response:
    if not current_user.is_coach:
        abort(403)
    form = ProposalForm()
    if form.validate_on_submit():
        deposit_percent, max_instalments = form.plan_terms
        try:
            proposal = services.send_proposal(
                current_user,
                student_email=form.student_email.data,
                title=form.title.data,
                description=form.description.data,
                session_count=form.session_count.data,
                minutes_per_session=form.minutes_per_session.data,
                price_per_session=form.price_minor,
                currency=form.currency.data,
                plan_deposit_percent=deposit_percent,
                plan_max_instalments=max_instalments,
            )
        except services.ProposalError as exc:
            form.student_email.errors.append(str(exc))
        except MoneyError as exc:
            form.price_per_session.errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"Proposal sent to {proposal.student.name}.", "success")
            return redirect(url_for("contracts.proposal", proposal_id=proposal.id))
    return _proposal_form_page(form)


def _proposal_form_page(form: ProposalForm) -> str:
    return terms_form_page(form)


def terms_form_page(form: TermsForm, **page: Any) -> str:
    """The terms form (a proposal's, or an offer's with `page` naming its heading, intro
    and button) with what its terms come to; the page's script keeps that live as they
    change."""
    terms = form.typed_terms()
    currency = form.currency.data if form.currency.data in CURRENCY_DECIMALS else "usd"
    return render_template(
        "contracts/proposal_form.html",
        form=form,
        page=page,
        preview=services.preview_terms(**terms) if terms else None,
        fee_rule=services.fee_rule(),
        currency=currency,
        symbol=currency_symbol(currency),
        least_fee=services.least_fee(currency),
    )


@bp.get("/proposals/<int:proposal_id>")
def proposal(proposal_id: int) -> str:
    found = services.proposal_for_party(proposal_id, current_user)
    return render_template(
        "contracts/proposal.html",
        proposal=found,
        form=ConfirmForm(),
        split=services.fee_quote(
            price_per_session=found.price_per_session,
            session_count=found.session_count,
            currency=found.currency,
        ),
        ProposalStatus=ProposalStatus,
        expired=services.proposal_expired(found),
    )


def _answer(
    proposal_id: int, action: Callable, done: str, then: Callable[[Any], str] | None = None
) -> Response:
    """Run one proposal answer; refusals come back as a message, never a partial change."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        result = action(proposal_id, current_user)
    except services.NotAllowed:
        abort(403)
    except (services.TransitionError, MoneyError) as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("contracts.proposal", proposal_id=proposal_id))
    db.session.commit()
    flash(done, "success")
    if then is not None:
        return redirect(then(result))
    return redirect(url_for("contracts.proposal", proposal_id=proposal_id))


@bp.post("/proposals/<int:proposal_id>/accept")
def accept(proposal_id: int) -> Response:
    return _answer(
        proposal_id,
        services.accept_proposal,
        "Proposal accepted. One step left: pay for it.",
        then=lambda contract: url_for("payments.pay", contract_id=contract.id),
    )


@bp.post("/proposals/<int:proposal_id>/decline")
def decline(proposal_id: int) -> Response:
    return _answer(proposal_id, services.decline_proposal, "Proposal declined.")


@bp.post("/proposals/<int:proposal_id>/withdraw")
def withdraw(proposal_id: int) -> Response:
    return _answer(proposal_id, services.withdraw_proposal, "Proposal withdrawn.")


def _detail_page(contract: Contract, cancel_form: CancelContractForm | None = None) -> str:
    """The contract page; the cancel form only while the contract can be cancelled."""
    if services.cancel_refusal(contract) is None:
        cancel_form = cancel_form or CancelContractForm(formdata=None)
    else:
        cancel_form = None
    return render_template(
        "contracts/detail.html",
        contract=contract,
        cancel_form=cancel_form,
        **{name: value for section in DETAIL_SECTIONS for name, value in section(contract).items()},
    )


@bp.get("/<int:contract_id>")
def detail(contract_id: int) -> str:
    return _detail_page(services.contract_for_party(contract_id, current_user))


@bp.post("/<int:contract_id>/cancel")
def cancel(contract_id: int) -> str | Response:
    contract = services.contract_for_party(contract_id, current_user)
    form = CancelContractForm()
    # A contract that cannot be cancelled gets its refusal below, whatever the form holds.
    if services.cancel_refusal(contract) is None and not form.validate_on_submit():
        return _detail_page(contract, cancel_form=form)
    try:
        services.cancel_contract(contract_id, current_user, reason=form.reason.data or "")
    except services.TransitionError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
    else:
        db.session.commit()
        flash("Contract cancelled. The other party has been told.", "success")
    return redirect(url_for("contracts.detail", contract_id=contract_id))
