"""What happens to the objects: sessions, payment attempts, settlement, refunds, disputes.

The API views, the hosted checkout page and the `/_sandbox/` endpoints all call
these functions, so a test paying through `/_sandbox/.../pay` runs exactly the
code a browser runs. Every operation holds the store's transaction, so a
payment step is atomic even when the page, the API and the worker race.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit

from sandbox import shapes
from sandbox.errors import ParamError, StripeError, not_found
from sandbox.events import Events
from sandbox.settings import REFUND_OUTCOMES, Settings
from sandbox.store import Store

Request = tuple[str, str | None] | None  # (request id, idempotency key) of the API call

# Stripe's test cards: number → (brand, funding, behaviour, decline code or None). Behaviour on
# the hosted page: succeed, decline, 3ds (asks for 3-D Secure), or attach_then_decline (a
# payment is declined, but saving the card in setup mode works: 4000 0000 0000 0341).
CARDS: dict[str, tuple[str, str, str, str | None]] = {
    "4242424242424242": ("visa", "credit", "succeed", None),
    "4000056655665556": ("visa", "debit", "succeed", None),
    "5555555555554444": ("mastercard", "credit", "succeed", None),
    "378282246310005": ("amex", "credit", "succeed", None),
    "4000000000000002": ("visa", "credit", "decline", "generic_decline"),
    "4000000000009995": ("visa", "credit", "decline", "insufficient_funds"),
    "4000000000009987": ("visa", "credit", "decline", "lost_card"),
    "4000000000000069": ("visa", "credit", "decline", "expired_card"),
    "4000000000000127": ("visa", "credit", "decline", "incorrect_cvc"),
    "4000002500003155": ("visa", "credit", "3ds", None),
    "4000000000003220": ("visa", "credit", "3ds", None),
    "4000002760003184": ("visa", "credit", "3ds", None),
    "4000003800000446": ("visa", "credit", "3ds", None),
    "4000000000000341": ("visa", "credit", "attach_then_decline", "generic_decline"),
    # Succeeds; its money skips the pending balance (Stripe's card for adding funds to the
    # available balance in test mode).
    "4000000000000077": ("visa", "credit", "succeed", None),
}
# The card whose charges are available at once, known by its fingerprint.
AVAILABLE_AT_ONCE = "4000000000000077"
# What a saved card does when charged later through the API, where it differs from the page
# (Stripe's test cards for saved cards): "succeed", "authenticate" (every charge asks for
# authentication), "authenticate_unless_set_up" (asks unless the card was set up for
# off-session use), or a decline code. Other cards do what they do on the page; a 3-D Secure
# card without an entry here asks unless set up.
SAVED_CARDS = {
    "4000002760003184": "authenticate",          # authentication required on every charge
    "4000000000003220": "authenticate",          # 3-D Secure 2 required
    "4000002500003155": "authenticate_unless_set_up",
    "4000003800000446": "succeed",               # already set up: off-session charges succeed
    "4000000000000341": "generic_decline",       # attaches fine, every charge is declined
}
# A saved card's next outcome, as the /_sandbox/.../next tool sets it; "default" goes back to
# what the test card does.
NEXT_OUTCOMES = ("succeed", "decline", "authentication_required", "default")
# decline code → (error code, message shown to the customer), as Stripe words them.
DECLINES = {
    "generic_decline": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "lost_card": ("card_declined", "Your card was declined."),
    "expired_card": ("expired_card", "Your card has expired."),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
}
AUTH_FAILED = ("payment_intent_authentication_failure",
               "We are unable to authenticate your payment method. Please choose a different "
               "payment method and try again.")
SETUP_AUTH_FAILED = ("setup_intent_authentication_failure", AUTH_FAILED[1])
# An off-session charge the issuer will not take without the customer (Stripe's soft decline).
AUTH_REQUIRED = ("authentication_required",
                 "Your card was declined. This transaction requires authentication.")
# Stripe's words for a PaymentMethod that cannot be used again.
REUSE_REFUSED = ("The provided PaymentMethod was previously used with a PaymentIntent without "
                 "Customer attachment, shared with a connected account without Customer "
                 "attachment, or was detached from a Customer. It may not be used again. To use "
                 "a PaymentMethod multiple times, you must attach it to a Customer first.")
ATTACH_REFUSED = ("This PaymentMethod was previously used without being attached to a Customer "
                  "or was detached from a Customer, and may not be used again.")
# PaymentIntent statuses that confirm and cancel accept.
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation",
              "requires_action", "processing")
# Stripe's US bank account test numbers (routing 110000000) → outcome and failure code.
BANK_ACCOUNTS = {
    "000123456789": ("succeeded", None),
    "000111111113": ("failed", "account_closed"),
    "000111111116": ("failed", "no_account"),
    "000222222227": ("failed", "insufficient_funds"),
}
BANK_FAILURES = {
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "insufficient_funds": "The customer's account has insufficient funds to cover this payment.",
}
TEST_ROUTING = "110000000"
# metadata[sandbox_refund] on refunds.create: this refund's outcome, whatever the knob says.
REFUND_OVERRIDE = "sandbox_refund"
# A refund's status changed (it succeeded, failed or was canceled): Stripe sends both, each
# with the refund (charge.refund.updated only for a refund of a charge, as all are here).
REFUND_UPDATED = ("refund.updated", "charge.refund.updated")
# The dispute statuses still awaiting a decision (the sandbox opens chargebacks, no inquiries).
OPEN_DISPUTE = ("needs_response", "under_review")
# Evidence fields that hold the id of a file upload rather than text.
EVIDENCE_FILES = frozenset({
    "cancellation_policy", "customer_communication", "customer_signature",
    "duplicate_charge_documentation", "receipt", "refund_policy", "service_documentation",
    "shipping_documentation", "uncategorized_file",
})
EVIDENCE_MAX_CHARACTERS = 150_000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Connect: the controller properties each legacy account `type` stands for.
LEGACY_TYPES: dict[str, dict[str, Any]] = {
    "standard": {"fees": {"payer": "account"}, "losses": {"payments": "stripe"},
                 "requirement_collection": "stripe", "stripe_dashboard": {"type": "full"}},
    "express": {"fees": {"payer": "application"}, "losses": {"payments": "application"},
                "requirement_collection": "stripe", "stripe_dashboard": {"type": "express"}},
    "custom": {"fees": {"payer": "application"}, "losses": {"payments": "application"},
               "requirement_collection": "application", "stripe_dashboard": {"type": "none"}},
}
ACCOUNT_LINK_SECONDS = 300  # an Account Link expires after five minutes
# What an onboarded account is newly asked for is due this long after the ask (`require`).
REQUIREMENT_DEADLINE_SECONDS = 14 * 24 * 3600
# Stripe's words when the destination cannot receive transfers (code
# insufficient_capabilities_for_transfer) and when the platform's balance is short.
TRANSFER_CAPABILITY = ("Your destination account needs to have at least one of the following "
                       "capabilities enabled: transfers, crypto_transfers, legacy_payments")
BALANCE_INSUFFICIENT = ("You have insufficient available funds in your Stripe account. Try "
                        "adding funds directly to your available balance by creating Charges "
                        "using the 4000000000000077 test card. See: "
                        "https://stripe.com/docs/testing#available-balance")
# Stripe's fee for a dispute (withdrawn with the disputed amount), per currency in minor
# units; other currencies pay DISPUTE_FEE_DEFAULT (zero-decimal ones the yen's figure).
DISPUTE_FEES = {"usd": 1500, "cad": 1500, "eur": 2000, "gbp": 2000, "aud": 2500, "nzd": 2500,
                "chf": 2500, "sgd": 2000, "hkd": 15000, "jpy": 2000, "krw": 20000}
DISPUTE_FEE_DEFAULT = 1500


class PaymentInputError(Exception):
    """What the customer typed cannot be used (shown next to the field; no event)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class PayResult:
    outcome: str  # succeeded, processing, requires_action, declined
    session: dict[str, Any]
    payment_intent: dict[str, Any] | None  # None in setup mode
    redirect_url: str | None = None
    error: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    setup_intent: dict[str, Any] | None = None  # setup mode only


