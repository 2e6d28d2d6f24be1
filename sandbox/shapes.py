"""Stripe object shapes: ids, money helpers and one builder per resource.

Each builder starts from Stripe's own example object for the resource
(`fixtures.json`, copied from stripe-mock's fixtures3.json) with every value
reset, then fills in what the sandbox knows. The field set is therefore
Stripe's by construction; tests compare it with the copy of Stripe's fixtures in
tests/sandbox and the SDK's type annotations.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel.numbers import format_currency

# The API version the sandbox speaks: the one the pinned SDK (stripe 16.1.0)
# sends and expects in events. tests/sandbox checks it against
# stripe._api_version._ApiVersion.CURRENT so an SDK upgrade cannot drift silently.
API_VERSION = "2026-10-28.endive"

FIXTURES = Path(__file__).resolve().parent / "fixtures.json"

# Stripe's zero-decimal currencies: amounts are in the major unit already.
ZERO_DECIMAL = frozenset({
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
    "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
})
# Currencies the sandbox accepts, with Stripe's minimum charge in minor units.
MINIMUM_CHARGE = {
    "usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "nzd": 50,
    "sek": 300, "nok": 300, "dkk": 250, "pln": 200, "czk": 1500, "huf": 17500,
    "mxn": 1000, "brl": 50, "inr": 50, "sgd": 50, "hkd": 400, "jpy": 50, "krw": 500,
}

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def session_id() -> str:
    # Stripe's Checkout Session ids are long: cs_test_ + "a1" + 56 characters.
    return "cs_test_a1" + new_id("", 56)


@cache
def _fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]


def _reset(value: Any) -> Any:
    """Keep the shape, drop Stripe's example values: strings/None → None, numbers → 0, ..."""
    if isinstance(value, dict):
        return {k: (v if k == "object" else _reset(v)) for k, v in value.items()}
    if isinstance(value, list):
        return []
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return 0
    return None


def template(resource: str) -> dict[str, Any]:
    return _reset(copy.deepcopy(_fixtures()[resource]))


