"""Connect's hosted pages: the onboarding page an Account Link opens, and the small Express
Dashboard a login link opens (plain HTML forms, like the checkout page)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, current_app, redirect, render_template, request
from werkzeug.wrappers import Response

from sandbox.errors import StripeError

if TYPE_CHECKING:
    from sandbox.app import Sandbox

bp = Blueprint("connect", __name__, url_prefix="/connect")


def sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


@bp.get("/onboarding/<token>")
def onboarding(token: str) -> Response | str:
    """An Account Link: single use and valid five minutes; otherwise the browser goes to
    the link's refresh_url, where the platform makes a new one."""
    try:
        link, account = sandbox().engine.open_onboarding(token)
    except StripeError:
        abort(404)
    if account is None:
        return redirect(link["refresh_url"], 303)
    return render_template("onboarding.html", account=account, link=link,
                           merchant=sandbox().settings.merchant_name)


@bp.post("/onboarding/<token>")
def finish_onboarding(token: str) -> Response:
    """The form's buttons: action=complete submits everything onboarding asks for; any
    other action leaves unfinished. Both go back to return_url."""
    try:
        url = sandbox().engine.finish_onboarding(token, request.form.get("action") == "complete")
    except StripeError:
        abort(404)
    return redirect(url, 303)


@bp.get("/express/<token>")
def express_dashboard(token: str) -> str:
    """What a login link opens: the account's balance, transfers and payouts."""
    engine = sandbox().engine
    try:
        account = engine.login_link_account(token)
    except StripeError:
        abort(404)
    store = sandbox().store
    transfers, _ = store.page("transfer", where="parent = ?", args=[account["id"]], limit=100)
    payouts, _ = store.page("payout", where="parent = ?", args=[account["id"]], limit=100)
    balance: dict[str, Any] = engine.balance(account["id"])
    return render_template("express.html", account=account, balance=balance,
                           transfers=transfers, payouts=payouts,
                           merchant=sandbox().settings.merchant_name)