def luhn_ok(number: str) -> bool:
    total = 0
    for i, digit in enumerate(reversed(number)):
        d = int(digit)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Engine:
    def __init__(self, store: Store, settings: Settings, events: Events) -> None:
        self.store = store
        self.settings = settings
        self.events = events
        from sandbox.billing import Billing
        self.billing = Billing(store, settings, self)

    def now(self) -> int:
        """The sandbox's clock (real time plus the `clock_offset` knob)."""
        return self.settings.now()

    # -- customers -----------------------------------------------------------

    def create_customer(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        email = params.get("email")
        if email is not None and not EMAIL.match(email):
            raise ParamError(f"Invalid email address: {email}", "email", "email_invalid")
        with self.store.transaction():
            now = self.now()
            if "test_clock" in params:
                # A customer made on a test clock lives on its time from the start.
                now = self.billing.test_clock(params["test_clock"], status=400)["frozen_time"]
            customer = shapes.customer(params, now)
            self.store.insert(customer)
            self.events.emit("customer.created", customer, request=request)
        return customer

    # -- checkout sessions -----------------------------------------------------

    def create_session(self, params: dict[str, Any], public_url: str) -> dict[str, Any]:
        """A `payment` mode session (line items to pay) or a `setup` mode one (a card saved
        for later, nothing charged)."""
        mode = params["mode"]
        if mode == "subscription":
            return self._create_subscription_session(params, public_url)
        specs: list[dict[str, Any]] = []
        if mode == "setup":
            currency = self._check_setup_mode(params)
        else:
            specs, currency = self._check_payment_mode(params)
        if "subscription_data" in params:
            raise ParamError(f"You can not pass `subscription_data` in `{mode}` mode.",
                             "subscription_data")
        self._check_session_common(params)
        created = self.now()
        expires_at = self._session_expiry(params, created)
        if mode == "setup":
            methods = params.get("payment_method_types") or ["card"]
            if set(methods) != {"card"}:
                raise ParamError("The sandbox supports only `card` in `setup` mode.",
                                 "payment_method_types")
        else:
            methods = params.get("payment_method_types") or (
                ["card", "us_bank_account"] if currency == "usd" else ["card"])
            if "us_bank_account" in methods and currency != "usd":
                raise ParamError("The payment method `us_bank_account` only supports `usd`.",
                                 "payment_method_types")
        items = [shapes.line_item(spec, created) for spec in specs]
        if mode == "payment":
            assert currency is not None
            total = sum(item["amount_total"] for item in items)
            minimum = shapes.MINIMUM_CHARGE[currency]
            if total < minimum:
                raise ParamError(
                    f"The Checkout Session's total amount due must add up to at least "
                    f"{shapes.format_money(minimum, currency)} {currency}.", "line_items",
                    "amount_too_small")
            if total > 99_999_999:
                raise ParamError("The Checkout Session's total amount due must be no more than "
                                 "999,999.99.", "line_items", "amount_too_large")
        sid = shapes.session_id()
        session = shapes.checkout_session(
            {**params, "id": sid, "currency": currency}, items, now=created,
            expires_at=expires_at, url=f"{public_url}/checkout/{sid}", method_types=methods)
        extra = {"public_url": public_url,
                 "payment_intent_data": params.get("payment_intent_data", {}),
                 "setup_intent_data": params.get("setup_intent_data", {}),
                 "expires_at": expires_at}
        with self.store.transaction():
            self.store.insert(session, extra)
            for item in items:
                self.store.insert(item, parent=sid)
        return session

    def _create_subscription_session(self, params: dict[str, Any],
                                     public_url: str) -> dict[str, Any]:
        """A `subscription` mode session: recurring prices; paying it starts the
        subscription and pays its first invoice (cards only)."""
        for name in ("payment_intent_data", "setup_intent_data", "submit_type"):
            if name in params:
                raise ParamError(f"You can not pass `{name}` in `subscription` mode.", name)
        self._check_session_common(params)
        created = self.now()
        expires_at = self._session_expiry(params, created)
        methods = params.get("payment_method_types") or ["card"]
        if set(methods) != {"card"}:
            raise ParamError("The sandbox supports only `card` in `subscription` mode.",
                             "payment_method_types")
        with self.store.transaction():
            prices = self.billing.check_subscription_items(params.get("line_items") or [])
            items = [shapes.price_line_item(price, quantity,
                                            self.billing._product_name(price), created)
                     for price, quantity in prices]
            sid = shapes.session_id()
            session = shapes.checkout_session(
                {**params, "id": sid}, items, now=created, expires_at=expires_at,
                url=f"{public_url}/checkout/{sid}", method_types=methods)
            session["invoice_creation"] = None
            extra = {"public_url": public_url, "payment_intent_data": {},
                     "setup_intent_data": {},
                     "subscription_data": params.get("subscription_data", {}),
                     "prices": [[price["id"], quantity] for price, quantity in prices],
                     "expires_at": expires_at}
            self.store.insert(session, extra)
            for item in items:
                self.store.insert(item, parent=sid)
        return session

    def _check_session_common(self, params: dict[str, Any]) -> None:
        if params.get("customer") and params.get("customer_email"):
            raise ParamError("You may only specify one of these parameters: customer, "
                             "customer_email.", "customer", "parameters_exclusive")
        if params.get("customer") and not self.store.get(params["customer"], "customer"):
            raise ParamError(f"No such customer: '{params['customer']}'", "customer",
                             "resource_missing")
        email = params.get("customer_email")
        if email is not None and not EMAIL.match(email):
            raise ParamError(f"Invalid email address: {email}", "customer_email", "email_invalid")
        for name in ("success_url", "cancel_url"):
            if name in params and not _valid_url(params[name]):
                raise ParamError("Not a valid URL", name, "url_invalid")

    @staticmethod
    def _session_expiry(params: dict[str, Any], created: int) -> int:
        expires_at = params.get("expires_at", created + 24 * 3600)
        if expires_at > created + 24 * 3600:
            raise ParamError("The `expires_at` timestamp must be less than 24 hours from "
                             "Checkout Session creation.", "expires_at")
        if expires_at < created + 30 * 60:
            raise ParamError("The `expires_at` timestamp must be at least 30 minutes from "
                             "Checkout Session creation.", "expires_at")
        return int(expires_at)

    def _check_payment_mode(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """A payment mode session's line items and their one currency."""
        if "setup_intent_data" in params:
            raise ParamError("You can not pass `setup_intent_data` in `payment` mode.",
                             "setup_intent_data")
        specs = params.get("line_items") or []
        if not specs:
            raise ParamError("`line_items` is required in `payment` mode.", "line_items",
                             "parameter_missing")
        for i, spec in enumerate(specs):
            self._check_line_item(spec, f"line_items[{i}]")
        currencies = {spec["price_data"]["currency"] for spec in specs}
        if len(currencies) > 1:
            raise ParamError("Checkout does not support multiple currencies.", "line_items")
        currency = currencies.pop()
        if "currency" in params and params["currency"].lower() != currency:
            raise ParamError(f"`currency` ({params['currency']}) must match the currency of the "
                             f"line items ({currency}).", "currency")
        return specs, currency

    @staticmethod
    def _check_setup_mode(params: dict[str, Any]) -> str | None:
        """A setup mode session takes no line items and nothing about a payment; `currency`
        is optional (a card needs none)."""
        for name in ("line_items", "payment_intent_data", "submit_type"):
            if name in params:
                raise ParamError(f"You can not pass `{name}` in `setup` mode.", name)
        currency = params.get("currency")
        if currency is None:
            return None
        if currency.lower() not in shapes.MINIMUM_CHARGE:
            raise ParamError(f"Invalid currency: {currency}. The sandbox supports: "
                             f"{', '.join(sorted(shapes.MINIMUM_CHARGE))}.", "currency",
                             "parameter_invalid")
        return currency.lower()

    def _check_line_item(self, spec: dict[str, Any], param: str) -> None:
        if "price" in spec:
            raise ParamError(f"No such price: '{spec['price']}'", f"{param}[price]",
                             "resource_missing")
        data = spec.get("price_data")
        if data is None:
            raise ParamError(f"Missing required param: {param}[price_data].",
                             f"{param}[price_data]", "parameter_missing")
        if "product" in data:
            raise ParamError(f"No such product: '{data['product']}'",
                             f"{param}[price_data][product]", "resource_missing")
        if "product_data" not in data:
            raise ParamError(f"Missing required param: {param}[price_data][product_data].",
                             f"{param}[price_data][product_data]", "parameter_missing")
        if "unit_amount" not in data:
            decimal = data.pop("unit_amount_decimal", None)
            if decimal is None or not re.fullmatch(r"\d+(\.0+)?", decimal):
                raise ParamError(f"Missing required param: {param}[price_data][unit_amount].",
                                 f"{param}[price_data][unit_amount]", "parameter_missing")
            data["unit_amount"] = int(float(decimal))
        data.pop("unit_amount_decimal", None)
        currency = data["currency"].lower()
        if currency not in shapes.MINIMUM_CHARGE:
            raise ParamError(f"Invalid currency: {data['currency']}. The sandbox supports: "
                             f"{', '.join(sorted(shapes.MINIMUM_CHARGE))}.",
                             f"{param}[price_data][currency]", "parameter_invalid")
        data["currency"] = currency
        if "quantity" not in spec:
            raise ParamError(f"Quantity is required. Add `quantity` to `{param}`.",
                             f"{param}[quantity]", "parameter_missing")

    def session(self, sid: str, *, param: str = "session") -> dict[str, Any]:
        self.expire_if_due(sid)
        session = self.store.get(sid, "checkout.session")
        if session is None:
            raise not_found("checkout.session", sid, param)
        return session

    def session_extra(self, sid: str) -> dict[str, Any]:
        found = self.store.get_with_extra(sid, "checkout.session")
        if found is None:
            raise not_found("checkout.session", sid, "session")
        return found[1]

    def line_items(self, sid: str) -> list[dict[str, Any]]:
        return self.store.children(sid, "item")

    def expire_session(self, sid: str, request: Request) -> dict[str, Any]:
        with self.store.transaction():
            session = self.session(sid)
            if session["status"] != "open":
                raise StripeError(
                    f"Only Checkout Sessions with a status in [\"open\"] can be expired. This "
                    f"Checkout Session has a status of \"{session['status']}\".", param="session")
            return self._expire(session, request)

    def expire_if_due(self, sid: str) -> None:
        with self.store.transaction():
            found = self.store.get_with_extra(sid, "checkout.session")
            if found and found[0]["status"] == "open" and found[0]["expires_at"] <= self.now():
                self._expire(found[0], None)

    def _expire(self, session: dict[str, Any], request: Request) -> dict[str, Any]:
        session["status"] = "expired"
        session["url"] = None  # Stripe clears the URL once a session can no longer be paid
        if session["payment_intent"]:
            pi = self.store.get(session["payment_intent"], "payment_intent")
            if pi and pi["status"] in ("requires_payment_method", "requires_action"):
                pi.update(status="canceled", canceled_at=self.now(),
                          cancellation_reason="abandoned", next_action=None)
                self.store.save(pi)
                self.events.emit("payment_intent.canceled", pi, request=request)
        if session["setup_intent"]:
            si = self.store.get(session["setup_intent"], "setup_intent")
            if si and si["status"] in ("requires_payment_method", "requires_action"):
                si.update(status="canceled", cancellation_reason="abandoned", next_action=None)
                self.store.save(si)
                self.events.emit("setup_intent.canceled", si, request=request)
        self.store.save(session)
        self.events.emit("checkout.session.expired", session, request=request)
        return session

    # -- paying (hosted page and /_sandbox/.../pay) -----------------------------

    def pay(self, sid: str, form: dict[str, str]) -> PayResult:
        """One attempt to pay an open session with what the checkout form holds."""
        with self.store.transaction():
            session = self.session(sid)
            extra = self.session_extra(sid)
            self._require_open(session)
            email = (form.get("email") or session["customer_email"]
                     or self._customer_email(session) or "").strip()
            if not EMAIL.match(email):
                raise PaymentInputError("Enter a valid email address.", "email")
            name = (form.get("name") or "").strip() or None
            method = form.get("payment_method") or (
                "us_bank_account" if form.get("bank_account") else "card")
            if method not in session["payment_method_types"]:
                raise PaymentInputError("This payment method is not available.", "payment_method")
            billing = {"email": email, "name": name, "phone": None}
            if session["mode"] == "subscription":
                return self._pay_subscription(session, extra, form, billing)
            if session["mode"] == "setup":
                si = self._current_setup_intent(session, extra)
                if si["status"] == "requires_action":
                    raise PaymentInputError("Complete the authentication step first.",
                                            "card_number")
                return self._setup_card(session, extra, si, form, billing)
            pi = self._current_intent(session, extra, method)
            if pi["status"] == "requires_action":
                raise PaymentInputError("Complete the authentication step first.", "card_number")
            if method == "card":
                return self._pay_card(session, extra, pi, form, billing)
            return self._pay_bank(session, extra, pi, form, billing)

    def _require_open(self, session: dict[str, Any]) -> None:
        if session["status"] == "expired":
            raise StripeError("This Checkout Session has expired.", param="session",
                              code="checkout_session_expired")
        if session["status"] == "complete":
            raise StripeError("This Checkout Session is already complete.", param="session",
                              code="checkout_session_complete")

    def _customer_email(self, session: dict[str, Any]) -> str | None:
        if not session["customer"]:
            return None
        customer = self.store.get(session["customer"], "customer")
        return customer["email"] if customer else None

    def _current_intent(self, session: dict[str, Any], extra: dict[str, Any],
                        method: str) -> dict[str, Any]:
        """The session's PaymentIntent, created at the first attempt (as Stripe does)."""
        if session["payment_intent"]:
            pi = self.store.get(session["payment_intent"], "payment_intent")
            assert pi is not None
            pi["payment_method_types"] = [method]
            return pi
        pi = shapes.payment_intent(session, extra["payment_intent_data"], method, self.now())
        self.store.insert(pi, {"session": session["id"]})
        session["payment_intent"] = pi["id"]
        self.store.save(session)
        return pi

    def _current_setup_intent(self, session: dict[str, Any],
                              extra: dict[str, Any]) -> dict[str, Any]:
        """A setup mode session's SetupIntent, created at the first attempt like a payment
        mode session's PaymentIntent."""
        if session["setup_intent"]:
            si = self.store.get(session["setup_intent"], "setup_intent")
            assert si is not None
            return si
        si = shapes.setup_intent(session, extra.get("setup_intent_data", {}), self.now())
        self.store.insert(si, {"session": session["id"]})
        session["setup_intent"] = si["id"]
        self.store.save(session)
        self.events.emit("setup_intent.created", si, request=None)
        return si

    def _card(self, form: dict[str, str]) -> tuple[dict[str, Any], str]:
        number = re.sub(r"[\s-]", "", form.get("card_number") or "")
        if not number.isdigit() or not 13 <= len(number) <= 19 or not luhn_ok(number):
            raise PaymentInputError("Your card number is invalid.", "card_number")
        if number not in CARDS:
            raise PaymentInputError(
                "Your card was declined. Your request was in test mode, but used a non test "
                "card. Use one of Stripe's test cards (e.g. 4242 4242 4242 4242).", "card_number")
        expiry = re.sub(r"\s", "", form.get("card_expiry") or "12/34")
        match = re.fullmatch(r"(\d{1,2})/(\d{2}|\d{4})", expiry)
        if not match or not 1 <= int(match.group(1)) <= 12:
            raise PaymentInputError("Your card's expiration date is incomplete.", "card_expiry")
        month, year = int(match.group(1)), int(match.group(2))
        year = year + 2000 if year < 100 else year
        current = time.gmtime(self.now())
        if (year, month) < (current.tm_year, current.tm_mon):
            raise PaymentInputError("Your card's expiration year is in the past.", "card_expiry")
        cvc = (form.get("card_cvc") or "123").strip()
        if not re.fullmatch(r"\d{3,4}", cvc):
            raise PaymentInputError("Your card's security code is incomplete.", "card_cvc")
        brand, funding, behaviour, decline = CARDS[number]
        card = {"brand": brand, "funding": funding, "last4": number[-4:], "exp_month": month,
                "exp_year": year, "country": "US", "fingerprint": _fingerprint(number),
                "amount_authorized": None, "behaviour": behaviour, "decline": decline}
        return card, number

    def _new_payment_method(self, card: dict[str, Any], number: str,
                            billing: dict[str, Any]) -> dict[str, Any]:
        """The PaymentMethod for a card typed on the page (one per attempt, as on Stripe).
        Its `extra` remembers what the test card does when charged again later."""
        pm = shapes.payment_method(card, billing, self.now())
        behaviour, decline = card["behaviour"], card["decline"]
        saved = SAVED_CARDS.get(number) or {
            "succeed": "succeed", "3ds": "authenticate_unless_set_up"}.get(behaviour) or decline
        self.store.insert(pm, {"behaviour": behaviour, "saved": saved, "setup_for": None,
                               "consumed": False, "detached": False, "next": None})
        return pm

    def _pay_card(self, session: dict[str, Any], extra: dict[str, Any], pi: dict[str, Any],
                  form: dict[str, str], billing: dict[str, Any]) -> PayResult:
        card, number = self._card(form)
        pm_id = self._new_payment_method(card, number, billing)["id"]
        pi["payment_method"] = pm_id
        attempt = {"card": card, "billing": billing, "payment_method": pm_id}
        pi_extra = {"session": session["id"], "attempt": attempt}
        if card["behaviour"] == "3ds":
            auth_url = f"{extra['public_url']}/checkout/{session['id']}/authenticate"
            pi.update(status="requires_action", last_payment_error=None, next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": f"{extra['public_url']}/checkout/"
                                                  f"{session['id']}", "url": auth_url}})
            self.store.save(pi, pi_extra)
            self.events.emit("payment_intent.requires_action", pi, request=None)
            return PayResult("requires_action", session, pi, redirect_url=auth_url)
        self.store.save(pi, pi_extra)
        if card["behaviour"] in ("decline", "attach_then_decline"):
            return self._decline_card(session, extra, pi, attempt, card["decline"])
        return self._succeed_card(session, extra, pi, attempt, three_d_secure=False)

    # -- subscription mode: the first invoice, paid by the card that is then saved ------

    def _pay_subscription(self, session: dict[str, Any], extra: dict[str, Any],
                          form: dict[str, str], billing: dict[str, Any]) -> PayResult:
        """A subscription mode session paid with a card: the customer (created when the
        session has none), the card attached to it, the subscription with the card as its
        default, its first invoice paid; then checkout.session.completed with both. A
        declined card changes nothing but the page's message; a 3-D Secure card goes through
        the authentication step first (a failed one is like a decline)."""
        if extra.get("pending_card"):
            raise PaymentInputError("Complete the authentication step first.", "card_number")
        extra["last_error"] = None
        self.store.save(session, extra)
        card, number = self._card(form)
        pm = self._new_payment_method(card, number, billing)
        if card["behaviour"] in ("decline", "attach_then_decline"):
            self._consume(pm["id"])
            code, message = DECLINES[card["decline"]]
            return PayResult("declined", session, None, error={
                "code": code, "decline_code": card["decline"], "message": message})
        if card["behaviour"] == "3ds":
            extra["pending_card"] = {"payment_method": pm["id"], "billing": billing}
            self.store.save(session, extra)
            auth_url = f"{extra['public_url']}/checkout/{session['id']}/authenticate"
            return PayResult("requires_action", session, None, redirect_url=auth_url)
        return self._start_subscription(session, extra, pm, billing)

    def _authenticate_subscription(self, session: dict[str, Any], extra: dict[str, Any],
                                   outcome: str) -> PayResult:
        pending = extra.get("pending_card")
        if not pending:
            raise StripeError("This Checkout Session has no card awaiting authentication.",
                              param="session")
        extra["pending_card"] = None
        self.store.save(session, extra)
        pm, _ = self.payment_method(pending["payment_method"])
        if outcome == "succeeded":
            return self._start_subscription(session, extra, pm, pending["billing"])
        self._consume(pm["id"])
        code, message = AUTH_FAILED
        extra["last_error"] = message  # shown on the page until the next attempt
        self.store.save(session, extra)
        return PayResult("declined", session, None,
                         error={"code": code, "decline_code": None, "message": message})

    def _start_subscription(self, session: dict[str, Any], extra: dict[str, Any],
                            pm: dict[str, Any], billing: dict[str, Any]) -> PayResult:
        customer_id = session["customer"]
        if customer_id is None:
            customer = shapes.customer({"email": billing["email"], "name": billing["name"]},
                                       self.now())
            self.store.insert(customer)
            self.events.emit("customer.created", customer, request=None)
            customer_id = session["customer"] = customer["id"]
        found = self.store.get_with_extra(pm["id"], "payment_method")
        assert found is not None
        pm, pm_extra = found
        pm_extra["setup_for"] = "off_session"
        pm["allow_redisplay"] = "limited"  # what Checkout sets on a card it saves
        self._attach(pm, pm_extra, customer_id, None)
        prices = [(self.billing.price(price_id), quantity)
                  for price_id, quantity in extra["prices"]]
        data = extra.get("subscription_data", {})
        sub, invoice = self.billing.start_subscription(
            customer_id=customer_id, prices=prices, pm=pm, pm_extra=pm_extra,
            metadata=data.get("metadata", {}), description=data.get("description"),
            public_url=extra["public_url"], request=None)
        session.update(subscription=sub["id"], invoice=invoice["id"])
        self._complete(session, billing, paid=invoice["status"] == "paid")
        self.events.emit("checkout.session.completed", session, request=None)
        return PayResult("succeeded", session, None,
                         redirect_url=self._success_url(session, extra))

    # -- setup mode: save a card, charge nothing ----------------------------------------

    def _setup_card(self, session: dict[str, Any], extra: dict[str, Any], si: dict[str, Any],
                    form: dict[str, str], billing: dict[str, Any]) -> PayResult:
        card, number = self._card(form)
        pm = self._new_payment_method(card, number, billing)
        si.update(payment_method=pm["id"], last_setup_error=None)
        si_extra = {"session": session["id"], "attempt": {"billing": billing,
                                                          "payment_method": pm["id"]}}
        if card["behaviour"] == "3ds":
            auth_url = f"{extra['public_url']}/checkout/{session['id']}/authenticate"
            si.update(status="requires_action", next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": f"{extra['public_url']}/checkout/"
                                                  f"{session['id']}", "url": auth_url}})
            self.store.save(si, si_extra)
            self.events.emit("setup_intent.requires_action", si, request=None)
            return PayResult("requires_action", session, None, redirect_url=auth_url,
                             setup_intent=si)
        self.store.save(si, si_extra)
        if card["behaviour"] == "decline":
            code, message = DECLINES[card["decline"]]
            return self._fail_setup(session, si, code, message, card["decline"])
        return self._succeed_setup(session, extra, si, billing)

    def _succeed_setup(self, session: dict[str, Any], extra: dict[str, Any],
                       si: dict[str, Any], billing: dict[str, Any]) -> PayResult:
        """The card is saved for off-session use and, with a customer, attached to it."""
        found = self.store.get_with_extra(si["payment_method"], "payment_method")
        assert found is not None
        pm, pm_extra = found
        pm_extra["setup_for"] = "off_session"
        pm["allow_redisplay"] = "limited"  # what Checkout sets on a card it saves
        si.update(status="succeeded", last_setup_error=None, next_action=None)
        self.store.save(si)
        if session["customer"]:
            self._attach(pm, pm_extra, session["customer"], None)
        else:
            self.store.save(pm, pm_extra)
        self._complete(session, billing, paid=False)
        self.events.emit("setup_intent.succeeded", si, request=None)
        self.events.emit("checkout.session.completed", session, request=None)
        return PayResult("succeeded", session, None,
                         redirect_url=self._success_url(session, extra), setup_intent=si)

    def _authenticate_setup(self, session: dict[str, Any], extra: dict[str, Any],
                            outcome: str) -> PayResult:
        found = (self.store.get_with_extra(session["setup_intent"], "setup_intent")
                 if session["setup_intent"] else None)
        if not found or found[0]["status"] != "requires_action":
            raise StripeError("This Checkout Session has no card awaiting authentication.",
                              param="session")
        si, si_extra = found
        si["next_action"] = None
        if outcome == "succeeded":
            return self._succeed_setup(session, extra, si, si_extra["attempt"]["billing"])
        code, message = SETUP_AUTH_FAILED
        return self._fail_setup(session, si, code, message, None)

    def _fail_setup(self, session: dict[str, Any], si: dict[str, Any], code: str, message: str,
                    decline: str | None) -> PayResult:
        pm = self._consume(si["payment_method"])
        si.update(status="requires_payment_method", payment_method=None, next_action=None,
                  last_setup_error=self._last_error(code, message, decline, None, "card", pm))
        self.store.save(si)
        self.events.emit("setup_intent.setup_failed", si, request=None)
        return PayResult("declined", session, None, setup_intent=si,
                         error={"code": code, "decline_code": decline, "message": message})

    def _consume(self, pm_id: str) -> dict[str, Any] | None:
        """A PaymentMethod used once and not attached to a customer: never usable again.
        (None for an attempt stored before cards became PaymentMethod objects.)"""
        found = self.store.get_with_extra(pm_id, "payment_method")
        if found is None:
            return None
        pm, pm_extra = found
        if pm["customer"] is None and not pm_extra["setup_for"]:
            pm_extra["consumed"] = True
            self.store.save(pm, pm_extra)
        return pm

    def authenticate(self, sid: str, outcome: str) -> PayResult:
        """The 3-D Secure step's answer: `succeeded` (approve) or `failed`."""
        if outcome not in ("succeeded", "failed"):
            raise ParamError("outcome must be succeeded or failed", "outcome")
        with self.store.transaction():
            session = self.session(sid)
            extra = self.session_extra(sid)
            self._require_open(session)
            if session["mode"] == "setup":
                return self._authenticate_setup(session, extra, outcome)
            if session["mode"] == "subscription":
                return self._authenticate_subscription(session, extra, outcome)
            found = (self.store.get_with_extra(session["payment_intent"], "payment_intent")
                     if session["payment_intent"] else None)
            if not found or found[0]["status"] != "requires_action":
                raise StripeError("This Checkout Session has no payment awaiting "
                                  "authentication.", param="session")
            pi, pi_extra = found
            pi["next_action"] = None
            attempt = pi_extra["attempt"]
            if outcome == "succeeded":
                return self._succeed_card(session, extra, pi, attempt, three_d_secure=True)
            code, message = AUTH_FAILED
            pm = self._consume(attempt["payment_method"])
            pi.update(status="requires_payment_method", last_payment_error=self._last_error(
                code, message, None, None, "card", pm))
            self.store.save(pi)
            self.events.emit("payment_intent.payment_failed", pi, request=None)
            return PayResult("declined", session, pi,
                             error={"code": code, "decline_code": None, "message": message})

    def _succeed_card(self, session: dict[str, Any], extra: dict[str, Any], pi: dict[str, Any],
                      attempt: dict[str, Any], *, three_d_secure: bool) -> PayResult:
        charge = self._card_charge(pi, attempt["payment_method"], attempt["card"],
                                   attempt["billing"], extra["public_url"],
                                   three_d_secure=three_d_secure)
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"],
                  last_payment_error=None, next_action=None)
        self.store.save(pi)
        self._complete(session, attempt["billing"], paid=True)
        self._after_payment(pi, None, checkout=True)
        self.events.emit("charge.succeeded", charge, request=None)
        self.events.emit("payment_intent.succeeded", pi, request=None)
        self.events.emit("checkout.session.completed", session, request=None)
        return PayResult("succeeded", session, pi, redirect_url=self._success_url(session, extra))

    def _decline_card(self, session: dict[str, Any], extra: dict[str, Any], pi: dict[str, Any],
                      attempt: dict[str, Any], decline: str) -> PayResult:
        code, message = DECLINES[decline]
        charge = self._failed_card_charge(pi, attempt["payment_method"], attempt["card"],
                                          attempt["billing"], extra["public_url"], code,
                                          message, decline)
        pm = self._consume(attempt["payment_method"])
        pi.update(status="requires_payment_method", latest_charge=charge["id"],
                  last_payment_error=self._last_error(code, message, decline, charge["id"],
                                                      "card", pm))
        self.store.save(pi)
        self.events.emit("charge.failed", charge, request=None)
        self.events.emit("payment_intent.payment_failed", pi, request=None)
        return PayResult("declined", session, pi,
                         error={"code": code, "decline_code": decline, "message": message})

    def _card_charge(self, pi: dict[str, Any], pm_id: str, card: dict[str, Any],
                     billing: dict[str, Any], public_url: str, *,
                     three_d_secure: bool = False) -> dict[str, Any]:
        """A succeeded card charge for the whole PaymentIntent (stored; no event yet)."""
        card = dict(card, amount_authorized=pi["amount"],
                    authorization_code=f"{self.now() % 1000000:06d}",
                    network_transaction_id=shapes.new_id("", 15))
        if three_d_secure:
            card["three_d_secure"] = {
                "authentication_flow": "challenge", "electronic_commerce_indicator": "05",
                "exemption_indicator": None, "result": "authenticated",
                "result_reason": None, "transaction_id": shapes.new_id("", 32),
                "version": "2.2.0"}
        charge_id = shapes.new_id("ch_")
        charge = shapes.charge(
            pi, payment_method=pm_id, method_details=shapes.card_details(card),
            billing=billing, status="succeeded", outcome=shapes.outcome("authorized"),
            receipt_url=f"{public_url}/receipts/{charge_id}", now=self.now(),
            charge_id=charge_id)
        self.store.insert(charge)
        self._charge_funds(charge, at_once=card["fingerprint"] == _fingerprint(AVAILABLE_AT_ONCE))
        return charge

    def _failed_card_charge(self, pi: dict[str, Any], pm_id: str, card: dict[str, Any],
                            billing: dict[str, Any], public_url: str, code: str, message: str,
                            reason: str) -> dict[str, Any]:
        """A charge the issuer declined (stored; no event yet)."""
        charge_id = shapes.new_id("ch_")
        charge = shapes.charge(
            pi, payment_method=pm_id, method_details=shapes.card_details(card),
            billing=billing, status="failed", now=self.now(), failure=(code, message),
            charge_id=charge_id,
            outcome=shapes.outcome(
                "issuer_declined", reason=reason, network_status="declined_by_network",
                message="The bank did not return any further details with this decline."),
            receipt_url=f"{public_url}/receipts/{charge_id}")
        self.store.insert(charge)
        return charge

    def _after_payment(self, pi: dict[str, Any], request: Request, *, checkout: bool) -> None:
        """What a successful payment does to its card: with setup_future_usage it is saved
        for later (and attached to the PaymentIntent's customer, emitting
        payment_method.attached); otherwise a card no customer owns is used up."""
        found = self.store.get_with_extra(pi["payment_method"], "payment_method")
        if found is None:
            return
        pm, pm_extra = found
        usage = pi["setup_future_usage"]
        if not usage:
            if pm["customer"] is None:
                pm_extra["consumed"] = True
                self.store.save(pm, pm_extra)
            return
        if pm_extra["setup_for"] != "off_session":
            pm_extra["setup_for"] = usage
        if checkout and pm["allow_redisplay"] == "unspecified":
            pm["allow_redisplay"] = "limited"  # what Checkout sets on a card it saves
        if pi["customer"] and pm["customer"] is None:
            self._attach(pm, pm_extra, pi["customer"], request)
        else:
            self.store.save(pm, pm_extra)

    def _attach(self, pm: dict[str, Any], pm_extra: dict[str, Any], customer_id: str,
                request: Request) -> dict[str, Any]:
        pm["customer"] = customer_id
        self.store.save(pm, pm_extra)
        self.events.emit("payment_method.attached", pm, request=request)
        return pm

    @staticmethod
    def _last_error(code: str, message: str, decline: str | None, charge_id: str | None,
                    method_type: str, payment_method: dict[str, Any] | None = None,
                    ) -> dict[str, Any]:
        """A PaymentIntent's last_payment_error (or a SetupIntent's last_setup_error); for a
        card, Stripe includes the PaymentMethod that failed."""
        return {"advice_code": None, "charge": charge_id, "code": code, "decline_code": decline,
                "doc_url": f"https://stripe.com/docs/error-codes/{code}", "message": message,
                "network_advice_code": None, "network_decline_code": None, "param": None,
                "payment_method": payment_method, "payment_method_type": method_type,
                "type": "card_error" if method_type == "card" else "invalid_request_error"}

    def _pay_bank(self, session: dict[str, Any], extra: dict[str, Any], pi: dict[str, Any],
                  form: dict[str, str], billing: dict[str, Any]) -> PayResult:
        account = re.sub(r"\s", "", form.get("bank_account") or "")
        routing = re.sub(r"\s", "", form.get("routing_number") or TEST_ROUTING)
        if not re.fullmatch(r"\d{9}", routing):
            raise PaymentInputError("Enter a valid 9-digit routing number.", "routing_number")
        if account not in BANK_ACCOUNTS:
            raise PaymentInputError(
                "Use one of Stripe's test account numbers (000123456789 succeeds, "
                "000111111113 fails).", "bank_account")
        if not billing["name"]:
            billing["name"] = billing["email"].split("@")[0]  # Stripe requires a holder name
        pm_id = shapes.new_id("pm_")
        bank = {"fingerprint": _fingerprint(account), "last4": account[-4:],
                "routing_number": routing, "mandate": shapes.new_id("mandate_")}
        charge_id = shapes.new_id("py_")  # Stripe's id prefix for bank-debit charges
        pi.update(status="processing", payment_method=pm_id, last_payment_error=None,
                  payment_method_types=["us_bank_account"])
        charge = shapes.charge(
            pi, payment_method=pm_id, method_details=shapes.bank_details(bank),
            billing=billing, status="pending", now=self.now(), charge_id=charge_id,
            outcome=shapes.outcome("authorized", message="Payment pending."),
            receipt_url=f"{extra['public_url']}/receipts/{charge_id}")
        charge["paid"] = False
        self.store.insert(charge)
        pi["latest_charge"] = charge_id
        settle_at = time.time() + self.settings.knobs.async_settle_seconds
        self.store.save(pi, {"session": session["id"], "settle_at": settle_at,
                             "bank_outcome": BANK_ACCOUNTS[account]})
        self._complete(session, billing, paid=False)
        self.events.emit("charge.pending", charge, request=None)
        self.events.emit("payment_intent.processing", pi, request=None)
        self.events.emit("checkout.session.completed", session, request=None)
        return PayResult("processing", session, pi, redirect_url=self._success_url(session, extra))

    def settle(self, sid: str, outcome: str | None = None) -> dict[str, Any]:
        """Finish a pending bank debit: its programmed outcome, or the one asked for."""
        if outcome not in (None, "succeeded", "failed"):
            raise ParamError("outcome must be succeeded or failed", "outcome")
        with self.store.transaction():
            session = self.session(sid)
            found = (self.store.get_with_extra(session["payment_intent"], "payment_intent")
                     if session["payment_intent"] else None)
            if not found or found[0]["status"] != "processing":
                raise StripeError("This Checkout Session has no pending asynchronous payment.",
                                  param="session")
            pi, pi_extra = found
            programmed, failure = pi_extra["bank_outcome"]
            outcome = outcome or programmed
            failure = failure or "insufficient_funds"
            charge = self.store.get(pi["latest_charge"], "charge")
            assert charge is not None
            pi_extra["settle_at"] = None
            if outcome == "succeeded":
                charge.update(status="succeeded", paid=True, captured=True,
                              amount_captured=charge["amount"],
                              balance_transaction=shapes.new_id("txn_"),
                              outcome=shapes.outcome("authorized"))
                self._charge_funds(charge, at_once=False)
                pi.update(status="succeeded", amount_received=pi["amount"])
                session["payment_status"] = "paid"
                events = ["charge.succeeded", "payment_intent.succeeded",
                          "checkout.session.async_payment_succeeded"]
            else:
                message = BANK_FAILURES[failure]
                charge.update(status="failed", failure_code=failure, failure_message=message,
                              outcome=shapes.outcome("issuer_declined", reason=failure,
                                                     network_status="declined_by_network",
                                                     message=message))
                pi.update(status="requires_payment_method", last_payment_error=self._last_error(
                    failure, message, None, charge["id"], "us_bank_account"))
                events = ["charge.failed", "payment_intent.payment_failed",
                          "checkout.session.async_payment_failed"]
            self.store.save(charge)
            self.store.save(pi, pi_extra)
            self.store.save(session)
            for type_, obj in zip(events, (charge, pi, session), strict=True):
                self.events.emit(type_, obj, request=None)
            return session

    def _complete(self, session: dict[str, Any], billing: dict[str, Any], *, paid: bool) -> None:
        status = ("no_payment_required" if session["mode"] == "setup"
                  else "paid" if paid else "unpaid")
        session.update(status="complete", payment_status=status, url=None,
                       customer_details=shapes.customer_details(billing["email"],
                                                                billing["name"]))
        self.store.save(session)

    @staticmethod
    def _success_url(session: dict[str, Any], extra: dict[str, Any]) -> str:
        if session["success_url"]:
            return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
        return f"{extra['public_url']}/checkout/{session['id']}/complete"

    # -- timed transitions (run by the worker) ------------------------------------

    def tick(self) -> None:
        self.billing.run_due(None, self.now())
        for sid in self.store.open_sessions_expired_by(self.now()):
            self.expire_if_due(sid)
        for pi_id in self.store.ids_where_extra("payment_intent", "$.settle_at", "<=",
                                                time.time()):
            found = self.store.get_with_extra(pi_id, "payment_intent")
            if found and found[0]["status"] == "processing":
                try:
                    self.settle(found[1]["session"])
                except StripeError:  # settled on demand in the meantime
                    continue

    # -- customers and their saved cards (PaymentMethods) -------------------------------

    def customer(self, customer_id: str, *, status: int = 404) -> dict[str, Any]:
        """A customer; 404 when it is the request's path, 400 when named by a parameter."""
        customer = self.store.get(customer_id, "customer")
        if customer is None:
            raise StripeError(f"No such customer: '{customer_id}'", status=status,
                              code="resource_missing", param="customer")
        return customer

    def update_customer(self, customer_id: str, params: dict[str, Any],
                        request: Request) -> dict[str, Any]:
        """`POST /v1/customers/{id}`: contact details, metadata and the default card
        (invoice_settings[default_payment_method], which must be attached to the customer)."""
        email = params.get("email")
        if email is not None and not EMAIL.match(email):
            raise ParamError(f"Invalid email address: {email}", "email", "email_invalid")
        with self.store.transaction():
            customer = self.customer(customer_id)
            before = copy.deepcopy(customer)
            for name in ("email", "name", "phone", "description"):
                if name in params:
                    customer[name] = params[name]
            if "metadata" in params:
                _merge_metadata(customer, params["metadata"])
            settings = params.get("invoice_settings", {})
            if "default_payment_method" in settings:
                pm_id = settings["default_payment_method"]
                if pm_id is not None:
                    pm = self.store.get(pm_id, "payment_method")
                    if pm is None or pm["customer"] != customer_id:
                        raise StripeError(
                            f"The customer does not have a payment method with the ID {pm_id}. "
                            "The payment method must be attached to the customer.",
                            code="resource_missing",
                            param="invoice_settings[default_payment_method]")
                customer["invoice_settings"]["default_payment_method"] = pm_id
            previous = _previous(before, customer)
            self.store.save(customer)
            if previous:
                self.events.emit("customer.updated", customer, request=request,
                                 previous_attributes=previous)
            return customer

    def payment_method(self, pm_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = self.store.get_with_extra(pm_id, "payment_method")
        if found is None:
            raise StripeError(f"No such PaymentMethod: '{pm_id}'", status=404,
                              code="resource_missing", param="payment_method")
        return found

    def attach_payment_method(self, pm_id: str, customer_id: str,
                              request: Request) -> dict[str, Any]:
        """`POST /v1/payment_methods/{id}/attach`: a card not yet used up (saved with
        setup_future_usage or in setup mode without a customer) joins a customer."""
        with self.store.transaction():
            pm, pm_extra = self.payment_method(pm_id)
            self.customer(customer_id, status=400)
            if pm_extra["consumed"] or pm_extra["detached"]:
                raise StripeError(ATTACH_REFUSED, param="payment_method")
            if pm["customer"] == customer_id:
                return pm
            if pm["customer"] is not None:
                raise StripeError("The payment method you provided has already been attached "
                                  "to a customer.", param="payment_method")
            return self._attach(pm, pm_extra, customer_id, request)

    def detach_payment_method(self, pm_id: str, request: Request) -> dict[str, Any]:
        """`POST /v1/payment_methods/{id}/detach`: the card leaves its customer for good (a
        detached card can be neither charged nor attached again). A customer whose default
        card it was loses the default (customer.updated)."""
        with self.store.transaction():
            pm, pm_extra = self.payment_method(pm_id)
            customer_id = pm["customer"]
            if customer_id is None:
                raise StripeError("The payment method you provided is not attached to a "
                                  "customer so detachment is impossible.", param="payment_method")
            pm["customer"] = None
            pm_extra["detached"] = True
            self.store.save(pm, pm_extra)
            self.events.emit("payment_method.detached", pm, request=request,
                             previous_attributes={"customer": customer_id})
            customer = self.store.get(customer_id, "customer")
            if customer and customer["invoice_settings"]["default_payment_method"] == pm_id:
                customer["invoice_settings"]["default_payment_method"] = None
                self.store.save(customer)
                self.events.emit("customer.updated", customer, request=request,
                                 previous_attributes={
                                     "invoice_settings": {"default_payment_method": pm_id}})
            return pm

    def _usable_method(self, pm_id: str,
                       customer_id: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The card a PaymentIntent names, refused as Stripe refuses it: unknown, used up or
        detached, or another customer's."""
        found = self.store.get_with_extra(pm_id, "payment_method")
        if found is None:
            raise StripeError(f"No such PaymentMethod: '{pm_id}'", code="resource_missing",
                              param="payment_method")
        pm, pm_extra = found
        owner = pm["customer"]
        if owner is None and (pm_extra["consumed"] or pm_extra["detached"]):
            raise StripeError(REUSE_REFUSED, param="payment_method")
        if owner is not None and customer_id is None:
            raise StripeError("The provided PaymentMethod belongs to a Customer, but you did not "
                              "specify a Customer. Please specify the Customer that this "
                              "PaymentMethod belongs to in the `customer` parameter.",
                              param="customer")
        if owner is not None and owner != customer_id:
            raise StripeError(f"The provided PaymentMethod ({pm_id}) does not belong to the "
                              f"Customer ({customer_id}). Please use a PaymentMethod that "
                              "belongs to this Customer.", param="payment_method")
        return pm, pm_extra

    def _saved_outcome(self, pm: dict[str, Any], pm_extra: dict[str, Any], *,
                       off_session: bool) -> tuple[str, str | None]:
        """What charging a saved card does now: ("succeed", None), ("authenticate", None) or
        ("decline", decline code). The next-outcome tool's setting wins; then an expiry date
        the (sandbox) clock has passed; then the test card's own behaviour."""
        wanted = pm_extra.get("next")
        if wanted:
            if wanted["outcome"] == "decline":
                return "decline", wanted["decline_code"]
            if wanted["outcome"] == "authentication_required":
                return "authenticate", None
            return "succeed", None
        card = pm["card"]
        current = time.gmtime(self.now())
        if (card["exp_year"], card["exp_month"]) < (current.tm_year, current.tm_mon):
            return "decline", "expired_card"
        if not off_session and pm_extra["behaviour"] == "3ds":
            return "authenticate", None  # a 3-D Secure card always asks a customer present
        saved = pm_extra["saved"]
        if saved == "authenticate_unless_set_up":
            set_up = off_session and pm_extra["setup_for"] == "off_session"
            saved = "succeed" if set_up else "authenticate"
        if saved in ("succeed", "authenticate"):
            return saved, None
        return "decline", saved

    # -- PaymentIntents through the API (charging a saved card) ----------------------------

    def create_payment_intent(self, params: dict[str, Any], request: Request,
                              public_url: str) -> dict[str, Any]:
        """`POST /v1/payment_intents`; with confirm=true the saved card is charged at once
        (off_session=true: the customer is not there to authenticate). A decline or an
        authentication the card asks for answers 402 with the failed PaymentIntent."""
        currency = params["currency"].lower()
        if currency not in shapes.MINIMUM_CHARGE:
            raise ParamError(f"Invalid currency: {params['currency']}. The sandbox supports: "
                             f"{', '.join(sorted(shapes.MINIMUM_CHARGE))}.", "currency",
                             "parameter_invalid")
        amount, minimum = params["amount"], shapes.MINIMUM_CHARGE[currency]
        if amount < minimum:
            raise ParamError(f"Amount must be at least {shapes.format_money(minimum, currency)} "
                             f"{currency}", "amount", "amount_too_small")
        if amount > 99_999_999:
            raise ParamError("Amount must be no more than 999,999.99", "amount",
                             "amount_too_large")
        off_session = params.get("off_session")
        if off_session is not None and not params.get("confirm"):
            raise ParamError("You may only specify `off_session` when `confirm` is `true`.",
                             "off_session")
        if params.get("confirm") and "payment_method" not in params:
            raise ParamError("You cannot confirm this PaymentIntent because it's missing a "
                             "payment method. Specify a `payment_method` (a card attached to "
                             "the `customer`).", "payment_method", "parameter_missing")
        if "payment_method_types" in params and "automatic_payment_methods" in params:
            raise ParamError("You may only specify one of these parameters: "
                             "automatic_payment_methods, payment_method_types.",
                             "payment_method_types", "parameters_exclusive")
        automatic: dict[str, Any] | None = None
        if "payment_method_types" not in params:
            # Stripe's default: the payment methods enabled in the Dashboard (here: cards).
            wanted = params.get("automatic_payment_methods", {"enabled": True})
            if wanted["enabled"]:
                automatic = {"allow_redirects": wanted.get("allow_redirects", "always"),
                             "enabled": True}
        with self.store.transaction():
            customer_id = params.get("customer")
            if customer_id is not None:
                self.customer(customer_id, status=400)
            found = (self._usable_method(params["payment_method"], customer_id)
                     if "payment_method" in params else None)
            pi = shapes.new_payment_intent(
                amount=amount, currency=currency, customer=customer_id, data=params,
                method_types=params.get("payment_method_types") or ["card"], now=self.now(),
                automatic=automatic)
            if found is not None:
                pi.update(payment_method=found[0]["id"], status="requires_confirmation")
            self.store.insert(pi, {"public_url": public_url})
            self.events.emit("payment_intent.created", pi, request=request)
            error = None
            if params.get("confirm") and found is not None:
                error = self._confirm(pi, *found, off_session=bool(off_session),
                                      request=request, public_url=public_url)
        if error is not None:
            raise error  # after the commit: the failed attempt is recorded, as on Stripe
        return pi

    def confirm_payment_intent(self, pi_id: str, params: dict[str, Any], request: Request,
                               public_url: str) -> dict[str, Any]:
        """`POST /v1/payment_intents/{id}/confirm`, for one created through the API (e.g. to
        try again after a decline, with the same card or another one)."""
        with self.store.transaction():
            found = self.store.get_with_extra(pi_id, "payment_intent")
            if found is None:
                raise not_found("payment_intent", pi_id, "intent")
            pi, pi_extra = found
            if pi_extra.get("session"):
                raise StripeError("This PaymentIntent belongs to a Checkout Session and is "
                                  "confirmed on its payment page.",
                                  code="payment_intent_unexpected_state", param="intent")
            if pi["status"] == "succeeded":
                raise StripeError("You cannot confirm this PaymentIntent because it has already "
                                  "succeeded after being previously confirmed.",
                                  code="payment_intent_unexpected_state", payment_intent=pi)
            if pi["status"] not in CONFIRMABLE:
                raise StripeError(
                    f"You cannot confirm this PaymentIntent because it has a status of "
                    f"{pi['status']}. Only a PaymentIntent with one of the following statuses "
                    f"may be confirmed: {', '.join(CONFIRMABLE)}.",
                    code="payment_intent_unexpected_state", payment_intent=pi)
            pm_id = params.get("payment_method") or pi["payment_method"]
            if not pm_id:
                raise StripeError("You cannot confirm this PaymentIntent because it's missing a "
                                  "payment method. Specify a `payment_method` (a card attached "
                                  "to the customer).", code="payment_intent_unexpected_state",
                                  param="payment_method", payment_intent=pi)
            pm, pm_extra = self._usable_method(pm_id, pi["customer"])
            error = self._confirm(pi, pm, pm_extra, off_session=bool(params.get("off_session")),
                                  request=request, public_url=pi_extra.get("public_url",
                                                                           public_url))
        if error is not None:
            raise error
        return pi

    def _confirm(self, pi: dict[str, Any], pm: dict[str, Any], pm_extra: dict[str, Any], *,
                 off_session: bool, request: Request, public_url: str) -> StripeError | None:
        """One payment attempt on a saved card. Success: a charge, charge.succeeded,
        payment_intent.succeeded. Failure: a failed charge, charge.failed,
        payment_intent.payment_failed, and the 402 card error to answer (returned, so that
        the caller commits first). A card that asks for authentication while the customer is
        present leaves the PaymentIntent in requires_action."""
        outcome, decline = self._saved_outcome(pm, pm_extra, off_session=off_session)
        pi.update(payment_method=pm["id"], last_payment_error=None, next_action=None)
        if outcome == "authenticate" and not off_session:
            pi.update(status="requires_action", next_action={
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": pm["id"]}})
            self.store.save(pi)
            self.events.emit("payment_intent.requires_action", pi, request=request)
            return None
        card = shapes.saved_card(pm)
        if outcome == "succeed":
            charge = self._card_charge(pi, pm["id"], card, pm["billing_details"], public_url)
            pi.update(status="succeeded", amount_received=pi["amount"],
                      latest_charge=charge["id"])
            self.store.save(pi)
            self._after_payment(pi, request, checkout=False)
            self.events.emit("charge.succeeded", charge, request=request)
            self.events.emit("payment_intent.succeeded", pi, request=request)
            return None
        if outcome == "authenticate":
            code, message = AUTH_REQUIRED
            decline = "authentication_required"
        else:
            assert decline is not None
            code, message = DECLINES[decline]
        charge = self._failed_card_charge(pi, pm["id"], card, pm["billing_details"], public_url,
                                          code, message, decline)
        pm = self._consume(pm["id"]) or pm
        # As on Stripe, a failed attempt clears payment_method; the error keeps the card.
        pi.update(status="requires_payment_method", payment_method=None,
                  latest_charge=charge["id"],
                  last_payment_error=self._last_error(code, message, decline, charge["id"],
                                                      "card", pm))
        self.store.save(pi)
        self.events.emit("charge.failed", charge, request=request)
        self.events.emit("payment_intent.payment_failed", pi, request=request)
        return StripeError(message, status=402, type_="card_error", code=code,
                           charge=charge["id"], decline_code=decline,
                           payment_intent=copy.deepcopy(pi), payment_method=pm)

    def cancel_payment_intent(self, pi_id: str, params: dict[str, Any],
                              request: Request) -> dict[str, Any]:
        with self.store.transaction():
            found = self.store.get_with_extra(pi_id, "payment_intent")
            if found is None:
                raise not_found("payment_intent", pi_id, "intent")
            pi, pi_extra = found
            if pi_extra.get("session"):
                raise StripeError("This PaymentIntent belongs to a Checkout Session; expire the "
                                  "session instead.", code="payment_intent_unexpected_state",
                                  param="intent")
            if pi["status"] not in CANCELABLE:
                raise StripeError(
                    f"You cannot cancel this PaymentIntent because it has a status of "
                    f"{pi['status']}. Only a PaymentIntent with one of the following statuses "
                    f"may be canceled: {', '.join(CANCELABLE)}.",
                    code="payment_intent_unexpected_state", payment_intent=pi)
            pi.update(status="canceled", canceled_at=self.now(), next_action=None,
                      cancellation_reason=params.get("cancellation_reason"))
            self.store.save(pi)
            self.events.emit("payment_intent.canceled", pi, request=request)
            return pi

    # -- the next-outcome tool -----------------------------------------------------------

    def set_next_outcome(self, pm_id: str, outcome: str,
                         decline_code: str | None = None) -> dict[str, Any]:
        """Decide what a saved card does from now on (a sandbox tool): succeed, decline
        (with a decline code, default insufficient_funds), authentication_required, or
        default (what the test card does). Sticky until changed."""
        if outcome not in NEXT_OUTCOMES:
            raise ParamError(f"outcome must be one of {', '.join(NEXT_OUTCOMES)}", "outcome")
        if decline_code is not None and outcome != "decline":
            raise ParamError("decline_code applies only to outcome=decline", "decline_code")
        code = decline_code or "insufficient_funds"
        if outcome == "decline" and code not in DECLINES:
            raise ParamError(f"decline_code must be one of {', '.join(DECLINES)}",
                             "decline_code")
        with self.store.transaction():
            pm, pm_extra = self.payment_method(pm_id)
            pm_extra["next"] = None if outcome == "default" else {
                "outcome": outcome, "decline_code": code if outcome == "decline" else None}
            self.store.save(pm, pm_extra)
            return self.next_outcome(pm_id)

    def next_outcome(self, pm_id: str) -> dict[str, Any]:
        """The tool's setting for a card, and what its next off-session charge will do."""
        pm, pm_extra = self.payment_method(pm_id)
        wanted = pm_extra["next"] or {"outcome": "default", "decline_code": None}
        outcome, decline = self._saved_outcome(pm, pm_extra, off_session=True)
        named = {"succeed": "succeed", "decline": "decline",
                 "authenticate": "authentication_required"}[outcome]
        return {"payment_method": pm["id"], "customer": pm["customer"], **wanted,
                "next_off_session_charge": {"outcome": named, "decline_code": decline}}

    def customer_card(self, customer_id: str) -> str:
        """A customer's card for the tool: its default, else its only attached card."""
        customer = self.customer(customer_id)
        default = customer["invoice_settings"]["default_payment_method"]
        if default:
            return default
        ids = self.store.ids_where_data("payment_method", "$.customer", customer_id)
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise StripeError(f"Customer {customer_id} has no saved card.", param="customer")
        raise StripeError(
            f"Customer {customer_id} has {len(ids)} saved cards and no default "
            f"(invoice_settings.default_payment_method); name one with "
            f"/_sandbox/payment_methods/{{id}}/next: {', '.join(ids)}.", param="customer")

    # -- refunds and disputes -------------------------------------------------

    def refund(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        status = self._new_refund_status(params)
        with self.store.transaction():
            charge = self._refund_target(params)
            if charge["status"] != "succeeded":
                raise StripeError(f"Charge {charge['id']} is not in a refundable state "
                                  f"({charge['status']}).", param="charge")
            self._refuse_if_charged_back(charge)
            remaining = charge["amount"] - charge["amount_refunded"]
            if remaining <= 0:
                raise StripeError(f"Charge {charge['id']} has already been refunded.",
                                  code="charge_already_refunded", param="charge")
            amount = params.get("amount", remaining)
            if amount <= 0:
                raise ParamError("Invalid positive integer", "amount", "parameter_invalid_integer")
            if amount > remaining:
                currency = charge["currency"]
                raise StripeError(
                    f"Refund amount ({shapes.format_money(amount, currency)}) is greater than "
                    f"unrefunded amount on charge ({shapes.format_money(remaining, currency)})",
                    code="amount_too_large", param="amount")
            refund = shapes.refund(charge, amount, params, self.now(), status=status)
            self.store.insert(refund, parent=charge["id"])
            # The refund leaves the balance at once, whatever its status (fees stay with Stripe).
            self._record(None, "refund", "refund", -amount, charge["currency"], refund["id"],
                         bt_id=refund["balance_transaction"])
            previous: dict[str, Any] = {"amount_refunded": charge["amount_refunded"]}
            # Pending refunds count too, as on Stripe; a failed or canceled one gives it back.
            charge["amount_refunded"] += amount
            if charge["amount_refunded"] == charge["amount"]:
                charge["refunded"] = True
                previous["refunded"] = False
            # The charge keeps no copy of its refunds: `expand[]=refunds` lists them.
            self.store.save(charge)
            self.events.emit("refund.created", refund, request=request)
            self.events.emit("charge.refunded", charge, request=request,
                             previous_attributes=previous)
            return refund

    def _new_refund_status(self, params: dict[str, Any]) -> str:
        """The `refund_outcome` knob, or what metadata[sandbox_refund] asks for this refund."""
        wanted = params.get("metadata", {}).get(REFUND_OVERRIDE)
        if wanted is None:
            return self.settings.knobs.refund_outcome
        if wanted not in REFUND_OUTCOMES:
            raise ParamError(f"Invalid metadata[{REFUND_OVERRIDE}] (a sandbox switch): must be "
                             f"one of {', '.join(REFUND_OUTCOMES)}",
                             f"metadata[{REFUND_OVERRIDE}]")
        return wanted

    def _refuse_if_charged_back(self, charge: dict[str, Any]) -> None:
        """Stripe refuses to refund a charge whose chargeback took the money back already."""
        for dispute in self.store.children(charge["id"], "dispute"):
            open_ = dispute["status"] in OPEN_DISPUTE
            if dispute["status"] == "lost" or (open_ and not dispute["is_charge_refundable"]):
                raise StripeError(f"Charge {charge['id']} has been charged back; cannot issue "
                                  "a refund.", code="charge_disputed")

    def _refund_target(self, params: dict[str, Any]) -> dict[str, Any]:
        if "charge" not in params and "payment_intent" not in params:
            raise ParamError("One of the following params should be provided for this request: "
                             "payment_intent or charge.", None, "parameter_missing")
        pi = None
        if "payment_intent" in params:
            pi = self.store.get(params["payment_intent"], "payment_intent")
            if pi is None:
                raise StripeError(f"No such payment_intent: '{params['payment_intent']}'",
                                  code="resource_missing", param="payment_intent")
        if "charge" in params:
            charge = self.store.get(params["charge"], "charge")
            if charge is None:
                raise StripeError(f"No such charge: '{params['charge']}'",
                                  code="resource_missing", param="charge")
            if pi is not None and charge["payment_intent"] != pi["id"]:
                raise StripeError("The charge does not belong to the given payment_intent.",
                                  param="charge")
            return charge
        assert pi is not None
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise StripeError(f"This PaymentIntent ({pi['id']}) does not have a successful "
                              "charge to refund.", param="payment_intent")
        charge = self.store.get(pi["latest_charge"], "charge")
        assert charge is not None
        return charge

    def _load(self, type_: str, object_id: str, param: str) -> dict[str, Any]:
        obj = self.store.get(object_id, type_)
        if obj is None:
            raise not_found(type_, object_id, param)
        return obj

    def settle_refund(self, refund_id: str, outcome: str,
                      failure_reason: str | None = None) -> dict[str, Any]:
        """Finish a pending refund (a sandbox tool): succeeded, or failed (default reason
        `declined`), which gives the amount back to the charge."""
        if outcome not in ("succeeded", "failed"):
            raise ParamError("outcome must be succeeded or failed", "outcome")
        if failure_reason is not None and outcome != "failed":
            raise ParamError("failure_reason applies only to outcome=failed", "failure_reason")
        if failure_reason is not None and failure_reason not in shapes.REFUND_FAILURE_REASONS:
            raise ParamError("failure_reason must be one of "
                             f"{', '.join(shapes.REFUND_FAILURE_REASONS)}", "failure_reason")
        with self.store.transaction():
            refund = self._load("refund", refund_id, "refund")
            if refund["status"] != "pending":
                raise StripeError(f"Refund {refund_id} has a status of `{refund['status']}`; "
                                  "only a `pending` refund can be settled.", param="refund")
            before = copy.deepcopy(refund)
            if outcome == "succeeded":
                refund["status"] = "succeeded"
                types = [*REFUND_UPDATED]
            else:
                shapes.end_refund(refund, "failed", failure_reason or "declined")
                types = ["refund.failed", *REFUND_UPDATED]
            self._save_refund(refund, returned=outcome == "failed")
            previous = _previous(before, refund)
            for type_ in types:
                self.events.emit(type_, refund, request=None, previous_attributes=previous)
            return refund

    def cancel_refund(self, refund_id: str, request: Request) -> dict[str, Any]:
        """`POST /v1/refunds/{id}/cancel`: only a refund waiting for the customer can be
        canceled; Stripe marks it `merchant_request` and gives the amount back."""
        with self.store.transaction():
            refund = self._load("refund", refund_id, "refund")
            if refund["status"] != "requires_action":
                raise StripeError(
                    f"This refund cannot be canceled because it has a status of "
                    f"`{refund['status']}`. Only refunds with a status of `requires_action` can "
                    "be canceled.", param="refund")
            before = copy.deepcopy(refund)
            shapes.end_refund(refund, "canceled", "merchant_request")
            self._save_refund(refund, returned=True)
            previous = _previous(before, refund)
            for type_ in REFUND_UPDATED:
                self.events.emit(type_, refund, request=request, previous_attributes=previous)
            return refund

    def charge_refunds(self, charge_id: str) -> dict[str, Any]:
        """A charge's refunds as `expand[]=refunds` gives them: the newest ten, has_more."""
        data, has_more = self.store.page("refund", where="json_extract(data, '$.charge') = ?",
                                         args=[charge_id])
        return shapes.charge_refunds(charge_id, data, has_more)

    def _save_refund(self, refund: dict[str, Any], *, returned: bool) -> None:
        """Save a refund whose status changed; a failed or canceled refund no longer counts
        in the charge's amount_refunded."""
        self.store.save(refund)
        if returned:
            charge = self.store.get(refund["charge"], "charge")
            assert charge is not None
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            self._record(None, "refund_failure", "refund_failure", refund["amount"],
                         refund["currency"], refund["id"],
                         bt_id=refund["failure_balance_transaction"])
            self.store.save(charge)

    def dispute(self, charge_id: str, amount: int | None, reason: str,
                refundable: bool = False) -> dict[str, Any]:
        """Open a chargeback (a sandbox tool); `refundable` sets is_charge_refundable."""
        with self.store.transaction():
            charge = self.store.get(charge_id, "charge")
            if charge is None:
                raise not_found("charge", charge_id, "charge")
            if charge["status"] != "succeeded" or charge["disputed"]:
                raise StripeError("Only a succeeded, undisputed charge can be disputed.",
                                  param="charge")
            dispute = shapes.dispute(charge, amount or charge["amount"], reason, self.now(),
                                     refundable=refundable)
            # The chargeback withdraws the amount and Stripe's dispute fee at once.
            currency = dispute["currency"]
            dispute["balance_transactions"] = [self._record(
                None, "adjustment", "dispute", -dispute["amount"], currency, dispute["id"],
                fee=DISPUTE_FEES.get(currency, 2000 if currency in shapes.ZERO_DECIMAL
                                     else DISPUTE_FEE_DEFAULT),
                fee_description="Dispute fee",
                description=f"Chargeback withdrawal for {charge_id}")]
            self.store.insert(dispute, parent=charge_id)
            charge["disputed"] = True
            self.store.save(charge)
            self.events.emit("charge.dispute.created", dispute, request=None)
            # A chargeback takes the disputed amount from the balance straight away.
            self.events.emit("charge.dispute.funds_withdrawn", dispute, request=None)
            return dispute

    def update_dispute(self, dispute_id: str, params: dict[str, Any],
                       request: Request) -> dict[str, Any]:
        """`POST /v1/disputes/{id}`: metadata, and evidence staged (submit=false) or submitted
        (Stripe's default when evidence is given), which puts the dispute under review."""
        evidence = params.get("evidence")
        submit = params.get("submit", evidence is not None)
        with self.store.transaction():
            dispute = self._load("dispute", dispute_id, "dispute")
            before = copy.deepcopy(dispute)
            if evidence is not None or submit:
                status = dispute["status"]
                if status not in OPEN_DISPUTE:
                    raise StripeError(f"This dispute is already closed (status `{status}`); "
                                      "its evidence can no longer be changed.", param="dispute")
                if status != "needs_response":
                    raise StripeError("The evidence for this dispute has already been "
                                      "submitted and can no longer be changed.",
                                      param="evidence" if evidence is not None else "submit")
            if "metadata" in params:
                _merge_metadata(dispute, params["metadata"])
            if evidence:
                self._stage_evidence(dispute, evidence)
            if submit:
                dispute["status"] = "under_review"
                dispute["evidence_details"]["submission_count"] += 1
            previous = _previous(before, dispute)
            self.store.save(dispute)
            if previous:
                self.events.emit("charge.dispute.updated", dispute, request=request,
                                 previous_attributes=previous)
            return dispute

    @staticmethod
    def _stage_evidence(dispute: dict[str, Any], evidence: dict[str, str]) -> None:
        for key, value in evidence.items():
            # The sandbox keeps no file uploads; any `file_` id stands for one.
            if key in EVIDENCE_FILES and not value.startswith("file_"):
                raise ParamError(f"No such file upload: '{value}'", f"evidence[{key}]",
                                 "resource_missing")
        dispute["evidence"].update(evidence)
        text = sum(len(v) for v in dispute["evidence"].values() if isinstance(v, str))
        if text > EVIDENCE_MAX_CHARACTERS:
            raise ParamError("The combined character count of all evidence fields is limited "
                             "to 150,000.", "evidence")
        dispute["evidence_details"]["has_evidence"] = True

    def decide_dispute(self, dispute_id: str, outcome: str) -> dict[str, Any]:
        """The bank's decision on an open dispute (a sandbox tool): won or lost."""
        if outcome not in ("won", "lost"):
            raise ParamError("outcome must be won or lost", "outcome")
        with self.store.transaction():
            dispute = self._load("dispute", dispute_id, "dispute")
            if dispute["status"] not in OPEN_DISPUTE:
                raise StripeError(f"Dispute {dispute_id} is already closed (status "
                                  f"`{dispute['status']}`).", param="dispute")
            return self._close_dispute(dispute, outcome, None)

    def accept_dispute(self, dispute_id: str, request: Request) -> dict[str, Any]:
        """`POST /v1/disputes/{id}/close`: the merchant accepts the dispute, which is lost."""
        with self.store.transaction():
            dispute = self._load("dispute", dispute_id, "dispute")
            status = dispute["status"]
            if status not in OPEN_DISPUTE:
                raise StripeError(f"This dispute is already closed (status `{status}`).",
                                  param="dispute")
            if status != "needs_response":
                raise StripeError("This dispute's evidence has been submitted; it is under "
                                  "review and can no longer be closed.", param="dispute")
            return self._close_dispute(dispute, "lost", request)

    def _close_dispute(self, dispute: dict[str, Any], status: str,
                       request: Request) -> dict[str, Any]:
        before = copy.deepcopy(dispute)
        dispute.update(status=status, is_charge_refundable=False)
        self.store.save(dispute)
        self.events.emit("charge.dispute.closed", dispute, request=request,
                         previous_attributes=_previous(before, dispute))
        if status == "won":
            # The disputed amount comes back; the dispute fee does not.
            dispute["balance_transactions"].append(self._record(
                None, "adjustment", "dispute_reversal", dispute["amount"], dispute["currency"],
                dispute["id"], description=f"Chargeback reversal for {dispute['charge']}"))
            self.store.save(dispute)
            # The amount withdrawn when the dispute opened comes back to the balance.
            self.events.emit("charge.dispute.funds_reinstated", dispute, request=None)
        return dispute

    # -- Connect: connected accounts, onboarding, transfers, reversals, payouts ------------

    def create_account(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        """`POST /v1/accounts`: an account configured by its controller properties (or the
        legacy `type`), nothing submitted yet. Stripe sends no event for the creation."""
        email = params.get("email")
        if email is not None and not EMAIL.match(email):
            raise ParamError(f"Invalid email address: {email}", "email", "email_invalid")
        if "type" in params and "controller" in params:
            raise ParamError("You cannot specify both `type` and `controller`; `type` is "
                             "deprecated, configure the account with `controller`.", "type")
        controller: dict[str, Any]
        if "type" in params:
            controller = copy.deepcopy(LEGACY_TYPES[params["type"]])
        else:
            wanted = params.get("controller", {})
            controller = {
                "fees": {"payer": wanted.get("fees", {}).get("payer", "account")},
                "losses": {"payments": wanted.get("losses", {}).get("payments", "stripe")},
                "requirement_collection": wanted.get("requirement_collection", "stripe"),
                "stripe_dashboard": {"type": wanted.get("stripe_dashboard", {}).get(
                    "type", "full")},
            }
        if controller["requirement_collection"] == "application" and \
                controller["stripe_dashboard"]["type"] != "none":
            raise ParamError("`controller[requirement_collection]` can be `application` only "
                             "when `controller[stripe_dashboard][type]` is `none`.",
                             "controller[requirement_collection]")
        if controller["stripe_dashboard"]["type"] != "full" and \
                controller["fees"]["payer"] == "account" and \
                controller["losses"]["payments"] == "application":
            raise ParamError("When the platform is liable for losses "
                             "(`controller[losses][payments]=application`), it must also pay "
                             "Stripe's fees (`controller[fees][payer]=application`).",
                             "controller[fees][payer]")
        currency = params.get("default_currency")
        if currency is not None and currency.lower() not in shapes.MINIMUM_CHARGE:
            raise ParamError(f"Invalid currency: {currency}. The sandbox supports: "
                             f"{', '.join(sorted(shapes.MINIMUM_CHARGE))}.", "default_currency",
                             "parameter_invalid")
        with self.store.transaction():
            account = shapes.account(
                {**params, "default_currency": currency.lower() if currency else None},
                controller, self.now())
            self.store.insert(account, {})
            return account

    def account(self, account_id: str, *, status: int = 404,
                param: str = "account") -> tuple[dict[str, Any], dict[str, Any]]:
        found = self.store.get_with_extra(account_id, "account")
        if found is None:
            raise StripeError(f"No such account: '{account_id}'", status=status,
                              code="resource_missing", param=param)
        return found

    def update_account(self, account_id: str, params: dict[str, Any],
                       request: Request) -> dict[str, Any]:
        """`POST /v1/accounts/{id}`: email, business profile, metadata, capabilities asked
        for (inactive until onboarding is done); account.updated when something changed."""
        email = params.get("email")
        if email is not None and not EMAIL.match(email):
            raise ParamError(f"Invalid email address: {email}", "email", "email_invalid")
        with self.store.transaction():
            account, extra = self.account(account_id)
            before = copy.deepcopy(account)
            if "email" in params:
                account["email"] = email
            account["business_profile"].update(params.get("business_profile", {}))
            if "metadata" in params:
                _merge_metadata(account, params["metadata"])
            for name, wanted in params.get("capabilities", {}).items():
                if wanted.get("requested") and name not in account["capabilities"]:
                    account["capabilities"][name] = (
                        "active" if account["details_submitted"] else "inactive")
                elif wanted.get("requested") is False:
                    account["capabilities"].pop(name, None)
            self._save_account(account, extra, before, request)
            return account

    def _save_account(self, account: dict[str, Any], extra: dict[str, Any],
                      before: dict[str, Any], request: Request) -> None:
        self.store.save(account, extra)
        previous = _previous(before, account)
        if previous:
            self.events.emit("account.updated", account, request=request,
                             previous_attributes=previous, account=account["id"])

    def create_account_link(self, params: dict[str, Any], public_url: str) -> dict[str, Any]:
        """`POST /v1/account_links`: a single-use link to the hosted onboarding page, valid
        for five minutes. Visiting it expired or a second time goes to `refresh_url`."""
        if params["type"] != "account_onboarding":
            raise ParamError("The sandbox supports only `type=account_onboarding` Account "
                             "Links (`account_update` is for accounts whose requirements the "
                             "platform collects).", "type")
        for name in ("refresh_url", "return_url"):
            if name not in params:
                raise ParamError(f"Missing required param: {name}.", name, "parameter_missing")
            if not _valid_url(params[name]):
                raise ParamError("Not a valid URL", name, "url_invalid")
        with self.store.transaction():
            account, _ = self.account(params["account"], status=400)
            now = self.now()
            token = shapes.new_id("", 32)
            link = shapes.account_link(f"{public_url}/connect/onboarding/{token}", now,
                                       now + ACCOUNT_LINK_SECONDS)
            self.store.insert({"id": token, "object": "sandbox.account_link", "created": now,
                               "account": account["id"], "expires_at": link["expires_at"],
                               "refresh_url": params["refresh_url"],
                               "return_url": params["return_url"], "visited": False,
                               "used": False})
            return link

    def open_onboarding(self, token: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Visit an onboarding link: (link record, account), or (link record, None) when the
        link expired or was visited before (the page sends the browser to refresh_url).
        Raises when there is no such link."""
        with self.store.transaction():
            link = self._load("sandbox.account_link", token, "link")
            if link["visited"] or link["expires_at"] <= self.now():
                return link, None
            link["visited"] = True
            self.store.save(link)
            account, _ = self.account(link["account"])
            return link, account

    def finish_onboarding(self, token: str, complete: bool) -> str:
        """The onboarding form's answer: `complete` submits the details (the account is
        enabled); otherwise the user leaves unfinished. Returns where to send the browser:
        return_url, or refresh_url when the link can no longer be used."""
        with self.store.transaction():
            link = self._load("sandbox.account_link", token, "link")
            if link["used"] or not link["visited"] or link["expires_at"] <= self.now():
                return link["refresh_url"]
            link["used"] = True
            self.store.save(link)
            if complete:
                self.onboard(link["account"], ip=None)
            return link["return_url"]

    def onboard(self, account_id: str, ip: str | None = "127.0.0.1") -> dict[str, Any]:
        """Everything onboarding collects is in: details submitted, charges and payouts
        enabled, no requirements, requested capabilities active (account.updated with
        previous_attributes; nothing when the account was onboarded already)."""
        with self.store.transaction():
            account, extra = self.account(account_id)
            before = copy.deepcopy(account)
            now = self.now()
            account.update(details_submitted=True, charges_enabled=True, payouts_enabled=True,
                           capabilities=dict.fromkeys(account["capabilities"], "active"))
            account["requirements"].update(currently_due=[], eventually_due=[], past_due=[],
                                           disabled_reason=None, current_deadline=None)
            if account["tos_acceptance"]["date"] is None:
                account["tos_acceptance"].update(date=now, ip=ip or "127.0.0.1")
            extra.setdefault("bank_account", shapes.new_id("ba_"))
            self._save_account(account, extra, before, None)
            return account

    def require(self, account_id: str, fields: list[str]) -> dict[str, Any]:
        """Stripe asks an onboarded account for more (new verification, a changed rule):
        the fields become `currently_due` and `eventually_due` with a deadline 14 days on;
        charges and payouts stay enabled until then (account.updated with
        previous_attributes)."""
        with self.store.transaction():
            account, extra = self.account(account_id)
            before = copy.deepcopy(account)
            requirements = account["requirements"]
            requirements.update(
                currently_due=sorted(set(requirements["currently_due"]) | set(fields)),
                eventually_due=sorted(set(requirements["eventually_due"]) | set(fields)),
                current_deadline=self.now() + REQUIREMENT_DEADLINE_SECONDS)
            self._save_account(account, extra, before, None)
            return account

    def create_login_link(self, account_id: str, public_url: str) -> dict[str, Any]:
        """`POST /v1/accounts/{id}/login_links`: a link to the (sandbox) Express Dashboard,
        for accounts with that dashboard that finished onboarding."""
        with self.store.transaction():
            account, _ = self.account(account_id)
            if account["controller"]["stripe_dashboard"]["type"] != "express":
                raise StripeError("Login links can only be created for accounts that use the "
                                  "Express Dashboard (`controller[stripe_dashboard][type]` "
                                  "`express`).", param="account")
            if not account["details_submitted"]:
                raise StripeError("Cannot create a login link for an account that has not "
                                  "completed onboarding.", param="account")
            now = self.now()
            token = shapes.new_id("", 32)
            self.store.insert({"id": token, "object": "sandbox.login_link", "created": now,
                               "account": account_id})
            return shapes.login_link(f"{public_url}/connect/express/{token}", now)

    def login_link_account(self, token: str) -> dict[str, Any]:
        link = self._load("sandbox.login_link", token, "link")
        return self.account(link["account"])[0]

    # -- balance transactions and balances ----------------------------------------------

    def _record(self, account_id: str | None, type_: str, category: str, amount: int,
                currency: str, source: str | None, *, bt_id: str | None = None, fee: int = 0,
                fee_description: str | None = None, available_on: int | None = None,
                description: str | None = None) -> dict[str, Any]:
        """One balance transaction on the platform's balance (account_id None) or a
        connected account's; available at once unless `available_on` says later."""
        now = self.now()
        bt = shapes.balance_transaction(
            bt_id=bt_id, type_=type_, reporting_category=category, amount=amount,
            currency=currency, source=source, created=now,
            available_on=now if available_on is None else max(available_on, now), fee=fee,
            fee_description=fee_description, description=description)
        self.store.insert(self.with_status(bt), {"payout": None}, parent=account_id)
        return bt

    def with_status(self, bt: dict[str, Any]) -> dict[str, Any]:
        """A balance transaction's status on the sandbox's clock: pending until available_on."""
        bt["status"] = "available" if bt["available_on"] <= self.now() else "pending"
        return bt

    def charge_fee(self, amount: int, currency: str) -> int:
        """Stripe's fee on a charge: SANDBOX_FEE_PERCENT of it (rounded half up) plus
        SANDBOX_FEE_FIXED minor units (none for a zero-decimal currency), never more than
        the charge."""
        percent = (Decimal(amount) * self.settings.fee_percent / 100).quantize(
            Decimal(1), rounding=ROUND_HALF_UP)
        fixed = 0 if currency in shapes.ZERO_DECIMAL else self.settings.fee_fixed
        return min(int(percent) + fixed, amount)

    def _charge_funds(self, charge: dict[str, Any], *, at_once: bool) -> dict[str, Any]:
        """A succeeded charge's balance transaction: the amount less Stripe's fee, pending
        for SANDBOX_AVAILABLE_AFTER_DAYS (the 0077 test card: available at once)."""
        delay = 0 if at_once else int(self.settings.available_after_days * 86400)
        return self._record(
            None, "charge", "charge", charge["amount"], charge["currency"], charge["id"],
            bt_id=charge["balance_transaction"],
            fee=self.charge_fee(charge["amount"], charge["currency"]),
            fee_description="Stripe processing fees", available_on=self.now() + delay,
            description=charge["description"])

    def balance_transaction(self, bt_id: str, account_id: str | None) -> dict[str, Any]:
        """`GET /v1/balance_transactions/{id}` on the platform's or an account's balance."""
        rows = self.store.query("SELECT data, parent FROM objects WHERE id = ? AND type = "
                                "'balance_transaction'", (bt_id,))
        if not rows or rows[0]["parent"] != account_id:
            raise StripeError(f"No such balance transaction: '{bt_id}'", status=404,
                              code="resource_missing", param="id")
        return self.with_status(json.loads(rows[0]["data"]))

    def _balances(self, account_id: str | None) -> tuple[dict[str, int], dict[str, int]]:
        """(available, pending) per currency: the balance transactions' net, split by
        available_on against the sandbox's clock."""
        now = self.now()
        rows = self.store.query(
            "SELECT json_extract(data, '$.currency') AS c, "
            "SUM(CASE WHEN json_extract(data, '$.available_on') <= ? "
            "THEN json_extract(data, '$.net') ELSE 0 END) AS a, "
            "SUM(CASE WHEN json_extract(data, '$.available_on') > ? "
            "THEN json_extract(data, '$.net') ELSE 0 END) AS p "
            "FROM objects WHERE type = 'balance_transaction' AND parent IS ? GROUP BY c",
            (now, now, account_id))
        return ({r["c"]: r["a"] or 0 for r in rows}, {r["c"]: r["p"] or 0 for r in rows})

    def balance(self, account_id: str | None = None) -> dict[str, Any]:
        """`GET /v1/balance`: the platform's, or a connected account's (Stripe-Account
        header): the sums of their balance transactions, available or still pending."""
        if account_id is not None:
            self.account(account_id, status=403)
        return shapes.balance(*self._balances(account_id))

    def _currency(self, currency: str | None, default: str) -> str:
        currency = (currency or default).lower()
        if currency not in shapes.MINIMUM_CHARGE:
            raise ParamError(f"Invalid currency: {currency}", "currency", "parameter_invalid")
        return currency

    def set_account_balance(self, account_id: str, currency: str | None,
                            available: int | None, pending: int | None) -> dict[str, Any]:
        """Set a connected account's balance in one currency (a sandbox tool), e.g. to 0 to
        play a coach who was paid out already: an adjustment for each difference (the
        pending one available after the settling delay), so the sums still hold."""
        with self.store.transaction():
            account, _ = self.account(account_id)
            currency = self._currency(currency, account["default_currency"])
            if available is None and pending is None:
                raise ParamError("Give `available` and/or `pending` (minor units).", "available")
            have, coming = (part.get(currency, 0) for part in self._balances(account_id))
            if available is not None and available != have:
                self._record(account_id, "adjustment", "other_adjustment", available - have,
                             currency, None, description="Balance set in the sandbox")
            if pending is not None and pending != coming:
                later = self.now() + max(int(self.settings.available_after_days * 86400), 1)
                self._record(account_id, "adjustment", "other_adjustment", pending - coming,
                             currency, None, available_on=later,
                             description="Pending balance set in the sandbox")
            return self.balance(account_id)

    def top_up(self, currency: str | None, amount: int | None) -> dict[str, Any]:
        """Add funds to the platform's available balance (a sandbox tool; on Stripe, a
        charge with the 0077 test card or a top-up): a `topup` balance transaction."""
        if amount is None or amount <= 0:
            raise ParamError("Give `amount` (minor units, positive).", "amount")
        with self.store.transaction():
            currency = self._currency(currency, "usd")
            self._record(None, "topup", "topup", amount, currency, shapes.new_id("tu_"),
                         description="Sandbox top-up")
            return self.balance(None)

    # -- transfers and reversals -------------------------------------------------------

    def create_transfer(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        """`POST /v1/transfers`: move money from the platform to a connected account whose
        `transfers` capability is active; from a charge (source_transaction: a succeeded
        charge in the same currency, at most what it has left after refunds and earlier
        transfers, allowed while its money is pending: the account's share is pending until
        the charge's is available) or else from the platform's available balance."""
        amount, currency = params["amount"], params["currency"].lower()
        if amount <= 0:
            raise ParamError("Invalid positive integer", "amount", "parameter_invalid_integer")
        if currency not in shapes.MINIMUM_CHARGE:
            raise ParamError(f"Invalid currency: {params['currency']}. The sandbox supports: "
                             f"{', '.join(sorted(shapes.MINIMUM_CHARGE))}.", "currency",
                             "parameter_invalid")
        with self.store.transaction():
            found = self.store.get_with_extra(params["destination"], "account")
            if found is None:
                raise StripeError(f"No such destination: '{params['destination']}'",
                                  code="resource_missing", param="destination")
            account, _ = found
            if account["capabilities"].get("transfers") != "active":
                raise StripeError(TRANSFER_CAPABILITY, param="destination",
                                  code="insufficient_capabilities_for_transfer")
            source = params.get("source_transaction")
            available_on = None
            if source is not None:
                charge = self._check_source(source, amount, currency)
                funds = self.store.get(charge["balance_transaction"], "balance_transaction")
                available_on = funds["available_on"] if funds else None
            else:
                have = self._balances(None)[0].get(currency, 0)
                if amount > have:
                    raise StripeError(BALANCE_INSUFFICIENT, code="balance_insufficient")
            transfer = shapes.transfer(params, currency, self.now())
            self.store.insert(transfer, parent=account["id"])
            self._record(None, "transfer", "transfer", -amount, currency, transfer["id"],
                         bt_id=transfer["balance_transaction"])
            self._record(account["id"], "payment", "transfer", amount, currency,
                         transfer["destination_payment"], available_on=available_on)
            self.events.emit("transfer.created", transfer, request=request)
            return transfer

    def _check_source(self, charge_id: str, amount: int, currency: str) -> dict[str, Any]:
        charge = self.store.get(charge_id, "charge")
        if charge is None:
            raise StripeError(f"No such charge: '{charge_id}'", code="resource_missing",
                              param="source_transaction")
        if charge["status"] != "succeeded":
            raise StripeError(f"The source_transaction {charge_id} has a status of "
                              f"`{charge['status']}`; only a succeeded charge can fund a "
                              "transfer.", param="source_transaction")
        if charge["currency"] != currency:
            raise StripeError(f"The currency of the source_transaction ({charge['currency']}) "
                              f"must be the same as the transfer currency ({currency}).",
                              param="currency")
        used = sum(t["amount"] - t["amount_reversed"] for t in (
            self.store.get(tid, "transfer") or {"amount": 0, "amount_reversed": 0}
            for tid in self.store.ids_where_data("transfer", "$.source_transaction",
                                                 charge_id)))
        left = charge["amount"] - charge["amount_refunded"] - used
        if amount > left:
            raise StripeError(
                f"Insufficient funds in the source transaction {charge_id} for a transfer of "
                f"{shapes.format_money(amount, currency)}: "
                f"{shapes.format_money(max(left, 0), currency)} is left (the charge minus "
                "refunds and earlier transfers).", code="balance_insufficient", param="amount")
        return charge

    def transfer(self, transfer_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = self.store.get_with_extra(transfer_id, "transfer")
        if found is None:
            raise not_found("transfer", transfer_id, "transfer")
        return found

    def update_transfer(self, transfer_id: str, params: dict[str, Any],
                        request: Request) -> dict[str, Any]:
        """`POST /v1/transfers/{id}`: description and metadata (transfer.updated)."""
        with self.store.transaction():
            transfer, _ = self.transfer(transfer_id)
            before = copy.deepcopy(transfer)
            if "description" in params:
                transfer["description"] = params["description"]
            if "metadata" in params:
                _merge_metadata(transfer, params["metadata"])
            previous = _previous(before, transfer)
            self.store.save(transfer)
            if previous:
                self.events.emit("transfer.updated", transfer, request=request,
                                 previous_attributes=previous)
            return transfer

    def reverse_transfer(self, transfer_id: str, params: dict[str, Any],
                         request: Request) -> dict[str, Any]:
        """`POST /v1/transfers/{id}/reversals`: take (part of) a transfer back from the
        connected account, which must still hold it in its available balance."""
        with self.store.transaction():
            transfer, _ = self.transfer(transfer_id)
            currency = transfer["currency"]
            remaining = transfer["amount"] - transfer["amount_reversed"]
            if remaining <= 0:
                raise StripeError(f"Transfer {transfer_id} has already been fully reversed.",
                                  param="transfer")
            amount = params.get("amount", remaining)
            if amount <= 0:
                raise ParamError("Invalid positive integer", "amount", "parameter_invalid_integer")
            if amount > remaining:
                raise StripeError(
                    f"Reversal amount ({shapes.format_money(amount, currency)}) is greater "
                    f"than the amount left on the transfer "
                    f"({shapes.format_money(remaining, currency)}).", param="amount")
            account, _ = self.account(transfer["destination"])
            have = self._balances(account["id"])[0].get(currency, 0)
            if amount > have:
                raise StripeError(
                    f"Insufficient funds in the destination account ({account['id']}) to "
                    f"reverse {shapes.format_money(amount, currency)}: its available balance "
                    f"is {shapes.format_money(have, currency)}.",
                    code="balance_insufficient", param="amount")
            reversal = shapes.transfer_reversal(transfer, amount, params, self.now())
            self.store.insert(reversal, parent=transfer_id)
            before = copy.deepcopy(transfer)
            transfer["amount_reversed"] += amount
            transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
            transfer["reversals"]["data"].insert(0, reversal)
            self.store.save(transfer)
            self._record(None, "transfer_refund", "transfer_reversal", amount, currency,
                         reversal["id"], bt_id=reversal["balance_transaction"])
            self._record(account["id"], "payment_refund", "transfer_reversal", -amount,
                         currency, reversal["destination_payment_refund"])
            previous = _previous(before, transfer)
            self.events.emit("transfer.reversed", transfer, request=request,
                             previous_attributes=previous)
            self.events.emit("transfer.updated", transfer, request=request,
                             previous_attributes=previous)
            return reversal

    # -- payouts (a sandbox tool: Stripe pays out on its own schedule) ------------------

    def payout(self, account_id: str, currency: str | None = None) -> dict[str, Any]:
        """Pay a connected account's available balance in one currency out to its bank
        account: payout.created (in transit), then payout.paid, both carrying `account`."""
        with self.store.transaction():
            account, extra = self.account(account_id)
            if not account["payouts_enabled"]:
                raise StripeError(f"Payouts are not enabled for account {account_id}: it has "
                                  "not completed onboarding.", param="account")
            currency = (currency or account["default_currency"]).lower()
            amount = self._balances(account_id)[0].get(currency, 0)
            if amount <= 0:
                raise StripeError(f"Account {account_id} has no available {currency} balance "
                                  "to pay out.", code="balance_insufficient", param="currency")
            payout = shapes.payout(amount, currency, extra.get("bank_account") or
                                   shapes.new_id("ba_"), self.now())
            self.store.insert(payout, parent=account_id)
            self._record(account_id, "payout", "payout", -amount, currency, payout["id"],
                         bt_id=payout["balance_transaction"], description="STRIPE PAYOUT")
            # What the payout took: the account's available transactions in its currency
            # (listed with GET /v1/balance_transactions?payout=po_…).
            self.store.execute(
                "UPDATE objects SET extra = json_set(extra, '$.payout', ?) WHERE "
                "type = 'balance_transaction' AND parent = ? AND "
                "json_extract(data, '$.currency') = ? AND "
                "json_extract(data, '$.available_on') <= ? AND "
                "json_extract(extra, '$.payout') IS NULL",
                (payout["id"], account_id, currency, self.now()))
            self.events.emit("payout.created", payout, request=None, account=account_id)
            before = copy.deepcopy(payout)
            payout.update(status="paid", reconciliation_status="completed",
                          trace_id={"status": "supported", "value": shapes.new_id("", 15)})
            self.store.save(payout)
            self.events.emit("payout.paid", payout, request=None, account=account_id,
                             previous_attributes=_previous(before, payout))
            return payout


def _previous(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's previous_attributes: the old value of each changed field; for a hash only its
    changed keys, and null for a key that did not exist before."""
    out: dict[str, Any] = {}
    for key in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        out[key] = _previous(old, new) if isinstance(old, dict) and isinstance(new, dict) \
            else old
    return out


def _merge_metadata(obj: dict[str, Any], metadata: dict[str, str | None] | None) -> None:
    """An update's metadata: keys set or (None) unset one by one; None unsets them all."""
    if metadata is None:
        obj["metadata"] = {}
        return
    merged = dict(obj["metadata"])
    for key, value in metadata.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    obj["metadata"] = merged