def fill(obj: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Set fields that the template already has; a typo here is a bug, not a new field."""
    for key, value in values.items():
        if key not in obj:
            raise KeyError(f"{obj.get('object', 'hash')} has no field {key!r}")
        obj[key] = value
    return obj


def format_money(amount: int, currency: str) -> str:
    """Minor units → "$1,234.50" / "¥5,000" (zero-decimal currencies have no minor unit)."""
    value = Decimal(amount).scaleb(0 if currency in ZERO_DECIMAL else -2)
    return format_currency(value, currency.upper(), locale="en_US")


def empty_address() -> dict[str, None]:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


# -- Builders ------------------------------------------------------------------


def customer(params: dict[str, Any], now: int) -> dict[str, Any]:
    return fill(
        template("customer"),
        id=new_id("cus_", 14), created=now, livemode=False,
        address=None, balance=0, currency=None, default_source=None, delinquent=False,
        description=params.get("description"), discount=None, email=params.get("email"),
        invoice_prefix=secrets.token_hex(4).upper(),
        invoice_settings={"custom_fields": None, "default_payment_method": None,
                          "footer": None, "rendering_options": None},
        metadata=params.get("metadata", {}), name=params.get("name"),
        next_invoice_sequence=1, phone=params.get("phone"), preferred_locales=[],
        shipping=None, tax_exempt="none", test_clock=params.get("test_clock"),
    )


def price(price_data: dict[str, Any], now: int) -> dict[str, Any]:
    unit_amount = price_data["unit_amount"]
    item = _fixtures()["item"]["price"]
    return fill(
        _reset(copy.deepcopy(item)),
        id=new_id("price_"), active=False,  # inline prices are archived, as on Stripe
        billing_scheme="per_unit", created=now, currency=price_data["currency"],
        custom_unit_amount=None, livemode=False, lookup_key=None, metadata={},
        nickname=None, product=new_id("prod_", 14), recurring=None,
        tax_behavior=price_data.get("tax_behavior", "unspecified"), tiers_mode=None,
        transform_quantity=None, type="one_time", unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
    )


def line_item(spec: dict[str, Any], now: int) -> dict[str, Any]:
    price_data = spec["price_data"]
    quantity = spec.get("quantity", 1)
    amount = price_data["unit_amount"] * quantity
    return fill(
        template("item"),
        id=new_id("li_"), amount_discount=0, amount_subtotal=amount, amount_tax=0,
        amount_total=amount, currency=price_data["currency"],
        description=price_data["product_data"]["name"], price=price(price_data, now),
        quantity=quantity,
    )


def price_line_item(price_obj: dict[str, Any], quantity: int, name: str,
                    now: int) -> dict[str, Any]:
    """A Checkout line item for an existing Price (subscription mode)."""
    amount = price_obj["unit_amount"] * quantity
    return fill(
        template("item"),
        id=new_id("li_"), amount_discount=0, amount_subtotal=amount, amount_tax=0,
        amount_total=amount, currency=price_obj["currency"], description=name,
        price=price_obj, quantity=quantity,
    )


def checkout_session(params: dict[str, Any], items: list[dict[str, Any]], *, now: int,
                     expires_at: int, url: str, method_types: list[str]) -> dict[str, Any]:
    """A new session. In `setup` mode there is nothing to pay: no amounts, no invoice
    settings or totals, `payment_status` no_payment_required, `currency` only if given."""
    setup = params["mode"] == "setup"
    total = None if setup else sum(item["amount_total"] for item in items)
    return fill(
        template("checkout.session"),
        id=params["id"], created=now, expires_at=expires_at, livemode=False,
        mode=params["mode"], status="open",
        payment_status="no_payment_required" if setup else "unpaid",
        adaptive_pricing={"enabled": False},
        after_expiration=None,
        allow_promotion_codes=params.get("allow_promotion_codes"),
        amount_subtotal=total, amount_total=total,
        currency=params.get("currency") if setup else items[0]["currency"],
        automatic_tax={"enabled": False, "liability": None, "status": None, "provider": None},
        billing_address_collection=None, cancel_url=params.get("cancel_url"),
        client_reference_id=params.get("client_reference_id"), client_secret=None,
        collected_information=None, consent=None, consent_collection=None,
        currency_conversion=None, custom_fields=[],
        custom_text={"after_submit": None, "shipping_address": None, "submit": None,
                     "terms_of_service_acceptance": None},
        customer=params.get("customer"),
        customer_creation=None if params.get("customer") else "if_required",
        customer_details=None, customer_email=params.get("customer_email"),
        discounts=[], invoice=None,
        invoice_creation=None if setup else {"enabled": False, "invoice_data": {
            "account_tax_ids": None, "custom_fields": None, "description": None,
            "footer": None, "issuer": None, "metadata": {}, "rendering_options": None}},
        locale=params.get("locale"), metadata=params.get("metadata", {}),
        origin_context=None, payment_intent=None, payment_link=None,
        payment_method_collection="if_required",
        payment_method_configuration_details=None,
        payment_method_options={},
        payment_method_types=method_types, permissions=None,
        phone_number_collection={"enabled": False}, recovered_from=None,
        saved_payment_method_options=None, setup_intent=None,
        shipping_address_collection=None, shipping_cost=None, shipping_options=[],
        submit_type=params.get("submit_type"), subscription=None,
        success_url=params.get("success_url"),
        total_details=None if setup else {"amount_discount": 0, "amount_shipping": 0,
                                          "amount_tax": 0},
        ui_mode="hosted_page", url=url, wallet_options=None,
    )


def customer_details(email: str, name: str | None) -> dict[str, Any]:
    return {"address": {**empty_address(), "country": "US"}, "email": email, "name": name,
            "phone": None, "tax_exempt": "none", "tax_ids": [], "business_name": None,
            "individual_name": None}


def payment_intent(session: dict[str, Any], pi_data: dict[str, Any], method_type: str,
                   now: int) -> dict[str, Any]:
    """The PaymentIntent of a Checkout Session (payment_intent_data gives its details)."""
    return new_payment_intent(amount=session["amount_total"], currency=session["currency"],
                              customer=session["customer"], data=pi_data,
                              method_types=[method_type], now=now)


def new_payment_intent(*, amount: int, currency: str, customer: str | None,
                       data: dict[str, Any], method_types: list[str], now: int,
                       automatic: dict[str, Any] | None = None) -> dict[str, Any]:
    """A PaymentIntent in `requires_payment_method`; `data` holds the optional create
    parameters (description, metadata, receipt_email, setup_future_usage, transfer_group)."""
    pi_id = new_id("pi_")
    return fill(
        template("payment_intent"),
        id=pi_id, created=now, livemode=False, amount=amount,
        amount_capturable=0, amount_details={"tip": {}}, amount_received=0,
        application=None, application_fee_amount=None, automatic_payment_methods=automatic,
        canceled_at=None, cancellation_reason=None, capture_method="automatic_async",
        client_secret=f"{pi_id}_secret_{new_id('', 25)}", confirmation_method="automatic",
        currency=currency, customer=customer,
        description=data.get("description"), last_payment_error=None,
        latest_charge=None, metadata=data.get("metadata", {}), next_action=None,
        on_behalf_of=None, payment_method=None, payment_method_configuration_details=None,
        payment_method_options={}, payment_method_types=method_types, processing=None,
        receipt_email=data.get("receipt_email"), review=None,
        setup_future_usage=data.get("setup_future_usage"),
        shipping=None, statement_descriptor=None, statement_descriptor_suffix=None,
        status="requires_payment_method", transfer_data=None,
        transfer_group=data.get("transfer_group"),
        source=None, excluded_payment_method_types=None,
    )


# Card.display_brand: the brand as Stripe shows it to a customer.
DISPLAY_BRANDS = {"amex": "american_express", "diners": "diners_club"}


def payment_method(card: dict[str, Any], billing: dict[str, Any], now: int,
                   pm_id: str | None = None) -> dict[str, Any]:
    """A card PaymentMethod (not attached to any customer yet). `card` is what the
    checkout form gave: brand, funding, last4, exp_month, exp_year, country, fingerprint."""
    obj = template("payment_method")
    fill(obj["card"], brand=card["brand"],
         checks={"address_line1_check": None, "address_postal_code_check": None,
                 "cvc_check": "pass"},
         country=card["country"], display_brand=DISPLAY_BRANDS.get(card["brand"], card["brand"]),
         exp_month=card["exp_month"], exp_year=card["exp_year"],
         fingerprint=card["fingerprint"], funding=card["funding"], generated_from=None,
         last4=card["last4"], networks={"available": [card["brand"]], "preferred": None},
         three_d_secure_usage={"supported": True}, wallet=None, regulated_status="unregulated")
    return fill(
        obj, id=pm_id or new_id("pm_"), allow_redisplay="unspecified",
        billing_details={"address": empty_address(), "tax_id": None, **billing},
        created=now, customer=None, livemode=False, metadata={}, type="card",
    )


def saved_card(pm: dict[str, Any]) -> dict[str, Any]:
    """The card of a PaymentMethod in the form the charge builders take."""
    card = pm["card"]
    return {"brand": card["brand"], "funding": card["funding"], "last4": card["last4"],
            "exp_month": card["exp_month"], "exp_year": card["exp_year"],
            "country": card["country"], "fingerprint": card["fingerprint"],
            "amount_authorized": None}


def setup_intent(session: dict[str, Any], si_data: dict[str, Any], now: int) -> dict[str, Any]:
    """The SetupIntent of a `setup` mode Checkout Session, awaiting a card."""
    si_id = new_id("seti_")
    return fill(
        template("setup_intent"),
        id=si_id, application=None, automatic_payment_methods=None, cancellation_reason=None,
        client_secret=f"{si_id}_secret_{new_id('', 25)}", created=now,
        customer=session["customer"], description=si_data.get("description"),
        flow_directions=None, last_setup_error=None, latest_attempt=None, livemode=False,
        mandate=None, metadata=si_data.get("metadata", {}), next_action=None,
        on_behalf_of=None, payment_method=None, payment_method_configuration_details=None,
        payment_method_options={"card": {"mandate_options": None, "network": None,
                                         "request_three_d_secure": "automatic"}},
        payment_method_types=["card"], single_use_mandate=None,
        status="requires_payment_method", usage="off_session",
        excluded_payment_method_types=None,
    )


def card_details(card: dict[str, Any]) -> dict[str, Any]:
    """Charge.payment_method_details for a card (the fixture's `card` shape, filled)."""
    details = _reset(copy.deepcopy(_fixtures()["charge"]["payment_method_details"]))
    details["type"] = "card"
    details["card"].update(
        amount_authorized=card["amount_authorized"], brand=card["brand"],
        checks={"address_line1_check": None, "address_postal_code_check": None,
                "cvc_check": "pass"},
        country=card["country"], exp_month=card["exp_month"], exp_year=card["exp_year"],
        extended_authorization={"status": "disabled"},
        fingerprint=card["fingerprint"], funding=card["funding"],
        incremental_authorization={"status": "unavailable"}, installments=None,
        last4=card["last4"], mandate=None, multicapture={"status": "unavailable"},
        network=card["brand"], network_token={"used": False},
        overcapture={"maximum_amount_capturable": card["amount_authorized"] or 0,
                     "status": "unavailable"},
        three_d_secure=card.get("three_d_secure"), wallet=None,
        authorization_code=card.get("authorization_code"), regulated_status="unregulated",
        network_transaction_id=card.get("network_transaction_id"),
    )
    return details


def bank_details(bank: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "individual", "account_type": "checking",
            "bank_name": "STRIPE TEST BANK", "fingerprint": bank["fingerprint"],
            "last4": bank["last4"], "mandate": bank["mandate"], "payment_reference": None,
            "routing_number": bank["routing_number"],
        },
    }


# Fields of Stripe's fixture objects that Stripe sends only when the request expands them
# (API version 2022-11-15 on: "the Charges object no longer auto-expands refunds").
INCLUDABLE: dict[str, frozenset[str]] = {"charge": frozenset({"refunds"})}


def charge(pi: dict[str, Any], *, payment_method: str, method_details: dict[str, Any],
           billing: dict[str, Any], status: str, outcome: dict[str, Any], receipt_url: str,
           now: int, failure: tuple[str, str] | None = None, charge_id: str | None = None,
           ) -> dict[str, Any]:
    succeeded = status == "succeeded"
    charge_id = charge_id or new_id("ch_")
    obj = template("charge")
    for name in INCLUDABLE["charge"]:
        del obj[name]
    return fill(
        obj,
        id=charge_id, created=now, livemode=False, amount=pi["amount"],
        amount_captured=pi["amount"] if succeeded else 0, amount_refunded=0,
        application=None, application_fee=None, application_fee_amount=None,
        balance_transaction=new_id("txn_") if succeeded else None,
        billing_details={"address": empty_address(), "tax_id": None, **billing},
        calculated_statement_descriptor="COACHPACT", captured=succeeded,
        currency=pi["currency"], customer=pi["customer"], description=pi["description"],
        disputed=False, failure_balance_transaction=None,
        failure_code=failure[0] if failure else None,
        failure_message=failure[1] if failure else None,
        fraud_details={}, metadata=dict(pi["metadata"]), on_behalf_of=None, outcome=outcome,
        paid=succeeded, payment_intent=pi["id"], payment_method=payment_method,
        payment_method_details=method_details, receipt_email=pi["receipt_email"],
        receipt_number=None, receipt_url=receipt_url, refunded=False,
        review=None, shipping=None, source=None, source_transfer=None,
        statement_descriptor=None, statement_descriptor_suffix=None, status=status,
        transfer_data=None, transfer_group=pi["transfer_group"],
    )


def charge_refunds(charge_id: str, refunds: list[dict[str, Any]],
                   has_more: bool) -> dict[str, Any]:
    """A charge's `refunds` as `expand[]=refunds` gives it: a list, newest first."""
    return list_envelope(refunds, f"/v1/charges/{charge_id}/refunds", has_more)


def outcome(kind: str, *, reason: str | None = None, message: str = "Payment complete.",
            network_status: str = "approved_by_network") -> dict[str, Any]:
    return {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
            "network_status": network_status, "reason": reason, "risk_level": "normal",
            "risk_score": 32, "seller_message": message, "type": kind}


def refund(charge_obj: dict[str, Any], amount: int, params: dict[str, Any],
           now: int, status: str = "succeeded") -> dict[str, Any]:
    is_card = charge_obj["payment_method_details"]["type"] == "card"
    return fill(
        template("refund"),
        id=new_id("re_"), created=now, amount=amount,
        balance_transaction=new_id("txn_"), charge=charge_obj["id"],
        currency=charge_obj["currency"],
        destination_details=(
            {"card": {"reference_status": "pending", "reference_type": "acquirer_reference_number",
                      "type": "refund"}, "type": "card"}
            if is_card else {"type": "us_bank_transfer", "us_bank_transfer": {
                "reference": None, "reference_status": "pending"}}),
        metadata=params.get("metadata", {}), payment_intent=charge_obj["payment_intent"],
        reason=params.get("reason"), receipt_number=None, source_transfer_reversal=None,
        status=status, transfer_reversal=None,
    )


# Stripe's documented values of Refund.failure_reason.
REFUND_FAILURE_REASONS = (
    "lost_or_stolen_card", "expired_or_canceled_card", "charge_for_pending_refund_disputed",
    "insufficient_funds", "declined", "merchant_request", "unknown",
)


def end_refund(obj: dict[str, Any], status: str, failure_reason: str) -> dict[str, Any]:
    """A refund that failed or was canceled: the money comes back through a second balance
    transaction. Stripe adds `failure_balance_transaction` and `failure_reason` only then:
    optional in its OpenAPI spec, so absent from the fixture's succeeded example, but typed
    by the SDK's Refund and shown in Stripe's example of a canceled refund."""
    obj["status"] = status
    obj["failure_balance_transaction"] = new_id("txn_")
    obj["failure_reason"] = failure_reason
    return obj


def dispute(charge_obj: dict[str, Any], amount: int, reason: str, now: int,
            refundable: bool = False) -> dict[str, Any]:
    obj = template("dispute")
    details = charge_obj["payment_method_details"]
    method_details: dict[str, Any] | None = None
    if details["type"] == "card":
        method_details = {"card": {"brand": details["card"]["brand"], "case_type": "chargeback",
                                   "network_reason_code": "10.4"}, "type": "card"}
    obj["evidence"]["enhanced_evidence"] = {}
    obj["evidence_details"].update(due_by=now + 7 * 86400, has_evidence=False, past_due=False,
                                   submission_count=0, enhanced_eligibility={})
    return fill(
        obj, id=new_id("dp_"), created=now, amount=amount, balance_transactions=[],
        charge=charge_obj["id"], currency=charge_obj["currency"],
        is_charge_refundable=refundable,
        livemode=False, metadata={}, payment_intent=charge_obj["payment_intent"],
        payment_method_details=method_details, reason=reason, status="needs_response",
        enhanced_eligibility_types=[],
    )


# -- Connect -------------------------------------------------------------------------

# A connected account's default currency by country (the few Coachpact's coaches live in).
COUNTRY_CURRENCY = {
    "US": "usd", "GB": "gbp", "CA": "cad", "AU": "aud", "NZ": "nzd", "CH": "chf",
    "SE": "sek", "NO": "nok", "DK": "dkk", "PL": "pln", "CZ": "czk", "HU": "huf",
    "MX": "mxn", "BR": "brl", "IN": "inr", "SG": "sgd", "HK": "hkd", "JP": "jpy",
}
EURO_COUNTRIES = frozenset({"AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE",
                            "IT", "LT", "LU", "LV", "MT", "NL", "PT", "SI", "SK"})
# What a new Express-style account still has to give before it can be paid (a few of the
# fields Stripe lists for an individual in the US).
ONBOARDING_FIELDS = [
    "business_profile.url", "external_account", "individual.dob.day", "individual.dob.month",
    "individual.dob.year", "individual.first_name", "individual.last_name",
    "tos_acceptance.date", "tos_acceptance.ip",
]


def account_type(controller: dict[str, Any]) -> str:
    """The legacy `type` Stripe reports for a set of controller properties ("none" when the
    combination matches no legacy type)."""
    fees, losses = controller["fees"]["payer"], controller["losses"]["payments"]
    dashboard = controller["stripe_dashboard"]["type"]
    collection = controller["requirement_collection"]
    if (dashboard, fees, losses, collection) == ("full", "account", "stripe", "stripe"):
        return "standard"
    if (dashboard, fees, losses, collection) == ("express", "application", "application",
                                                 "stripe"):
        return "express"
    if (dashboard, fees, losses, collection) == ("none", "application", "application",
                                                 "application"):
        return "custom"
    return "none"


def account(params: dict[str, Any], controller: dict[str, Any], now: int) -> dict[str, Any]:
    """A connected account just created: nothing submitted, nothing enabled, the requested
    capabilities `inactive` until onboarding is complete."""
    account_id = new_id("acct_", 16)
    country = params.get("country", "US").upper()
    currency = params.get("default_currency") or COUNTRY_CURRENCY.get(
        country, "eur" if country in EURO_COUNTRIES else "usd")
    obj = template("account")
    profile = params.get("business_profile", {})
    obj["business_profile"].update(profile)
    obj["business_profile"]["annual_revenue"] = None
    obj["settings"]["dashboard"].update(display_name=profile.get("name"), timezone="Etc/UTC")
    obj["settings"]["payouts"].update(debit_negative_balances=True, schedule={
        "delay_days": 2, "interval": "daily", "monthly_anchor": None,
        "monthly_payout_days": None, "weekly_anchor": None, "weekly_payout_days": None})
    obj["settings"]["card_payments"]["decline_on"] = {"avs_failure": False,
                                                      "cvc_failure": False}
    requested = [name for name, wanted in params.get("capabilities", {}).items()
                 if wanted.get("requested")]
    due = list(ONBOARDING_FIELDS)
    return fill(
        obj, id=account_id, business_type=params.get("business_type"),
        capabilities=dict.fromkeys(sorted(requested), "inactive"),
        charges_enabled=False, controller={**controller, "is_controller": True,
                                           "type": "application"},
        country=country, created=now, default_currency=currency, details_submitted=False,
        email=params.get("email"),
        external_accounts=list_envelope([], f"/v1/accounts/{account_id}/external_accounts",
                                        False),
        future_requirements={**obj["future_requirements"], "alternatives": [],
                             "currently_due": [], "errors": [], "eventually_due": [],
                             "past_due": [], "pending_verification": []},
        metadata=params.get("metadata", {}), payouts_enabled=False,
        requirements={"alternatives": [], "current_deadline": None, "currently_due": due,
                      "disabled_reason": "requirements.past_due", "errors": [],
                      "eventually_due": list(due), "past_due": list(due),
                      "pending_verification": []},
        type=account_type(controller),
    )


def account_link(url: str, now: int, expires_at: int) -> dict[str, Any]:
    return fill(template("account_link"), created=now, expires_at=expires_at, url=url)


def login_link(url: str, now: int) -> dict[str, Any]:
    return fill(template("login_link"), created=now, url=url)


def transfer(params: dict[str, Any], currency: str, now: int) -> dict[str, Any]:
    transfer_id = new_id("tr_")
    return fill(
        template("transfer"),
        id=transfer_id, amount=params["amount"], amount_reversed=0,
        balance_transaction=new_id("txn_"), created=now, currency=currency,
        description=params.get("description"), destination=params["destination"],
        destination_payment=new_id("py_"), livemode=False, metadata=params.get("metadata", {}),
        reversals=list_envelope([], f"/v1/transfers/{transfer_id}/reversals", False),
        reversed=False, source_transaction=params.get("source_transaction"),
        source_type="card", transfer_group=params.get("transfer_group"),
    )


def transfer_reversal(transfer_obj: dict[str, Any], amount: int, params: dict[str, Any],
                      now: int) -> dict[str, Any]:
    return fill(
        template("transfer_reversal"),
        id=new_id("trr_"), amount=amount, balance_transaction=new_id("txn_"), created=now,
        currency=transfer_obj["currency"], destination_payment_refund=new_id("pyr_"),
        metadata=params.get("metadata", {}), source_refund=None, transfer=transfer_obj["id"],
    )


def balance(available: dict[str, int], pending: dict[str, int]) -> dict[str, Any]:
    """A balance: one entry per currency (all of them in both lists, as Stripe lists them)."""
    currencies = sorted(set(available) | set(pending)) or ["usd"]
    return fill(
        template("balance"), livemode=False,
        available=[{"amount": available.get(c, 0), "currency": c,
                    "source_types": {"card": available.get(c, 0)}} for c in currencies],
        connect_reserved=[{"amount": 0, "currency": c} for c in currencies],
        pending=[{"amount": pending.get(c, 0), "currency": c,
                  "source_types": {"card": pending.get(c, 0)}} for c in currencies],
    )


def balance_transaction(*, bt_id: str | None, type_: str, reporting_category: str, amount: int,
                        currency: str, source: str | None, created: int, available_on: int,
                        fee: int = 0, fee_description: str | None = None,
                        description: str | None = None) -> dict[str, Any]:
    """A movement of money on a balance: `net` = amount − fee (a fee is a Stripe fee, listed
    in fee_details). `status` is set by whoever shows it (pending until available_on)."""
    fee_details = [{"amount": fee, "application": None, "currency": currency,
                    "description": fee_description, "type": "stripe_fee"}] if fee else []
    return fill(
        template("balance_transaction"),
        id=bt_id or new_id("txn_"), amount=amount, available_on=available_on,
        balance_type="payments", created=created, currency=currency, description=description,
        exchange_rate=None, fee=fee, fee_details=fee_details, net=amount - fee,
        reporting_category=reporting_category, source=source, status="pending", type=type_,
    )


def payout(amount: int, currency: str, destination: str, now: int) -> dict[str, Any]:
    """An automatic payout of a connected account's balance to its bank account, in
    transit (the caller marks it paid)."""
    return fill(
        template("payout"),
        id=new_id("po_"), amount=amount, application_fee=None, application_fee_amount=None,
        arrival_date=now, automatic=True, balance_transaction=new_id("txn_"), created=now,
        currency=currency, description="STRIPE PAYOUT", destination=destination,
        failure_balance_transaction=None, failure_code=None, failure_message=None,
        livemode=False, metadata={}, method="standard", original_payout=None,
        reconciliation_status="not_applicable", reversed_by=None, source_type="card",
        statement_descriptor=None, status="in_transit", type="bank_account",
        trace_id={"status": "pending", "value": None}, payout_method=None,
    )


def event(type_: str, obj: dict[str, Any], *, now: int, request_id: str | None,
          idempotency_key: str | None,
          previous_attributes: dict[str, Any] | None = None,
          account: str | None = None) -> dict[str, Any]:
    """An event; `account` (a connected account's id) marks an event that happened on a
    connected account, as Stripe sends them to Connect endpoints. Optional in Stripe's
    OpenAPI spec, so absent from the fixture's example, but typed by the SDK's Event."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    out = fill(
        template("event"),
        id=new_id("evt_"), api_version=API_VERSION, created=now, data=data, livemode=False,
        pending_webhooks=0, request={"id": request_id, "idempotency_key": idempotency_key},
        type=type_,
    )
    if account is not None:
        out["account"] = account
    return out


def list_envelope(data: list[dict[str, Any]], url: str, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


# -- Billing ---------------------------------------------------------------------------

# A Price's `recurring.interval` → its length in seconds when the sandbox advances a period
# by calendar arithmetic it does not do (month and year go by calendar; see `add_interval`).
WEEK = 7 * 86400
DAY = 86400


def product(params: dict[str, Any], now: int) -> dict[str, Any]:
    return fill(
        template("product"),
        id=new_id("prod_", 14), active=params.get("active", True), created=now,
        default_price=None, description=params.get("description"),
        images=params.get("images", []), livemode=False, marketing_features=[],
        metadata=params.get("metadata", {}), name=params["name"], package_dimensions=None,
        shippable=None, statement_descriptor=params.get("statement_descriptor"),
        tax_code=None, unit_label=params.get("unit_label"), updated=now,
        url=params.get("url"), type="service",
    )


def recurring(spec: dict[str, Any]) -> dict[str, Any]:
    return {"interval": spec["interval"], "interval_count": spec.get("interval_count", 1),
            "meter": None, "usage_type": "licensed", "trial_period_days": None}


def billing_price(params: dict[str, Any], product_id: str, now: int) -> dict[str, Any]:
    """A Price made through `POST /v1/prices` (or a Checkout line item's `price_data`)."""
    amount = params["unit_amount"]
    spec = params.get("recurring")
    return fill(
        template("price"),
        id=new_id("price_"), active=params.get("active", True), billing_scheme="per_unit",
        created=now, currency=params["currency"], custom_unit_amount=None, livemode=False,
        lookup_key=params.get("lookup_key"), metadata=params.get("metadata", {}),
        nickname=params.get("nickname"), product=product_id,
        recurring=recurring(spec) if spec else None,
        tax_behavior=params.get("tax_behavior", "unspecified"), tiers_mode=None,
        transform_quantity=None, type="recurring" if spec else "one_time",
        unit_amount=amount, unit_amount_decimal=str(amount),
    )


def plan(price_obj: dict[str, Any]) -> dict[str, Any]:
    """The legacy `plan` a subscription item still carries: its price seen as a Plan."""
    spec = price_obj["recurring"]
    return {"active": price_obj["active"], "amount": price_obj["unit_amount"],
            "amount_decimal": price_obj["unit_amount_decimal"], "billing_scheme": "per_unit",
            "created": price_obj["created"], "currency": price_obj["currency"],
            "id": price_obj["id"], "interval": spec["interval"],
            "interval_count": spec["interval_count"], "livemode": False,
            "metadata": price_obj["metadata"], "meter": None,
            "nickname": price_obj["nickname"], "object": "plan",
            "product": price_obj["product"], "tiers_mode": None, "transform_usage": None,
            "trial_period_days": None, "usage_type": "licensed"}


def subscription_item(price_obj: dict[str, Any], quantity: int, subscription_id: str,
                      start: int, end: int, now: int) -> dict[str, Any]:
    return fill(
        template("subscription_item"),
        id=new_id("si_", 14), created=now, discounts=[], metadata={}, price=price_obj,
        quantity=quantity, subscription=subscription_id, tax_rates=[], plan=plan(price_obj),
        current_period_start=start, current_period_end=end, billing_thresholds=None,
    )


def subscription(*, subscription_id: str, customer_id: str, currency: str, now: int,
                 metadata: dict[str, str], default_payment_method: str | None,
                 test_clock: str | None, description: str | None = None) -> dict[str, Any]:
    """A new subscription (its items and latest_invoice are filled in by the caller)."""
    return fill(
        template("subscription"),
        id=subscription_id, application=None, application_fee_percent=None,
        automatic_tax={"enabled": False, "liability": None, "disabled_reason": None},
        billing_cycle_anchor=now, billing_cycle_anchor_config=None, cancel_at=None,
        canceled_at=None,
        cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method="charge_automatically", created=now, currency=currency,
        customer=customer_id, days_until_due=None,
        default_payment_method=default_payment_method, default_source=None,
        default_tax_rates=[], description=description, discounts=[], ended_at=None,
        invoice_settings={"account_tax_ids": None, "issuer": {"type": "self"}},
        items=list_envelope([], f"/v1/subscription_items?subscription={subscription_id}",
                            False),
        latest_invoice=None, livemode=False, metadata=metadata,
        next_pending_invoice_item_invoice=None, on_behalf_of=None, pause_collection=None,
        payment_settings={"payment_method_options": None, "payment_method_types": None,
                          "save_default_payment_method": "off"},
        pending_invoice_item_interval=None, pending_setup_intent=None, pending_update=None,
        schedule=None, start_date=now, status="active", test_clock=test_clock,
        transfer_data=None, trial_end=None,
        trial_settings={"end_behavior": {"missing_payment_method": "create_invoice"}},
        trial_start=None, cancel_at_period_end=False, billing_thresholds=None,
        billing_mode={"type": "classic", "flexible": None},
    )


def invoice_line(*, invoice_id: str, amount: int, currency: str, description: str,
                 quantity: int, period: tuple[int, int], price_obj: dict[str, Any],
                 subscription_id: str | None, subscription_item_id: str | None,
                 invoice_item_id: str | None = None, proration: bool = False,
                 metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """One line of an invoice: a subscription item's period, or a pending invoice item (a
    proration) swept onto it."""
    if invoice_item_id is None:
        assert subscription_item_id is not None
        parent = {"invoice_item_details": None, "type": "subscription_item_details",
                  "subscription_item_details": {
                      "invoice_item": None, "proration": proration,
                      "proration_details": {"credited_items": None},
                      "subscription": subscription_id,
                      "subscription_item": subscription_item_id}}
    else:
        parent = {"subscription_item_details": None, "type": "invoice_item_details",
                  "invoice_item_details": {
                      "invoice_item": invoice_item_id, "proration": proration,
                      "proration_details": {"credited_items": None},
                      "subscription": subscription_id}}
    return fill(
        template("line_item"),
        id=new_id("il_"), amount=amount, currency=currency, description=description,
        discount_amounts=[], discountable=not proration, discounts=[], invoice=invoice_id,
        livemode=False, metadata=metadata or {},
        period={"start": period[0], "end": period[1]}, quantity=quantity,
        subscription=subscription_id, pretax_credit_amounts=[], taxes=[], parent=parent,
        pricing={"type": "price_details", "unit_amount_decimal": price_obj["unit_amount_decimal"],
                 "price_details": {"price": price_obj["id"], "product": price_obj["product"]}},
    )


def invoice(*, invoice_id: str, customer: dict[str, Any], currency: str, now: int,
            billing_reason: str, subscription_id: str | None,
            subscription_metadata: dict[str, str] | None, lines: list[dict[str, Any]],
            period: tuple[int, int], test_clock: str | None,
            hosted_invoice_url: str) -> dict[str, Any]:
    """A draft invoice (the caller finalizes and pays it)."""
    total = sum(line["amount"] for line in lines)
    return fill(
        template("invoice"),
        id=invoice_id, account_country="US", account_name="Coachpact", account_tax_ids=None,
        amount_due=max(total, 0), amount_paid=0, amount_remaining=max(total, 0),
        amount_shipping=0, application=None, attempt_count=0, attempted=False,
        auto_advance=True,
        automatic_tax={"enabled": False, "liability": None, "status": None,
                       "disabled_reason": None, "provider": None},
        billing_reason=billing_reason, collection_method="charge_automatically",
        created=now, currency=currency, custom_fields=None, customer=customer["id"],
        customer_address=None, customer_email=customer["email"],
        customer_name=customer["name"], customer_phone=customer["phone"],
        customer_shipping=None, customer_tax_exempt="none", customer_tax_ids=[],
        default_payment_method=None, default_source=None, default_tax_rates=[],
        description=None, discounts=[], due_date=None, effective_at=None,
        ending_balance=None, footer=None, from_invoice=None,
        hosted_invoice_url=hosted_invoice_url, invoice_pdf=None,  # no PDFs in the sandbox
        issuer={"type": "self"}, last_finalization_error=None, latest_revision=None,
        lines=list_envelope(lines, f"/v1/invoices/{invoice_id}/lines", False),
        livemode=False, metadata={}, next_payment_attempt=None, number=None,
        on_behalf_of=None,
        payment_settings={"default_mandate": None, "payment_method_options": None,
                          "payment_method_types": None},
        period_end=period[1], period_start=period[0], post_payment_credit_notes_amount=0,
        pre_payment_credit_notes_amount=0, receipt_number=None, rendering=None,
        shipping_cost=None, shipping_details=None, starting_balance=0,
        statement_descriptor=None, status="draft",
        status_transitions={"finalized_at": None, "marked_uncollectible_at": None,
                            "paid_at": None, "voided_at": None},
        subscription=subscription_id, subtotal=total, subtotal_excluding_tax=total,
        test_clock=test_clock, total=total, total_discount_amounts=[],
        total_excluding_tax=total, webhooks_delivered_at=None,
        automatically_finalizes_at=None, total_pretax_credit_amounts=[], total_taxes=[],
        amount_overpaid=0,
        parent=None if subscription_id is None else {
            "quote_details": None, "type": "subscription_details",
            "subscription_details": {"metadata": subscription_metadata or {},
                                     "subscription": subscription_id}},
    )


def invoice_item(*, customer_id: str, amount: int, currency: str, description: str,
                 period: tuple[int, int], price_obj: dict[str, Any], quantity: int,
                 subscription_id: str, subscription_item_id: str, now: int,
                 test_clock: str | None, proration: bool = True) -> dict[str, Any]:
    """A pending invoice item (a proration) waiting for the subscription's next invoice."""
    return fill(
        template("invoiceitem"),
        id=new_id("ii_"), amount=amount, currency=currency, customer=customer_id, date=now,
        description=description, discountable=False, discounts=[], invoice=None,
        livemode=False, metadata={}, period={"start": period[0], "end": period[1]},
        proration=proration, quantity=quantity, tax_rates=[], test_clock=test_clock,
        parent={"type": "subscription_details", "subscription_details": {
            "subscription": subscription_id, "subscription_item": subscription_item_id}},
        pricing={"type": "price_details", "unit_amount_decimal": price_obj["unit_amount_decimal"],
                 "price_details": {"price": price_obj["id"], "product": price_obj["product"]}},
        net_amount=amount,
    )


def invoice_payment(invoice_obj: dict[str, Any], pi_id: str, now: int) -> dict[str, Any]:
    """An invoice's payment (API versions since 2025-03-31 name it here, not on the
    invoice): the PaymentIntent that pays it."""
    return fill(
        template("invoice_payment"),
        id=new_id("inpay_"), amount_paid=None, amount_requested=invoice_obj["amount_due"],
        created=now, currency=invoice_obj["currency"], invoice=invoice_obj["id"],
        is_default=True, livemode=False,
        payment={"type": "payment_intent", "payment_intent": pi_id},
        status="open", status_transitions={"canceled_at": None, "paid_at": None},
    )


def test_clock(name: str | None, frozen_time: int, now: int) -> dict[str, Any]:
    return fill(
        template("test_helpers.test_clock"),
        id=new_id("clock_"), created=now, deletes_after=now + 30 * DAY,
        frozen_time=frozen_time, livemode=False, name=name, status="ready",
        status_details={},
    )


def portal_session(customer_id: str, return_url: str | None, url: str, configuration: str,
                   now: int, locale: str | None = None) -> dict[str, Any]:
    return fill(
        template("billing_portal.session"),
        id=new_id("bps_"), configuration=configuration, created=now, customer=customer_id,
        flow=None, livemode=False, locale=locale, on_behalf_of=None, return_url=return_url,
        url=url,
    )
