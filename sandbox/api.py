"""The Stripe REST API subset under /v1, with Stripe's auth, errors, lists and idempotency."""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, g, request

from sandbox import params as p
from sandbox import shapes
from sandbox.engine import EVIDENCE_FILES
from sandbox.errors import ParamError, StripeError, not_found

if TYPE_CHECKING:
    from sandbox.app import Sandbox

bp = Blueprint("api", __name__, url_prefix="/v1")

IDEMPOTENCY_TTL = 24 * 3600

CUSTOMER_CREATE = {
    "email": p.Str(max_length=512), "name": p.Str(max_length=256), "phone": p.Str(max_length=20),
    "description": p.Str(), "metadata": p.Metadata(), "test_clock": p.Str(), "expand": p.EXPAND,
}
CUSTOMER_UPDATE = {
    **{k: v for k, v in CUSTOMER_CREATE.items() if k != "test_clock"},
    "metadata": p.Metadata(unset=True),
    "invoice_settings": p.Obj({"default_payment_method": p.Unsettable()}),
}
PRODUCT_DATA = p.Obj({"name": p.Str(required=True), "description": p.Str(),
                      "metadata": p.Metadata(), "images": p.List(p.Str(), max_items=8)})
RECURRING = p.Obj({"interval": p.Enum("day", "week", "month", "year", required=True),
                   "interval_count": p.Int(minimum=1), "usage_type": p.Enum("licensed")})
PRICE_DATA = p.Obj({
    "currency": p.Str(required=True), "product": p.Str(), "product_data": PRODUCT_DATA,
    "unit_amount": p.Int(minimum=0, maximum=99_999_999), "unit_amount_decimal": p.Str(),
    "tax_behavior": p.Enum("exclusive", "inclusive", "unspecified"), "recurring": RECURRING,
})
SESSION_CREATE = {
    "mode": p.Enum("payment", "setup", "subscription", required=True),
    "line_items": p.List(p.Obj({"price": p.Str(), "price_data": PRICE_DATA,
                                "quantity": p.Int(minimum=1, maximum=999_999)})),
    "customer": p.Str(), "customer_email": p.Str(max_length=800),
    "client_reference_id": p.Str(max_length=200), "metadata": p.Metadata(),
    "currency": p.Str(),
    "payment_intent_data": p.Obj({"metadata": p.Metadata(), "description": p.Str(),
                                  "receipt_email": p.Str(),
                                  "setup_future_usage": p.Enum("off_session", "on_session"),
                                  "transfer_group": p.Str()}),
    "setup_intent_data": p.Obj({"metadata": p.Metadata(), "description": p.Str()}),
    "success_url": p.Str(), "cancel_url": p.Str(), "expires_at": p.Int(),
    "allow_promotion_codes": p.Bool(), "locale": p.Str(),
    "payment_method_types": p.List(p.Enum("card", "us_bank_account")),
    "submit_type": p.Enum("auto", "book", "donate", "pay"),
    "subscription_data": p.Obj({"metadata": p.Metadata(), "description": p.Str(max_length=500)}),
    "expand": p.EXPAND,
}
SESSION_LIST = {**p.PAGINATION, "customer": p.Str(), "payment_intent": p.Str(),
                "status": p.Enum("complete", "expired", "open"), "created": p.Created()}
REFUND_CREATE = {
    "payment_intent": p.Str(), "charge": p.Str(), "amount": p.Int(),
    "reason": p.Enum("duplicate", "fraudulent", "requested_by_customer"),
    "metadata": p.Metadata(), "expand": p.EXPAND,
}
REFUND_LIST = {**p.PAGINATION, "charge": p.Str(), "payment_intent": p.Str(),
               "created": p.Created()}
DISPUTE_LIST = {**p.PAGINATION, "charge": p.Str(), "payment_intent": p.Str(),
                "created": p.Created()}
# Dispute.evidence: text (Stripe allows 20,000 characters for the explanations) or the id of
# a file upload.
_EXPLANATIONS = ("access_activity_log", "cancellation_policy_disclosure", "cancellation_rebuttal",
                 "duplicate_charge_explanation", "product_description",
                 "refund_policy_disclosure", "refund_refusal_explanation", "uncategorized_text")
_SHORT_TEXT = ("billing_address", "customer_email_address", "customer_name",
               "customer_purchase_ip", "duplicate_charge_id", "service_date", "shipping_address",
               "shipping_carrier", "shipping_date", "shipping_tracking_number")
EVIDENCE = p.Obj({
    **{name: p.Str(max_length=20_000) for name in _EXPLANATIONS},
    **{name: p.Str() for name in _SHORT_TEXT},
    **{name: p.Str() for name in sorted(EVIDENCE_FILES)},
})
DISPUTE_UPDATE = {"evidence": EVIDENCE, "metadata": p.Metadata(unset=True), "submit": p.Bool(),
                  "expand": p.EXPAND}
PAYMENT_INTENT_CREATE = {
    "amount": p.Int(required=True), "currency": p.Str(required=True), "customer": p.Str(),
    "payment_method": p.Str(), "confirm": p.Bool(),
    "off_session": p.BoolOr("one_off", "recurring"),
    "setup_future_usage": p.Enum("off_session", "on_session"),
    "payment_method_types": p.List(p.Enum("card")),
    "automatic_payment_methods": p.Obj({"enabled": p.Bool(required=True),
                                        "allow_redirects": p.Enum("always", "never")}),
    "description": p.Str(max_length=1000), "metadata": p.Metadata(), "receipt_email": p.Str(),
    "transfer_group": p.Str(), "return_url": p.Str(), "expand": p.EXPAND,
}
PAYMENT_INTENT_CONFIRM = {
    "payment_method": p.Str(), "off_session": p.BoolOr("one_off", "recurring"),
    "return_url": p.Str(), "expand": p.EXPAND,
}
PAYMENT_INTENT_CANCEL = {
    "cancellation_reason": p.Enum("abandoned", "duplicate", "fraudulent",
                                  "requested_by_customer"),
    "expand": p.EXPAND,
}
PAYMENT_INTENT_LIST = {**p.PAGINATION, "customer": p.Str(), "created": p.Created()}
CUSTOMER_PAYMENT_METHODS = {**p.PAGINATION, "type": p.Str(),
                            "allow_redisplay": p.Enum("always", "limited", "unspecified")}
PAYMENT_METHOD_LIST = {**p.PAGINATION, "customer": p.Str(), "type": p.Str()}
PAYMENT_METHOD_ATTACH = {"customer": p.Str(required=True), "expand": p.EXPAND}
SETUP_INTENT_LIST = {**p.PAGINATION, "customer": p.Str(), "payment_method": p.Str(),
                     "created": p.Created()}
