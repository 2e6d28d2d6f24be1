"""The one seam around Stripe: nothing else in Coachpact imports `stripe`.

It owns the SDK client (key, API base, network retries, timeouts), derives
idempotency keys from our own ids, verifies webhook signatures, and turns
Stripe's errors into messages a person understands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe
from flask import current_app
from stripe.checkout import Session as CheckoutSession
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    CustomerCreateParams,
    EventListParams,
    InvoiceCreatePreviewParams,
    PaymentIntentCreateParams,
    PriceCreateParams,
    ProductCreateParams,
    RefundCreateParams,
    SubscriptionUpdateParams,
    TransferCreateParams,
    TransferReversalCreateParams,
)
from stripe.params.billing_portal import SessionCreateParams as PortalSessionCreateParams
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsPaymentIntentData

WEBHOOK_TOLERANCE_SECONDS = 300
# Checkout's `payment_intent_data`, typed, for callers that build it in parts.
CheckoutIntentData = SessionCreateParamsPaymentIntentData


T = TypeVar("T")

# Stripe's answer while a request with the same idempotency key is still in flight.
IN_FLIGHT = 409


class PaymentProviderError(Exception):
    """Stripe refused or could not be reached; `str()` is safe to show the user."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status

    @property
    def unreached(self) -> bool:
        """Stripe was not reached or could not answer yet (network, 5xx, rate limit, or
        409: the same idempotency key is still being answered for another request): the
        same request, with the same key, may be tried again. Anything else is a refusal:
        Stripe made nothing, and asking again the same way changes nothing."""
        return (
            self.status is None
            or self.status >= 500
            or self.status == IN_FLIGHT
            or self.code in ("rate_limit", "connection")
        )


class CardDeclined(PaymentProviderError):
    """An off-session charge the card refused; `code` is Stripe's (card_declined,
    authentication_required, ...) and `payment_intent_id` the intent it left behind."""

    def __init__(self, message: str, *, code: str | None, payment_intent_id: str | None):
        super().__init__(message, code=code, status=402)
        self.payment_intent_id = payment_intent_id


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or body cannot be trusted."""


def client() -> stripe.StripeClient:
    """The app's Stripe client, made once per app."""
    cached = current_app.extensions.get("stripe_client")
    if cached is None:
        config = current_app.config
        base = config.get("STRIPE_API_BASE")
        cached = stripe.StripeClient(
            config["STRIPE_SECRET_KEY"],
            base_addresses={"api": base} if base else None,
            max_network_retries=config.get("STRIPE_MAX_NETWORK_RETRIES", 2),
            http_client=stripe.RequestsClient(timeout=config.get("STRIPE_TIMEOUT_SECONDS", 20)),
        )
        current_app.extensions["stripe_client"] = cached
    return cached


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except stripe.CardError as exc:
        raise PaymentProviderError(
            exc.user_message or "Your card was declined.", code=exc.code, status=exc.http_status
        ) from exc
    except stripe.RateLimitError as exc:
        raise PaymentProviderError(
            "Stripe is busy right now. Wait a moment and try again.",
            code="rate_limit",
            status=exc.http_status,
        ) from exc
    except stripe.APIConnectionError as exc:
        raise PaymentProviderError(
            "We could not reach our payment provider. Nothing was charged; try again shortly.",
            code="connection",
        ) from exc
    except stripe.AuthenticationError as exc:
        current_app.logger.error("Stripe rejected our API key: %s", exc)
        raise PaymentProviderError(
            "Payments are misconfigured on our side. Nothing was charged; we have been told.",
            code="authentication",
            status=exc.http_status,
        ) from exc
    except stripe.StripeError as exc:
        current_app.logger.warning("Stripe error: %s", exc)
        raise PaymentProviderError(
            "The payment provider refused the request. Nothing was charged.",
            code=getattr(exc, "code", None),
            status=exc.http_status,
        ) from exc


def idempotency_key(*parts: object) -> str:
    """A key from our own ids: the same operation retried sends the same key."""
    return "coachpact-" + "-".join(str(part) for part in parts)


# Waits (seconds) for Stripe to finish answering another request with the same key.
IN_FLIGHT_WAITS = (0.1, 0.2, 0.4, 0.8)


