"""Contracts and users as the console sees them: every one, searchable, with its file."""

from __future__ import annotations

from flask import render_template, request

import clock
from accounts.models import Role, User
from admin import queries_people, queries_refunds
from admin.forms import CancelWithRefundForm, IssueRefundForm, amount_text, plan_forms
from admin.listing import int_arg
from admin.views import bp
from contracts.models import Contract, ContractStatus, PaymentStatus
from extensions import db
from offers.models import Offer
from offers.services import offers_of, price_of
from payments import plans


@bp.get("/contracts")
def contracts() -> str:
    filters = queries_people.ContractFilters.from_args(request.args)
    after = int_arg(request.args, "after")
    return render_template(
        "admin/contracts.html",
        filters=filters,
        page=queries_people.contract_page(filters, after),
        after=after,
        party=db.session.get(User, filters.user_id) if filters.user_id else None,
        currencies=queries_people.contract_currencies(),
        statuses=list(ContractStatus),
        payment_statuses=list(PaymentStatus),
    )


@bp.get("/contracts/<int:contract_id>")
def contract_detail(contract_id: int) -> str:
    return render_contract(db.get_or_404(Contract, contract_id))


def render_contract(
    contract: Contract,
    *,
    cancel_form: CancelWithRefundForm | None = None,
    refund_form: IssueRefundForm | None = None,
) -> str:
    """The contract's page; a refused money-back form is shown again with its errors."""
    money_back = queries_refunds.contract_money_back(contract)
    plan = plans.plan_of(contract.id)  # its "Payment plan" section (admin.plan_views)
    if refund_form is None:
        prefill = money_back.quote.amount or money_back.money.left
        refund_form = IssueRefundForm(
            formdata=None, amount=amount_text(prefill, contract.currency) if prefill else ""
        )
    return render_template(
        "admin/contract_detail.html",
        file=queries_people.contract_file(contract),
        money_back=money_back,
        cancel_form=cancel_form if cancel_form is not None else CancelWithRefundForm(formdata=None),
        refund_form=refund_form,
        plan=plan,
        plan_forms=plan_forms() if plan is not None else None,
        offer=db.session.get(Offer, contract.offer_id) if contract.offer_id else None,
        today=clock.now().date(),
    )


@bp.get("/users")
def users() -> str:
    filters = queries_people.UserFilters.from_args(request.args)
    after = int_arg(request.args, "after")
    # One coach's page (the audit log and the contract page link here): their offers too.
    one = db.session.get(User, filters.user_id) if filters.user_id else None
    offers = offers_of(one) if one is not None and one.is_coach else None
    return render_template(
        "admin/users.html",
        filters=filters,
        page=queries_people.user_page(filters, after),
        after=after,
        roles=list(Role),
        coach=one if offers is not None else None,
        offers=offers,
        prices={offer.id: price_of(offer) for offer in offers or []},
    )