EVENT_LIST = {**p.PAGINATION, "type": p.Str(), "types": p.List(p.Str(), max_items=20),
              "created": p.Created(), "delivery_success": p.Bool()}
RETRIEVE: dict[str, p.Field] = {"expand": p.EXPAND}
_CAPABILITY = p.Obj({"requested": p.Bool()})
CAPABILITIES = p.Obj({"transfers": _CAPABILITY, "card_payments": _CAPABILITY})
BUSINESS_PROFILE = p.Obj({
    "name": p.Str(), "url": p.Str(), "product_description": p.Str(max_length=40_000),
    "mcc": p.Str(), "support_email": p.Str(), "support_phone": p.Str(), "support_url": p.Str(),
})
ACCOUNT_CREATE = {
    "controller": p.Obj({
        "fees": p.Obj({"payer": p.Enum("account", "application")}),
        "losses": p.Obj({"payments": p.Enum("application", "stripe")}),
        "requirement_collection": p.Enum("application", "stripe"),
        "stripe_dashboard": p.Obj({"type": p.Enum("express", "full", "none")}),
    }),
    "type": p.Enum("custom", "express", "standard"),  # deprecated: use controller
    "country": p.Str(max_length=2), "email": p.Str(), "default_currency": p.Str(),
    "business_type": p.Enum("company", "government_entity", "individual", "non_profit"),
    "business_profile": BUSINESS_PROFILE, "capabilities": CAPABILITIES,
    "metadata": p.Metadata(), "expand": p.EXPAND,
}
ACCOUNT_UPDATE = {"email": p.Str(), "business_profile": BUSINESS_PROFILE,
                  "capabilities": CAPABILITIES, "metadata": p.Metadata(unset=True),
                  "expand": p.EXPAND}
ACCOUNT_LIST = {**p.PAGINATION, "created": p.Created()}
ACCOUNT_LINK_CREATE = {
    "account": p.Str(required=True),
    "type": p.Enum("account_onboarding", "account_update", required=True),
    "refresh_url": p.Str(), "return_url": p.Str(),
    "collect": p.Enum("currently_due", "eventually_due"),
    "collection_options": p.Obj({"fields": p.Enum("currently_due", "eventually_due"),
                                 "future_requirements": p.Enum("include", "omit")}),
    "expand": p.EXPAND,
}
TRANSFER_CREATE = {
    "amount": p.Int(required=True), "currency": p.Str(required=True),
    "destination": p.Str(required=True), "transfer_group": p.Str(),
    "source_transaction": p.Str(), "source_type": p.Enum("bank_account", "card", "fpx"),
    "description": p.Str(), "metadata": p.Metadata(), "expand": p.EXPAND,
}
TRANSFER_UPDATE = {"description": p.Str(), "metadata": p.Metadata(unset=True),
                   "expand": p.EXPAND}
TRANSFER_LIST = {**p.PAGINATION, "destination": p.Str(), "transfer_group": p.Str(),
                 "created": p.Created()}
# refund_application_fee is accepted and ignored (separate charges and transfers take no
# application fee).
REVERSAL_CREATE = {"amount": p.Int(), "description": p.Str(), "metadata": p.Metadata(),
                   "refund_application_fee": p.Bool(), "expand": p.EXPAND}
PAYOUT_LIST = {**p.PAGINATION, "status": p.Str(), "created": p.Created()}
BALANCE_TRANSACTION_LIST = {**p.PAGINATION, "type": p.Str(), "source": p.Str(),
                            "payout": p.Str(), "currency": p.Str(), "created": p.Created()}
# Views that act for a connected account named by the Stripe-Account header (the SDK sends
# it for the `stripe_account` request option); elsewhere the sandbox refuses the header.
CONNECTED_ACCOUNT_VIEWS = frozenset({"get_balance", "list_payouts", "get_payout",
                                     "list_balance_transactions", "get_balance_transaction",
                                     "list_events", "get_event"})


def sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, indent=2), status, mimetype="application/json")


def _authenticate() -> str:
    header = request.headers.get("Authorization", "")
    key = ""
    if header.startswith("Bearer "):
        key = header[len("Bearer "):].strip()
    elif request.authorization and request.authorization.type == "basic":
        key = request.authorization.username or ""  # curl -u sk_test_...:
    if not key:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details.",
            status=401, store_idempotent=False)
    if not key.startswith("sk_test_") or len(key) <= len("sk_test_"):
        masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
        raise StripeError(f"Invalid API Key provided: {masked}", status=401,
                          store_idempotent=False)
    return key


def _check_stripe_account(api_key: str, view: str) -> None:
    """The Stripe-Account header: an existing connected account (403 otherwise, as Stripe
    answers a key without access to it), on the views that support it."""
    account_id = request.headers.get("Stripe-Account")
    if not account_id:
        return
    if view not in CONNECTED_ACCOUNT_VIEWS:
        raise StripeError("The sandbox supports the Stripe-Account header only on "
                          "GET /v1/balance, GET /v1/balance_transactions[/{id}], "
                          "GET /v1/payouts[/{id}] and GET /v1/events[/{id}].",
                          store_idempotent=False)
    if sandbox().store.get(account_id, "account") is None:
        masked = api_key[:8] + "*" * max(len(api_key) - 12, 0) + api_key[-4:]
        raise StripeError(f"The provided key '{masked}' does not have access to account "
                          f"'{account_id}' (or that account does not exist). Application "
                          "access may have been revoked.", status=403, code="account_invalid",
                          store_idempotent=False)


def _connected_account() -> str | None:
    return request.headers.get("Stripe-Account") or None


def _params() -> dict[str, Any]:
    source = request.form if request.method == "POST" else request.args
    return p.decode(source.items(multi=True))


def _request_info() -> tuple[str, str | None]:
    return g.request_id, request.headers.get("Idempotency-Key")


def endpoint(fn: Callable[..., dict[str, Any]]) -> Callable[..., Response]:
    """Run a view the way Stripe's API does: auth, error envelope, Idempotency-Key replay."""

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Response:
        g.request_id = "req_" + secrets.token_hex(7)
        try:
            api_key = _authenticate()
            _check_stripe_account(api_key, fn.__name__)
            key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
            if key:
                return _idempotent(api_key, key, fn, kwargs)
            body, status = _run(fn, kwargs)
        except StripeError as exc:
            body, status = exc.body(), exc.status
        return _finish(_json(body, status))

    return wrapper