def _same_answer(call: Callable[[], T]) -> T:
    """`call` (an idempotent create), waiting while Stripe still answers the same key
    for another request (a double click): then Stripe's answer to it is ours too."""
    for wait in IN_FLIGHT_WAITS:
        try:
            return call()
        except stripe.StripeError as exc:
            if exc.http_status != IN_FLIGHT:
                raise
            time.sleep(wait)
    return call()


def create_customer(params: CustomerCreateParams, key: str) -> stripe.Customer:
    with _translated_errors():
        return _same_answer(lambda: client().v1.customers.create(params, {"idempotency_key": key}))


def create_checkout_session(params: SessionCreateParams, key: str) -> CheckoutSession:
    with _translated_errors():
        return _same_answer(
            lambda: client().v1.checkout.sessions.create(params, {"idempotency_key": key})
        )


def retrieve_checkout_session(session_id: str) -> CheckoutSession | None:
    """The session with its payment intent and charge expanded, or None if Stripe has none."""
    try:
        with _translated_errors():
            return client().v1.checkout.sessions.retrieve(
                session_id, {"expand": ["payment_intent.latest_charge"]}
            )
    except PaymentProviderError as exc:
        if exc.status == 404:
            return None
        raise


def expire_checkout_session(session_id: str) -> CheckoutSession:
    """Expire an open Checkout session (`stripe.checkout.Session.expire`): it can no longer
    be paid, and Stripe sends `checkout.session.expired`. Refused (PaymentProviderError,
    a 4xx status) when the session is not open: paid, or expired already."""
    with _translated_errors():
        return client().v1.checkout.sessions.expire(session_id)


def retrieve_payment_intent(payment_intent_id: str) -> stripe.PaymentIntent:
    with _translated_errors():
        return client().v1.payment_intents.retrieve(
            payment_intent_id, {"expand": ["latest_charge"]}
        )


def funds_available_at(charge_id: str) -> datetime | None:
    """When a charge's money is available in the platform's balance: its balance
    transaction's `available_on` (a card charge's money is pending for a few days first).
    None when Stripe has no balance transaction for it (the charge has not succeeded)."""
    found = charge_balance_transaction(charge_id=charge_id)
    return datetime.fromtimestamp(found["available_on"], UTC) if found else None


def charge_off_session(params: PaymentIntentCreateParams, key: str) -> stripe.PaymentIntent:
    """Create and confirm a PaymentIntent on a saved card with no customer present.

    A refusal by the card raises CardDeclined with Stripe's code (for example
    `authentication_required`: the customer must pay on-session instead).
    """
    try:
        return client().v1.payment_intents.create(params, {"idempotency_key": key})
    except stripe.CardError as exc:
        error = exc.error
        intent = getattr(error, "payment_intent", None) if error is not None else None
        raise CardDeclined(
            exc.user_message or "The card was declined.",
            code=exc.code,
            payment_intent_id=getattr(intent, "id", None),
        ) from exc
    except stripe.StripeError:
        with _translated_errors():
            raise


def retrieve_setup_intent(setup_intent_id: str) -> stripe.SetupIntent:
    with _translated_errors():
        return client().v1.setup_intents.retrieve(setup_intent_id)


def list_card_methods(customer_id: str) -> list[stripe.PaymentMethod]:
    """The cards saved on a customer (brand, last four, expiry), newest first."""
    with _translated_errors():
        return list(
            client().v1.customers.payment_methods.list(customer_id, {"type": "card", "limit": 20})
        )


def detach_payment_method(payment_method_id: str) -> stripe.PaymentMethod:
    with _translated_errors():
        return client().v1.payment_methods.detach(payment_method_id)


def create_refund(params: RefundCreateParams, key: str) -> stripe.Refund:
    """A refund; a refusal carries Stripe's own words (it is shown to admins, not students)."""
    with _in_stripes_words("refund"):
        return client().v1.refunds.create(params, {"idempotency_key": key})


def list_refunds(charge_id: str) -> list[dict[str, Any]]:
    """Every refund of a charge, newest first, across pages, as plain dicts (as events carry
    them). A charge lists its refunds only when expanded, and never in an event: this asks."""
    with _translated_errors():
        page = client().v1.refunds.list({"charge": charge_id, "limit": 100})
        return [refund.to_dict() for refund in page.auto_paging_iter()]


# --- Billing: products, recurring prices, subscriptions -----------------------------


def create_product(params: ProductCreateParams, key: str) -> stripe.Product:
    with _translated_errors():
        return _same_answer(lambda: client().v1.products.create(params, {"idempotency_key": key}))


def create_price(params: PriceCreateParams, key: str) -> stripe.Price:
    """A Price; its amount is fixed for good, so a new amount is a new Price."""
    with _translated_errors():
        return _same_answer(lambda: client().v1.prices.create(params, {"idempotency_key": key}))


def invoice_charge(invoice_id: str) -> tuple[str, str | None] | None:
    """The PaymentIntent that paid an invoice and its charge, or None when no payment of
    the invoice is paid. Since API version 2025-03-31 an invoice names its payments only
    through `invoice_payments`, not on itself."""
    with _translated_errors():
        page = client().v1.invoice_payments.list(
            {"invoice": invoice_id, "status": "paid", "limit": 10})
        for payment in page.data:
            intent_id = payment.payment.payment_intent
            if isinstance(intent_id, str):
                intent = retrieve_payment_intent(intent_id)
                charge = intent.latest_charge
                return intent_id, (charge if isinstance(charge, str) or charge is None
                                   else charge.id)
    return None


def cancel_subscription(subscription_id: str, key: str) -> stripe.Subscription:
    """End a subscription now, without Stripe's own proration (our refund is computed from
    the period's standing). One already ended is answered as it stands."""
    with _translated_errors():
        try:
            return client().v1.subscriptions.cancel(
                subscription_id, {"prorate": False, "invoice_now": False},
                {"idempotency_key": key})
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
            return retrieve_subscription(subscription_id)


def retrieve_subscription(subscription_id: str) -> stripe.Subscription:
    with _translated_errors():
        return client().v1.subscriptions.retrieve(subscription_id)


def modify_subscription(subscription_id: str, params: SubscriptionUpdateParams,
                        key: str) -> stripe.Subscription:
    """Change a subscription (cancel at period end, pause collection, a new price); Stripe
    answers the subscription as changed. `pause_collection=""` unsets a pause."""
    with _translated_errors():
        return _same_answer(lambda: client().v1.subscriptions.update(
            subscription_id, params, {"idempotency_key": key}))


def preview_invoice(params: InvoiceCreatePreviewParams) -> stripe.Invoice:
    """The invoice a subscription change would bring, computed by Stripe; nothing is kept."""
    with _translated_errors():
        return client().v1.invoices.create_preview(params)


def create_portal_session(params: PortalSessionCreateParams) -> stripe.billing_portal.Session:
    """A customer portal session (no key: each visit is a new session)."""
    with _translated_errors():
        return client().v1.billing_portal.sessions.create(params)


# --- Connect: coaches' accounts, transfers to them, reversals ----------------------


def create_connected_account(params: AccountCreateParams, key: str) -> stripe.Account:
    with _translated_errors():
        return client().v1.accounts.create(params, {"idempotency_key": key})


def retrieve_account(account_id: str) -> stripe.Account:
    with _translated_errors():
        return client().v1.accounts.retrieve(account_id)


def create_account_link(params: AccountLinkCreateParams) -> stripe.AccountLink:
    """A single-use onboarding link (no key: a new one is wanted every time)."""
    with _translated_errors():
        return client().v1.account_links.create(params)


def create_login_link(account_id: str) -> stripe.LoginLink:
    """A single-use link into the account's Express dashboard."""
    with _translated_errors():
        return client().v1.accounts.login_links.create(account_id)


@contextmanager
def _in_stripes_words(what: str, *, code: str | None = None) -> Iterator[None]:
    """Money moved at an admin's or a job's request (a refund, a transfer, a reversal):
    Stripe's refusal in its own words, since admins read them, with its code (`code` when
    Stripe gives none). A key Stripe saw with other parameters is `idempotency_key_in_use`
    (status 400): nothing was sent, the caller decides. Anything else as everywhere."""
    try:
        yield
    except stripe.IdempotencyError as exc:
        raise PaymentProviderError(
            f"Stripe saw this {what}'s key with other parameters.",
            code="idempotency_key_in_use",
            status=exc.http_status or 400,
        ) from exc
    except (stripe.InvalidRequestError, stripe.PermissionError) as exc:
        raise PaymentProviderError(
            exc.user_message or f"Stripe refused the {what}.",
            code=getattr(exc, "code", None) or code,
            status=exc.http_status,
        ) from exc
    except stripe.StripeError:
        with _translated_errors():
            raise