def _run(fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> tuple[dict, int]:
    result = fn(**kwargs)
    return result, 200


def _finish(response: Response) -> Response:
    response.headers["Request-Id"] = g.request_id
    response.headers["Stripe-Version"] = request.headers.get("Stripe-Version",
                                                             shapes.API_VERSION)
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="Stripe"'
    return response


def _idempotent(api_key: str, key: str, fn: Callable[..., dict[str, Any]],
                kwargs: dict[str, Any]) -> Response:
    """Stripe's Idempotency-Key: same key and parameters replay the saved response."""
    if len(key) > 255:
        raise ParamError("Idempotency-Key must be at most 255 characters.", None)
    store = sandbox().store
    fingerprint = json.dumps(sorted(request.form.items(multi=True)))
    with store.transaction():
        store.execute("DELETE FROM idempotency_keys WHERE created < ?",
                      (time.time() - IDEMPOTENCY_TTL,))
        rows = store.query("SELECT * FROM idempotency_keys WHERE api_key = ? AND key = ?",
                           (api_key, key))
        if not rows:
            store.execute(
                "INSERT INTO idempotency_keys (api_key, key, method, path, params, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (api_key, key, request.method, request.path, fingerprint, time.time()))
    if rows:
        row = rows[0]
        if (row["method"], row["path"], row["params"]) != (request.method, request.path,
                                                           fingerprint):
            raise StripeError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.", type_="idempotency_error",
                store_idempotent=False)
        if row["status_code"] is None:
            raise StripeError(
                "There is currently another in-progress request using this Stripe API key and "
                "idempotency key (that is, the same `Idempotency-Key` header). Please try again "
                "later.", status=409, type_="idempotency_error", store_idempotent=False)
        response = _finish(Response(row["body"], row["status_code"],
                                    mimetype="application/json"))
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Idempotency-Key"] = key
        return response
    try:
        body, status = _run(fn, kwargs)
    except StripeError as exc:
        body, status = exc.body(), exc.status
        if not exc.store_idempotent:
            # Parameters failed validation: nothing ran, the key stays free (as on Stripe).
            store.execute("DELETE FROM idempotency_keys WHERE api_key = ? AND key = ?",
                          (api_key, key))
            return _finish(_json(body, status))
    except BaseException:
        store.execute("DELETE FROM idempotency_keys WHERE api_key = ? AND key = ?",
                      (api_key, key))
        raise
    text = json.dumps(body, indent=2)
    store.execute("UPDATE idempotency_keys SET status_code = ?, body = ? WHERE api_key = ? "
                  "AND key = ?", (status, text, api_key, key))
    response = _finish(Response(text, status, mimetype="application/json"))
    response.headers["Idempotency-Key"] = key
    return response


# -- expansion and lists ---------------------------------------------------------


def expand(obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    for path in paths:
        parts = path.split(".")
        if len(parts) > 4:
            raise ParamError(f"You cannot expand more than 4 levels of a property ({path}).",
                             "expand")
        _expand(obj, parts, path)
    return obj


def _expand(obj: dict[str, Any], parts: list[str], path: str) -> None:
    head, rest = parts[0], parts[1:]
    if obj.get("object") == "list" and head == "data" and rest:
        for item in obj["data"]:
            _expand(item, rest, path)
        return
    if head == "line_items" and obj.get("object") == "checkout.session" and not rest:
        items = sandbox().engine.line_items(obj["id"])
        obj["line_items"] = shapes.list_envelope(
            items, f"/v1/checkout/sessions/{obj['id']}/line_items", False)
        return
    if head == "payments" and obj.get("object") == "invoice":
        # Since API version 2025-03-31 an invoice's payments are listed only on request.
        payments = sandbox().store.children(obj["id"], "invoice_payment")
        obj["payments"] = shapes.list_envelope(
            list(reversed(payments)), f"/v1/invoice_payments?invoice={obj['id']}", False)
        if rest:
            _expand(obj["payments"], rest, path)
        return
    if head == "refunds" and obj.get("object") == "charge":
        # Sent only when expanded (API version 2022-11-15 on), never stored on the charge.
        obj["refunds"] = sandbox().engine.charge_refunds(obj["id"])
        if rest:
            _expand(obj["refunds"], rest, path)
        return
    value = obj.get(head, ...)
    if value is not None and not isinstance(value, (str, dict)):
        value = ...  # only references to other objects expand
    if isinstance(value, str):
        loaded = sandbox().store.get(value)
        if loaded is None:
            value = ...
        else:
            if loaded.get("object") == "balance_transaction":
                sandbox().engine.with_status(loaded)
            obj[head] = value = loaded
    if value is ...:
        raise ParamError(f"This property cannot be expanded ({path}).", "expand")
    if rest and isinstance(value, dict):
        _expand(value, rest, path)


def _cursor(type_: str, object_id: str | None, param: str) -> int | None:
    if object_id is None:
        return None
    seq = sandbox().store.seq_of(object_id)
    if seq is None:
        raise StripeError(f"No such {type_}: '{object_id}'", code="resource_missing", param=param)
    return seq


def _created_filter(created: dict[str, int], clauses: list[str], args: list[Any]) -> None:
    ops = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    for name, value in created.items():
        clauses.append(f"created {ops[name]} ?")
        args.append(value)


def _list(type_: str, url: str, query: dict[str, Any], clauses: list[str],
          args: list[Any]) -> dict[str, Any]:
    if "starting_after" in query and "ending_before" in query:
        raise ParamError("You may only specify one of these parameters: ending_before, "
                         "starting_after.", "starting_after", "parameters_exclusive")
    data, has_more = sandbox().store.page(
        type_, where=" AND ".join(clauses), args=args, limit=query.get("limit", 10),
        starting_after=_cursor(type_, query.get("starting_after"), "starting_after"),
        ending_before=_cursor(type_, query.get("ending_before"), "ending_before"))
    envelope = shapes.list_envelope(data, url, has_more)
    return expand(envelope, query.get("expand", []))


# -- customers -------------------------------------------------------------------


@bp.post("/customers")
@endpoint
def create_customer() -> dict[str, Any]:
    query = p.validate(CUSTOMER_CREATE, _params())
    customer = sandbox().engine.create_customer(query, _request_info())
    return expand(customer, query.get("expand", []))


@bp.get("/customers/<customer_id>")
@endpoint
def get_customer(customer_id: str) -> dict[str, Any]:
    return _retrieve("customer", customer_id, "customer")


@bp.post("/customers/<customer_id>")
@endpoint
def update_customer(customer_id: str) -> dict[str, Any]:
    query = p.validate(CUSTOMER_UPDATE, _params())
    customer = sandbox().engine.update_customer(customer_id, query, _request_info())
    return expand(customer, query.get("expand", []))


@bp.get("/customers/<customer_id>/payment_methods")
@endpoint
def list_customer_payment_methods(customer_id: str) -> dict[str, Any]:
    """A customer's attached PaymentMethods, newest first (`type`, `allow_redisplay`)."""
    query = p.validate(CUSTOMER_PAYMENT_METHODS, _params())
    sandbox().engine.customer(customer_id)
    clauses, args = _filters({**query, "customer": customer_id},
                             ("customer", "type", "allow_redisplay"))
    return _list("payment_method", f"/v1/customers/{customer_id}/payment_methods", query,
                 clauses, args)


@bp.get("/customers/<customer_id>/payment_methods/<pm_id>")
@endpoint
def get_customer_payment_method(customer_id: str, pm_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    sandbox().engine.customer(customer_id)
    pm = sandbox().store.get(pm_id, "payment_method")
    if pm is None or pm["customer"] != customer_id:
        raise StripeError(f"No such PaymentMethod: '{pm_id}'", status=404,
                          code="resource_missing", param="payment_method")
    return expand(pm, query.get("expand", []))


def _retrieve(type_: str, object_id: str, param: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    obj = sandbox().store.get(object_id, type_)
    if obj is None:
        raise not_found(type_, object_id, param)
    return expand(obj, query.get("expand", []))


# -- checkout sessions -------------------------------------------------------------


@bp.post("/checkout/sessions")
@endpoint
def create_session() -> dict[str, Any]:
    query = p.validate(SESSION_CREATE, _params())
    session = sandbox().engine.create_session(query, _public_url())
    return expand(session, query.get("expand", []))


@bp.get("/checkout/sessions")
@endpoint
def list_sessions() -> dict[str, Any]:
    query = p.validate(SESSION_LIST, _params())
    clauses: list[str] = []
    args: list[Any] = []
    for name in ("customer", "payment_intent", "status"):
        if name in query:
            clauses.append(f"json_extract(data, '$.{name}') = ?")
            args.append(query[name])
    _created_filter(query.get("created", {}), clauses, args)
    # Time-based expiry is applied lazily too, so a listing never shows a stale "open".
    for sid in sandbox().store.open_sessions_expired_by(sandbox().engine.now()):
        sandbox().engine.expire_if_due(sid)
    return _list("checkout.session", "/v1/checkout/sessions", query, clauses, args)


@bp.get("/checkout/sessions/<session_id>")
@endpoint
def get_session(session_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    session = sandbox().engine.session(session_id)
    return expand(session, query.get("expand", []))


@bp.post("/checkout/sessions/<session_id>/expire")
@endpoint
def expire_session(session_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    session = sandbox().engine.expire_session(session_id, _request_info())
    return expand(session, query.get("expand", []))


@bp.get("/checkout/sessions/<session_id>/line_items")
@endpoint
def list_line_items(session_id: str) -> dict[str, Any]:
    query = p.validate(p.PAGINATION, _params())
    sandbox().engine.session(session_id)
    return _list("item", f"/v1/checkout/sessions/{session_id}/line_items", query,
                 ["parent = ?"], [session_id])


# -- payment intents, charges, refunds, disputes -------------------------------------


@bp.post("/payment_intents")
@endpoint
def create_payment_intent() -> dict[str, Any]:
    query = p.validate(PAYMENT_INTENT_CREATE, _params())
    pi = sandbox().engine.create_payment_intent(query, _request_info(), _public_url())
    return expand(pi, query.get("expand", []))


def _public_url() -> str:
    return sandbox().settings.public_url or request.host_url.rstrip("/")


@bp.get("/payment_intents")
@endpoint
def list_payment_intents() -> dict[str, Any]:
    query = p.validate(PAYMENT_INTENT_LIST, _params())
    clauses, args = _filters(query, ("customer",))
    return _list("payment_intent", "/v1/payment_intents", query, clauses, args)


@bp.get("/payment_intents/<pi_id>")
@endpoint
def get_payment_intent(pi_id: str) -> dict[str, Any]:
    return _retrieve("payment_intent", pi_id, "intent")


@bp.post("/payment_intents/<pi_id>/confirm")
@endpoint
def confirm_payment_intent(pi_id: str) -> dict[str, Any]:
    query = p.validate(PAYMENT_INTENT_CONFIRM, _params())
    pi = sandbox().engine.confirm_payment_intent(pi_id, query, _request_info(), _public_url())
    return expand(pi, query.get("expand", []))


@bp.post("/payment_intents/<pi_id>/cancel")
@endpoint
def cancel_payment_intent(pi_id: str) -> dict[str, Any]:
    query = p.validate(PAYMENT_INTENT_CANCEL, _params())
    pi = sandbox().engine.cancel_payment_intent(pi_id, query, _request_info())
    return expand(pi, query.get("expand", []))


# -- payment methods and setup intents ------------------------------------------------


@bp.get("/payment_methods")
@endpoint
def list_payment_methods() -> dict[str, Any]:
    query = p.validate(PAYMENT_METHOD_LIST, _params())
    clauses, args = _filters(query, ("customer", "type"))
    return _list("payment_method", "/v1/payment_methods", query, clauses, args)


@bp.get("/payment_methods/<pm_id>")
@endpoint
def get_payment_method(pm_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    pm, _ = sandbox().engine.payment_method(pm_id)
    return expand(pm, query.get("expand", []))


@bp.post("/payment_methods/<pm_id>/attach")
@endpoint
def attach_payment_method(pm_id: str) -> dict[str, Any]:
    query = p.validate(PAYMENT_METHOD_ATTACH, _params())
    pm = sandbox().engine.attach_payment_method(pm_id, query["customer"], _request_info())
    return expand(pm, query.get("expand", []))


@bp.post("/payment_methods/<pm_id>/detach")
@endpoint
def detach_payment_method(pm_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    pm = sandbox().engine.detach_payment_method(pm_id, _request_info())
    return expand(pm, query.get("expand", []))


@bp.get("/setup_intents")
@endpoint
def list_setup_intents() -> dict[str, Any]:
    query = p.validate(SETUP_INTENT_LIST, _params())
    clauses, args = _filters(query, ("customer", "payment_method"))
    return _list("setup_intent", "/v1/setup_intents", query, clauses, args)


@bp.get("/setup_intents/<si_id>")
@endpoint
def get_setup_intent(si_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    si = sandbox().store.get(si_id, "setup_intent")
    if si is None:
        raise StripeError(f"No such setupintent: '{si_id}'", status=404,
                          code="resource_missing", param="intent")
    return expand(si, query.get("expand", []))


@bp.get("/charges/<charge_id>")
@endpoint
def get_charge(charge_id: str) -> dict[str, Any]:
    return _retrieve("charge", charge_id, "charge")


@bp.get("/charges/<charge_id>/refunds")
@endpoint
def list_charge_refunds(charge_id: str) -> dict[str, Any]:
    """A charge's refunds, newest first: where the `url` of its expanded `refunds` leads."""
    query = p.validate(p.PAGINATION, _params())
    if sandbox().store.get(charge_id, "charge") is None:
        raise not_found("charge", charge_id, "charge")
    clauses, args = _filters({"charge": charge_id}, ("charge",))
    return _list("refund", f"/v1/charges/{charge_id}/refunds", query, clauses, args)


@bp.post("/refunds")
@endpoint
def create_refund() -> dict[str, Any]:
    query = p.validate(REFUND_CREATE, _params())
    refund = sandbox().engine.refund(query, _request_info())
    return expand(refund, query.get("expand", []))


@bp.get("/refunds")
@endpoint
def list_refunds() -> dict[str, Any]:
    query = p.validate(REFUND_LIST, _params())
    clauses, args = _filters(query, ("charge", "payment_intent"))
    return _list("refund", "/v1/refunds", query, clauses, args)


def _filters(query: dict[str, Any], names: tuple[str, ...]) -> tuple[list[str], list[Any]]:
    """WHERE clauses for a list's equality filters on object fields, plus `created`."""
    clauses: list[str] = []
    args: list[Any] = []
    for name in names:
        if name in query:
            clauses.append(f"json_extract(data, '$.{name}') = ?")
            args.append(query[name])
    _created_filter(query.get("created", {}), clauses, args)
    return clauses, args


@bp.get("/refunds/<refund_id>")
@endpoint
def get_refund(refund_id: str) -> dict[str, Any]:
    return _retrieve("refund", refund_id, "refund")


@bp.post("/refunds/<refund_id>/cancel")
@endpoint
def cancel_refund(refund_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    refund = sandbox().engine.cancel_refund(refund_id, _request_info())
    return expand(refund, query.get("expand", []))


@bp.get("/disputes")
@endpoint
def list_disputes() -> dict[str, Any]:
    query = p.validate(DISPUTE_LIST, _params())
    clauses, args = _filters(query, ("charge", "payment_intent"))
    return _list("dispute", "/v1/disputes", query, clauses, args)


@bp.get("/disputes/<dispute_id>")
@endpoint
def get_dispute(dispute_id: str) -> dict[str, Any]:
    return _retrieve("dispute", dispute_id, "dispute")


@bp.post("/disputes/<dispute_id>")
@endpoint
def update_dispute(dispute_id: str) -> dict[str, Any]:
    query = p.validate(DISPUTE_UPDATE, _params())
    dispute = sandbox().engine.update_dispute(dispute_id, query, _request_info())
    return expand(dispute, query.get("expand", []))


@bp.post("/disputes/<dispute_id>/close")
@endpoint
def close_dispute(dispute_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    dispute = sandbox().engine.accept_dispute(dispute_id, _request_info())
    return expand(dispute, query.get("expand", []))


# -- events ------------------------------------------------------------------------


def _event_scope(clauses: list[str], args: list[Any]) -> None:
    """The platform's events (no `account`), or with the Stripe-Account header that
    connected account's: each sees only its own, as on Stripe."""
    account = _connected_account()
    if account is None:
        clauses.append("json_extract(data, '$.account') IS NULL")
    else:
        clauses.append("json_extract(data, '$.account') = ?")
        args.append(account)


@bp.get("/events")
@endpoint
def list_events() -> dict[str, Any]:
    """The platform's events, or a connected account's (Stripe-Account header)."""
    query = p.validate(EVENT_LIST, _params())
    if "type" in query and "types" in query:
        raise ParamError("You may only specify one of these parameters: type, types.", "type",
                         "parameters_exclusive")
    clauses: list[str] = []
    args: list[Any] = []
    _event_scope(clauses, args)
    if "type" in query:
        # Stripe accepts one wildcard type such as `checkout.session.*`.
        clauses.append("json_extract(data, '$.type') LIKE ? ESCAPE '\\'")
        args.append(query["type"].replace("_", "\\_").replace("*", "%"))
    if query.get("types"):
        clauses.append(f"json_extract(data, '$.type') IN ({','.join('?' * len(query['types']))})")
        args.extend(query["types"])
    _created_filter(query.get("created", {}), clauses, args)
    envelope = _list("event", "/v1/events", query, clauses, args)
    events = sandbox().events
    for event in envelope["data"]:
        event["pending_webhooks"] = events.pending_webhooks(event["id"])
    return envelope


@bp.get("/events/<event_id>")
@endpoint
def get_event(event_id: str) -> dict[str, Any]:
    p.validate(RETRIEVE, _params())
    event = sandbox().events.load(event_id)
    # Another scope's event is as unknown as a missing one.
    if event is None or event.get("account") != _connected_account():
        raise not_found("event", event_id, "id")
    return event


# -- Connect: accounts, account links, login links, balance, transfers, payouts -------


@bp.post("/accounts")
@endpoint
def create_account() -> dict[str, Any]:
    query = p.validate(ACCOUNT_CREATE, _params())
    account = sandbox().engine.create_account(query, _request_info())
    return expand(account, query.get("expand", []))


@bp.get("/accounts")
@endpoint
def list_accounts() -> dict[str, Any]:
    query = p.validate(ACCOUNT_LIST, _params())
    clauses, args = _filters(query, ())
    return _list("account", "/v1/accounts", query, clauses, args)


@bp.get("/accounts/<account_id>")
@endpoint
def get_account(account_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    account, _ = sandbox().engine.account(account_id)
    return expand(account, query.get("expand", []))


@bp.post("/accounts/<account_id>")
@endpoint
def update_account(account_id: str) -> dict[str, Any]:
    query = p.validate(ACCOUNT_UPDATE, _params())
    account = sandbox().engine.update_account(account_id, query, _request_info())
    return expand(account, query.get("expand", []))


@bp.post("/accounts/<account_id>/login_links")
@endpoint
def create_login_link(account_id: str) -> dict[str, Any]:
    p.validate(RETRIEVE, _params())
    return sandbox().engine.create_login_link(account_id, _public_url())


@bp.post("/account_links")
@endpoint
def create_account_link() -> dict[str, Any]:
    query = p.validate(ACCOUNT_LINK_CREATE, _params())
    return sandbox().engine.create_account_link(query, _public_url())


@bp.get("/balance")
@endpoint
def get_balance() -> dict[str, Any]:
    p.validate(RETRIEVE, _params())
    return sandbox().engine.balance(_connected_account())


@bp.get("/balance_transactions")
@endpoint
def list_balance_transactions() -> dict[str, Any]:
    """The platform's balance transactions, or a connected account's (Stripe-Account)."""
    query = p.validate(BALANCE_TRANSACTION_LIST, _params())
    clauses, args = _filters(query, ("type", "source", "currency"))
    if "payout" in query:
        clauses.append("json_extract(extra, '$.payout') = ?")
        args.append(query["payout"])
    clauses.append("parent IS ?")
    args.append(_connected_account())
    envelope = _list("balance_transaction", "/v1/balance_transactions", query, clauses, args)
    for bt in envelope["data"]:
        sandbox().engine.with_status(bt)
    return envelope


@bp.get("/balance_transactions/<bt_id>")
@endpoint
def get_balance_transaction(bt_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    bt = sandbox().engine.balance_transaction(bt_id, _connected_account())
    return expand(bt, query.get("expand", []))


@bp.post("/transfers")
@endpoint
def create_transfer() -> dict[str, Any]:
    query = p.validate(TRANSFER_CREATE, _params())
    transfer = sandbox().engine.create_transfer(query, _request_info())
    return expand(transfer, query.get("expand", []))


@bp.get("/transfers")
@endpoint
def list_transfers() -> dict[str, Any]:
    query = p.validate(TRANSFER_LIST, _params())
    clauses, args = _filters(query, ("destination", "transfer_group"))
    return _list("transfer", "/v1/transfers", query, clauses, args)


@bp.get("/transfers/<transfer_id>")
@endpoint
def get_transfer(transfer_id: str) -> dict[str, Any]:
    return _retrieve("transfer", transfer_id, "transfer")


@bp.post("/transfers/<transfer_id>")
@endpoint
def update_transfer(transfer_id: str) -> dict[str, Any]:
    query = p.validate(TRANSFER_UPDATE, _params())
    transfer = sandbox().engine.update_transfer(transfer_id, query, _request_info())
    return expand(transfer, query.get("expand", []))


@bp.post("/transfers/<transfer_id>/reversals")
@endpoint
def create_transfer_reversal(transfer_id: str) -> dict[str, Any]:
    query = p.validate(REVERSAL_CREATE, _params())
    reversal = sandbox().engine.reverse_transfer(transfer_id, query, _request_info())
    return expand(reversal, query.get("expand", []))


@bp.get("/transfers/<transfer_id>/reversals")
@endpoint
def list_transfer_reversals(transfer_id: str) -> dict[str, Any]:
    query = p.validate(p.PAGINATION, _params())
    sandbox().engine.transfer(transfer_id)
    return _list("transfer_reversal", f"/v1/transfers/{transfer_id}/reversals", query,
                 ["parent = ?"], [transfer_id])


@bp.get("/transfers/<transfer_id>/reversals/<reversal_id>")
@endpoint
def get_transfer_reversal(transfer_id: str, reversal_id: str) -> dict[str, Any]:
    query = p.validate(RETRIEVE, _params())
    reversal = sandbox().store.get(reversal_id, "transfer_reversal")
    if reversal is None or reversal["transfer"] != transfer_id:
        raise not_found("transfer_reversal", reversal_id, "id")
    return expand(reversal, query.get("expand", []))


@bp.get("/payouts")
@endpoint
def list_payouts() -> dict[str, Any]:
    """A connected account's payouts (Stripe-Account header); the platform has none."""
    query = p.validate(PAYOUT_LIST, _params())
    clauses, args = _filters(query, ("status",))
    clauses.append("parent = ?")
    args.append(_connected_account() or "")
    return _list("payout", "/v1/payouts", query, clauses, args)


@bp.get("/payouts/<payout_id>")
@endpoint
def get_payout(payout_id: str) -> dict[str, Any]:
    found = sandbox().store.query("SELECT parent FROM objects WHERE id = ? AND type = 'payout'",
                                  (payout_id,))
    if not found or found[0]["parent"] != _connected_account():
        raise not_found("payout", payout_id, "payout")
    return _retrieve("payout", payout_id, "payout")


# -- Billing: products, prices, subscriptions, invoices, test clocks, portal ---------------

PRODUCT_CREATE = {
    "name": p.Str(required=True), "active": p.Bool(), "description": p.Str(max_length=40_000),
    "id": p.Str(), "images": p.List(p.Str(), max_items=8), "metadata": p.Metadata(),
    "statement_descriptor": p.Str(max_length=22), "unit_label": p.Str(max_length=12),
    "url": p.Str(), "tax_code": p.Str(),
    "default_price_data": p.Obj({
        "currency": p.Str(required=True), "unit_amount": p.Int(minimum=0, maximum=99_999_999),
        "unit_amount_decimal": p.Str(), "recurring": RECURRING,
        "tax_behavior": p.Enum("exclusive", "inclusive", "unspecified"),
        "metadata": p.Metadata()}),
    "expand": p.EXPAND,
}
PRODUCT_UPDATE = {
    "name": p.Str(), "active": p.Bool(), "description": p.Str(max_length=40_000),
    "images": p.List(p.Str(), max_items=8), "metadata": p.Metadata(unset=True),
    "statement_descriptor": p.Str(max_length=22), "unit_label": p.Str(max_length=12),
    "url": p.Str(), "default_price": p.Str(), "expand": p.EXPAND,
}
PRODUCT_LIST = {**p.PAGINATION, "active": p.Bool(), "created": p.Created(),
                "ids": p.List(p.Str()), "url": p.Str(), "shippable": p.Bool()}
PRICE_CREATE = {
    "currency": p.Str(required=True), "product": p.Str(),
    "product_data": p.Obj({"name": p.Str(required=True), "active": p.Bool(), "id": p.Str(),
                           "metadata": p.Metadata(), "statement_descriptor": p.Str(),
                           "unit_label": p.Str(), "tax_code": p.Str()}),
    "unit_amount": p.Int(minimum=0, maximum=99_999_999), "unit_amount_decimal": p.Str(),
    "recurring": RECURRING, "active": p.Bool(), "nickname": p.Str(), "lookup_key": p.Str(),
    "metadata": p.Metadata(), "tax_behavior": p.Enum("exclusive", "inclusive", "unspecified"),
    "billing_scheme": p.Enum("per_unit"), "expand": p.EXPAND,
}
# A price's amount, currency and recurrence are fixed: sending one is an unknown parameter.
PRICE_UPDATE = {"active": p.Bool(), "nickname": p.Unsettable(), "lookup_key": p.Str(),
                "metadata": p.Metadata(unset=True),
                "tax_behavior": p.Enum("exclusive", "inclusive", "unspecified"),
                "expand": p.EXPAND}
PRICE_LIST = {**p.PAGINATION, "active": p.Bool(), "currency": p.Str(), "product": p.Str(),
              "type": p.Enum("one_time", "recurring"), "created": p.Created(),
              "lookup_keys": p.List(p.Str(), max_items=10),
              "recurring": p.Obj({"interval": p.Enum("day", "week", "month", "year"),
                                  "usage_type": p.Enum("licensed", "metered")})}
SUBSCRIPTION_STATUSES = ("active", "all", "canceled", "ended", "incomplete",
                         "incomplete_expired", "past_due", "paused", "trialing", "unpaid")
SUBSCRIPTION_LIST = {**p.PAGINATION, "customer": p.Str(), "price": p.Str(),
                     "status": p.Enum(*SUBSCRIPTION_STATUSES), "test_clock": p.Str(),
                     "created": p.Created(),
                     "collection_method": p.Enum("charge_automatically", "send_invoice")}
CANCELLATION_DETAILS = p.Obj({
    "comment": p.Unsettable(max_length=5000),
    "feedback": p.Enum("customer_service", "low_quality", "missing_features", "other",
                       "switched_service", "too_complex", "too_expensive", "unused"),
})
SUBSCRIPTION_UPDATE = {
    "cancel_at_period_end": p.Bool(),
    "pause_collection": p.OrUnset(p.Obj({
        "behavior": p.Enum("keep_as_draft", "mark_uncollectible", "void", required=True),
        "resumes_at": p.Int()})),
    "items": p.List(p.Obj({"id": p.Str(), "price": p.Str(),
                           "quantity": p.Int(minimum=1), "metadata": p.Metadata()}), max_items=20),
    "proration_behavior": p.Enum("always_invoice", "create_prorations", "none"),
    "proration_date": p.Int(), "default_payment_method": p.Unsettable(),
    # Accepted; the sandbox always behaves as allow_incomplete (a failed payment leaves the
    # invoice open and the subscription past_due).
    "payment_behavior": p.Enum("allow_incomplete", "default_incomplete",
                               "error_if_incomplete", "pending_if_incomplete"),
    "off_session": p.Bool(),
    "description": p.Str(max_length=500), "metadata": p.Metadata(unset=True),
    "cancellation_details": CANCELLATION_DETAILS, "expand": p.EXPAND,
}
SUBSCRIPTION_CANCEL = {"prorate": p.Bool(), "invoice_now": p.Bool(),
                       "cancellation_details": CANCELLATION_DETAILS, "expand": p.EXPAND}
SUBSCRIPTION_ITEM_LIST = {**p.PAGINATION, "subscription": p.Str(required=True)}
INVOICE_LIST = {**p.PAGINATION, "customer": p.Str(), "subscription": p.Str(),
                "status": p.Enum("draft", "open", "paid", "uncollectible", "void"),
                "collection_method": p.Enum("charge_automatically", "send_invoice"),
                "created": p.Created()}
INVOICE_PREVIEW = {
    "customer": p.Str(), "subscription": p.Str(),
    "subscription_details": p.Obj({
        "items": p.List(p.Obj({"id": p.Str(), "price": p.Str(), "quantity": p.Int(minimum=1)}),
                        max_items=20),
        "proration_behavior": p.Enum("always_invoice", "create_prorations", "none"),
        "proration_date": p.Int()}),
    "expand": p.EXPAND,
}
INVOICE_ITEM_LIST = {**p.PAGINATION, "customer": p.Str(), "invoice": p.Str(),
                     "pending": p.Bool(), "created": p.Created()}
INVOICE_PAYMENT_LIST = {**p.PAGINATION, "invoice": p.Str(),
                        "status": p.Enum("canceled", "open", "paid"),
                        "payment": p.Obj({"type": p.Enum("payment_intent"),
                                          "payment_intent": p.Str()})}
TEST_CLOCK_CREATE = {"frozen_time": p.Int(required=True), "name": p.Str(max_length=300),
                     "expand": p.EXPAND}
TEST_CLOCK_ADVANCE = {"frozen_time": p.Int(required=True), "expand": p.EXPAND}
PORTAL_SESSION_CREATE = {"customer": p.Str(required=True), "return_url": p.Str(),
                         "configuration": p.Str(), "locale": p.Str(), "on_behalf_of": p.Str(),
                         "expand": p.EXPAND}


def _billing() -> Any:
    return sandbox().engine.billing


@bp.post("/products")
@endpoint
def create_product() -> dict[str, Any]:
    query = p.validate(PRODUCT_CREATE, _params())
    return expand(_billing().create_product(query, _request_info()), query.get("expand", []))


@bp.get("/products")
@endpoint
def list_products() -> dict[str, Any]:
    query = p.validate(PRODUCT_LIST, _params())
    clauses, args = _filters(query, ("url",))
    if "active" in query:
        clauses.append("json_extract(data, '$.active') = ?")
        args.append(1 if query["active"] else 0)
    if query.get("ids"):
        clauses.append(f"id IN ({','.join('?' * len(query['ids']))})")
        args.extend(query["ids"])
    return _list("product", "/v1/products", query, clauses, args)


@bp.get("/products/<product_id>")
@endpoint
def get_product(product_id: str) -> dict[str, Any]:
    return _retrieve("product", product_id, "id")


@bp.post("/products/<product_id>")
@endpoint
def update_product(product_id: str) -> dict[str, Any]:
    query = p.validate(PRODUCT_UPDATE, _params())
    product = _billing().update_product(product_id, query, _request_info())
    return expand(product, query.get("expand", []))


@bp.post("/prices")
@endpoint
def create_price() -> dict[str, Any]:
    query = p.validate(PRICE_CREATE, _params())
    return expand(_billing().create_price(query, _request_info()), query.get("expand", []))


@bp.get("/prices")
@endpoint
def list_prices() -> dict[str, Any]:
    query = p.validate(PRICE_LIST, _params())
    clauses, args = _filters(query, ("currency", "product", "type"))
    if "active" in query:
        clauses.append("json_extract(data, '$.active') = ?")
        args.append(1 if query["active"] else 0)
    if query.get("lookup_keys"):
        clauses.append("json_extract(data, '$.lookup_key') IN "
                       f"({','.join('?' * len(query['lookup_keys']))})")
        args.extend(query["lookup_keys"])
    for name, value in query.get("recurring", {}).items():
        clauses.append(f"json_extract(data, '$.recurring.{name}') = ?")
        args.append(value)
    return _list("price", "/v1/prices", query, clauses, args)


@bp.get("/prices/<price_id>")
@endpoint
def get_price(price_id: str) -> dict[str, Any]:
    return _retrieve("price", price_id, "price")


@bp.post("/prices/<price_id>")
@endpoint
def update_price(price_id: str) -> dict[str, Any]:
    query = p.validate(PRICE_UPDATE, _params())
    return expand(_billing().update_price(price_id, query, _request_info()),
                  query.get("expand", []))


@bp.get("/subscriptions")
@endpoint
def list_subscriptions() -> dict[str, Any]:
    """Subscriptions, newest first; without `status` the ones not canceled (Stripe's
    default), `all` for every one, `ended` for the canceled ones. (`paused` is Stripe's
    status for a trial that ended without a card, not a pause of collection.)"""
    query = p.validate(SUBSCRIPTION_LIST, _params())
    clauses, args = _filters(query, ("customer", "test_clock", "collection_method"))
    status = query.get("status")
    if status is None:
        clauses.append("json_extract(data, '$.status') NOT IN ('canceled', "
                       "'incomplete_expired')")
    elif status == "ended":
        clauses.append("json_extract(data, '$.status') IN ('canceled', 'incomplete_expired')")
    elif status != "all":
        clauses.append("json_extract(data, '$.status') = ?")
        args.append(status)
    if "price" in query:
        clauses.append("EXISTS (SELECT 1 FROM json_each(data, '$.items.data') "
                       "WHERE json_extract(value, '$.price.id') = ?)")
        args.append(query["price"])
    return _list("subscription", "/v1/subscriptions", query, clauses, args)


@bp.get("/subscriptions/<sub_id>")
@endpoint
def get_subscription(sub_id: str) -> dict[str, Any]:
    return _retrieve("subscription", sub_id, "id")


@bp.post("/subscriptions/<sub_id>")
@endpoint
def update_subscription(sub_id: str) -> dict[str, Any]:
    query = p.validate(SUBSCRIPTION_UPDATE, _params())
    sub = _billing().update_subscription(sub_id, query, _request_info())
    return expand(sub, query.get("expand", []))


@bp.delete("/subscriptions/<sub_id>")
@endpoint
def cancel_subscription(sub_id: str) -> dict[str, Any]:
    query = p.validate(SUBSCRIPTION_CANCEL, _params())
    sub = _billing().cancel_subscription(sub_id, query, _request_info())
    return expand(sub, query.get("expand", []))


@bp.get("/subscription_items")
@endpoint
def list_subscription_items() -> dict[str, Any]:
    query = p.validate(SUBSCRIPTION_ITEM_LIST, _params())
    _billing().subscription(query["subscription"], status=400)
    url = f"/v1/subscription_items?subscription={query['subscription']}"
    return _list("subscription_item", url, query, ["parent = ?"], [query["subscription"]])


@bp.get("/subscription_items/<item_id>")
@endpoint
def get_subscription_item(item_id: str) -> dict[str, Any]:
    return _retrieve("subscription_item", item_id, "id")


@bp.get("/invoices")
@endpoint
def list_invoices() -> dict[str, Any]:
    query = p.validate(INVOICE_LIST, _params())
    clauses, args = _filters(query, ("customer", "subscription", "status",
                                     "collection_method"))
    return _list("invoice", "/v1/invoices", query, clauses, args)


@bp.post("/invoices/create_preview")
@endpoint
def preview_invoice() -> dict[str, Any]:
    query = p.validate(INVOICE_PREVIEW, _params())
    return expand(_billing().preview_invoice(query), query.get("expand", []))


@bp.get("/invoices/<invoice_id>")
@endpoint
def get_invoice(invoice_id: str) -> dict[str, Any]:
    return _retrieve("invoice", invoice_id, "invoice")


@bp.get("/invoices/<invoice_id>/lines")
@endpoint
def list_invoice_lines(invoice_id: str) -> dict[str, Any]:
    query = p.validate(p.PAGINATION, _params())
    lines = _billing().invoice(invoice_id)["lines"]["data"]
    start = 0
    if "starting_after" in query:
        ids = [line["id"] for line in lines]
        if query["starting_after"] not in ids:
            raise StripeError(f"No such line item: '{query['starting_after']}'",
                              code="resource_missing", param="starting_after")
        start = ids.index(query["starting_after"]) + 1
    limit = query.get("limit", 10)
    page = lines[start:start + limit]
    envelope = shapes.list_envelope(page, f"/v1/invoices/{invoice_id}/lines",
                                    start + limit < len(lines))
    return expand(envelope, query.get("expand", []))


@bp.get("/invoiceitems")
@endpoint
def list_invoice_items() -> dict[str, Any]:
    """Invoice items (the prorations a subscription change leaves); `pending=true` for those
    not yet on an invoice."""
    query = p.validate(INVOICE_ITEM_LIST, _params())
    clauses, args = _filters(query, ("customer", "invoice"))
    if "pending" in query:
        clauses.append("json_extract(data, '$.invoice') IS " +
                       ("NULL" if query["pending"] else "NOT NULL"))
    return _list("invoiceitem", "/v1/invoiceitems", query, clauses, args)


@bp.get("/invoiceitems/<item_id>")
@endpoint
def get_invoice_item(item_id: str) -> dict[str, Any]:
    return _retrieve("invoiceitem", item_id, "id")


@bp.get("/invoice_payments")
@endpoint
def list_invoice_payments() -> dict[str, Any]:
    query = p.validate(INVOICE_PAYMENT_LIST, _params())
    clauses, args = _filters(query, ("invoice", "status"))
    if "payment_intent" in query.get("payment", {}):
        clauses.append("json_extract(data, '$.payment.payment_intent') = ?")
        args.append(query["payment"]["payment_intent"])
    return _list("invoice_payment", "/v1/invoice_payments", query, clauses, args)


@bp.get("/invoice_payments/<payment_id>")
@endpoint
def get_invoice_payment(payment_id: str) -> dict[str, Any]:
    return _retrieve("invoice_payment", payment_id, "id")


@bp.post("/test_helpers/test_clocks")
@endpoint
def create_test_clock() -> dict[str, Any]:
    query = p.validate(TEST_CLOCK_CREATE, _params())
    return _billing().create_test_clock(query, _request_info())


@bp.get("/test_helpers/test_clocks")
@endpoint
def list_test_clocks() -> dict[str, Any]:
    query = p.validate(p.PAGINATION, _params())
    return _list("test_helpers.test_clock", "/v1/test_helpers/test_clocks", query, [], [])


@bp.get("/test_helpers/test_clocks/<clock_id>")
@endpoint
def get_test_clock(clock_id: str) -> dict[str, Any]:
    p.validate(RETRIEVE, _params())
    return _billing().test_clock(clock_id, param="test_clock")


@bp.delete("/test_helpers/test_clocks/<clock_id>")
@endpoint
def delete_test_clock(clock_id: str) -> dict[str, Any]:
    return _billing().delete_test_clock(clock_id, _request_info())


@bp.post("/test_helpers/test_clocks/<clock_id>/advance")
@endpoint
def advance_test_clock(clock_id: str) -> dict[str, Any]:
    query = p.validate(TEST_CLOCK_ADVANCE, _params())
    return _billing().advance_test_clock(clock_id, query["frozen_time"], _request_info())


@bp.post("/billing_portal/sessions")
@endpoint
def create_portal_session() -> dict[str, Any]:
    query = p.validate(PORTAL_SESSION_CREATE, _params())
    if "return_url" in query and not query["return_url"].startswith(("http://", "https://")):
        raise ParamError("Not a valid URL", "return_url", "url_invalid")
    session = _billing().create_portal_session(query, _public_url())
    return expand(session, query.get("expand", []))


@bp.route("/<path:rest>", methods=["GET", "POST", "DELETE"])
@endpoint
def unknown(rest: str) -> dict[str, Any]:
    raise StripeError(
        f"Unrecognized request URL ({request.method}: /v1/{rest}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.", status=404)