def create_transfer(params: TransferCreateParams, key: str) -> stripe.Transfer:
    """A transfer to a connected account; a refusal carries Stripe's own words."""
    with _in_stripes_words("transfer", code="refused"):
        return client().v1.transfers.create(params, {"idempotency_key": key})


def create_transfer_reversal(
    transfer_id: str, params: TransferReversalCreateParams, key: str
) -> stripe.TransferReversal:
    """Take back part of a transfer; refused (PaymentProviderError with a 4xx status) when
    the connected account's balance cannot cover it."""
    with _in_stripes_words("reversal", code="refused"):
        return client().v1.transfers.reversals.create(
            transfer_id, params, {"idempotency_key": key}
        )


def list_events(
    params: EventListParams, *, account: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every event matching `params`, across pages, as plain dicts (as a webhook gets them):
    the platform's, or with `account` that connected account's (the Stripe-Account header)."""
    options: stripe.RequestOptions = {"stripe_account": account} if account else {}
    with _translated_errors():
        for event in client().v1.events.list(params, options).auto_paging_iter():
            yield event.to_dict()


def verify_webhook(
    payload: bytes, signature_header: str | None, secrets: Sequence[str]
) -> dict[str, Any]:
    """Check the `Stripe-Signature` header on the raw body against the endpoint's `secrets`
    (valid for any one of them: while a secret is rolled Stripe signs with both), then
    parse it.

    The SDK's signature check runs on the bytes as received. We parse the JSON
    ourselves instead of building the SDK's object tree (`construct_event`):
    the handlers read plain dicts, and the tree is most of the cost.
    """
    if not signature_header:
        raise InvalidWebhook("missing Stripe-Signature header")
    _check_signature(payload, signature_header, secrets)
    try:
        event = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidWebhook("body is not UTF-8 JSON") from None
    data = event.get("data") if isinstance(event, dict) else None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
    ):
        raise InvalidWebhook("body is not a Stripe event")
    return event


def _check_signature(payload: bytes, signature_header: str, secrets: Sequence[str]) -> None:
    """Pass if the header holds a signature by one of `secrets`, within the tolerance.

    Each secret is tried on the signature alone; the one that matches is then held to the
    tolerance, so a replayed old delivery is refused as stale whichever secret signed it."""
    if not secrets:
        raise InvalidWebhook("no signing secret is configured for this endpoint")
    refusal = ""
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, signature_header, secret)
        except stripe.SignatureVerificationError as exc:
            refusal = str(exc)
            continue
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidWebhook(str(exc)) from None
        return
    raise InvalidWebhook(refusal)


# --- Stripe's books: balance transactions ------------------------------------------


def list_balance_transactions(created_from: int, created_to: int) -> Iterator[dict[str, Any]]:
    """Every balance transaction of the platform created in [from, to) (unix seconds), with
    its `source` expanded (a charge's payment intent, a reversal's transfer), as plain dicts."""
    with _translated_errors():
        listed = client().v1.balance_transactions.list(
            {"created": {"gte": created_from, "lt": created_to}, "limit": 100,
             "expand": ["data.source"]})
        for item in listed.auto_paging_iter():
            yield item.to_dict()


def balance_transactions_of(source_id: str) -> list[dict[str, Any]]:
    """The platform's balance transactions whose source is `source_id` (any day)."""
    with _translated_errors():
        listed = client().v1.balance_transactions.list({"source": source_id, "limit": 100})
        return [item.to_dict() for item in listed.auto_paging_iter()]


def charge_balance_transaction(*, payment_intent_id: str | None = None,
                               charge_id: str | None = None) -> dict[str, Any] | None:
    """The balance transaction of a charge, named or its payment intent's latest (None while
    it has none), with the charge's id under "charge"."""
    with _translated_errors():
        if charge_id is not None:
            charge: Any = client().v1.charges.retrieve(
                charge_id, {"expand": ["balance_transaction"]})
        else:
            assert payment_intent_id is not None
            charge = client().v1.payment_intents.retrieve(
                payment_intent_id, {"expand": ["latest_charge.balance_transaction"]}
            ).latest_charge
    if charge is None or isinstance(charge, str):
        return None
    found = charge.balance_transaction
    if found is None or isinstance(found, str):
        return None
    return {**found.to_dict(), "charge": charge.id}
