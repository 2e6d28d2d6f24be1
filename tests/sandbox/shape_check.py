"""Compare a sandbox object with Stripe's fixture for its resource and the SDK's annotations.

Top-level fields must be exactly the fixture's (plus, where listed in CONDITIONAL, the
optional ones Stripe adds in some states; less, where listed in INCLUDABLE, the ones Stripe
sends only when expanded). Nested objects must carry every
field the fixture shows; extra nested fields are allowed only where the SDK
annotates them (stripe-mock's examples omit some optional nested fields).
Every value must have the type the SDK annotates: ints are ints, a null only
where the annotation is Optional, literals among their choices, and so on.
"""

from __future__ import annotations

import json
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any, ForwardRef, Literal, Union

import stripe
from stripe._list_object import ListObject
from stripe._stripe_object import StripeObject, UntypedStripeObject

# Stripe's fixture objects for the resources below, vendored (source noted inside), so
# that the shape checks need nothing outside the repository.
FIXTURES = Path(__file__).resolve().parent / "stripe_fixtures.json"

CLASSES: dict[str, type] = {
    "checkout.session": stripe.checkout.Session,
    "customer": stripe.Customer,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "event": stripe.Event,
    "dispute": stripe.Dispute,
    "item": stripe.LineItem,
    "payment_method": stripe.PaymentMethod,
    "setup_intent": stripe.SetupIntent,
    "account": stripe.Account,
    "account_link": stripe.AccountLink,
    "login_link": stripe.LoginLink,
    "transfer": stripe.Transfer,
    "transfer_reversal": stripe.TransferReversal,
    "balance": stripe.Balance,
    "payout": stripe.Payout,
    "balance_transaction": stripe.BalanceTransaction,
    "product": stripe.Product,
    "price": stripe.Price,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "invoice": stripe.Invoice,
    "line_item": stripe.InvoiceLineItem,
    "invoiceitem": stripe.InvoiceItem,
    "invoice_payment": stripe.InvoicePayment,
    "billing_portal.session": stripe.billing_portal.Session,
    "test_helpers.test_clock": stripe.test_helpers.TestClock,
}


# Top-level fields Stripe sends only in some states: optional in its OpenAPI spec, so
# missing from the fixture's example, but annotated by the SDK (their values are checked
# against those annotations). A refund that failed or was canceled carries both; see the
# canceled refund in Stripe's reference for POST /v1/refunds/{id}/cancel.
CONDITIONAL: dict[str, frozenset[str]] = {
    "refund": frozenset({"failure_balance_transaction", "failure_reason"}),
    # An event that happened on a connected account names it (account.updated, payout.*).
    "event": frozenset({"account"}),
    # An invoice's payments, listed only when the request expands them (API version
    # 2025-03-31 on); newer than the fixture's example.
    "invoice": frozenset({"payments"}),
}
# Top-level fields of the fixture that Stripe sends only when the request expands them
# (`expand[]=refunds` on a charge, since API version 2022-11-15): absent otherwise, and
# checked like any other field when present.
INCLUDABLE: dict[str, frozenset[str]] = {
    "charge": frozenset({"refunds"}),
}
# Nested hashes whose keys depend on the object (the fixture shows one example set): an
# account lists only the capabilities requested for it. Their values are still typed.
SPARSE: dict[str, frozenset[str]] = {
    "account": frozenset({"capabilities"}),
}


def fixtures() -> dict[str, Any]:
    return json.loads(FIXTURES.read_text())["resources"]


def _annotations(cls: type) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(getattr(klass, "__annotations__", {}))
    return merged


def _resolve(ref: Any) -> Any:
    name = ref.__forward_arg__ if isinstance(ref, ForwardRef) else ref
    for module in (stripe, stripe.checkout, stripe.billing_portal, stripe.test_helpers):
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(f"cannot resolve SDK type {name}")


def check_type(value: Any, ann: Any, path: str, errors: list[str],
               fixture: Any = None) -> None:
    if ann is Any:
        return
    if isinstance(ann, (ForwardRef, str)):
        ann = _resolve(ann)
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is Union:
        if value is None:
            if type(None) not in args:
                errors.append(f"{path}: null, but the SDK says {ann}")
            return
        for option in (a for a in args if a is not type(None)):
            attempt: list[str] = []
            check_type(value, option, path, attempt, fixture)
            if not attempt:
                return
        errors.append(f"{path}: {value!r:.80} matches none of {ann}")
        return
    if origin is Literal:
        if value not in args:
            errors.append(f"{path}: {value!r} not among {args}")
        return
    if value is None:
        errors.append(f"{path}: null, but the SDK says {ann} (not Optional)")
        return
    if origin in (list, typing.List):  # noqa: UP006 - the SDK annotates with typing.List
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {value!r:.80}")
            return
        for i, item in enumerate(value):
            check_type(item, args[0] if args else Any, f"{path}[{i}]", errors)
        return
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a hash, got {value!r:.80}")
        return
    cls = origin or ann
    if cls is int:
        if type(value) is not int:
            errors.append(f"{path}: expected int, got {value!r}")
        return
    if cls is float:
        if type(value) not in (int, float):
            errors.append(f"{path}: expected a number, got {value!r}")
        return
    if cls in (str, bool):
        if type(value) is not cls:
            errors.append(f"{path}: expected {cls.__name__}, got {value!r:.80}")
        return
    if cls is Decimal:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a decimal string, got {value!r}")
        return
    if isinstance(cls, type) and issubclass(cls, ListObject):
        if not (isinstance(value, dict) and value.get("object") == "list"
                and isinstance(value.get("data"), list) and type(value.get("has_more")) is bool
                and isinstance(value.get("url"), str)):
            errors.append(f"{path}: expected a list envelope, got {value!r:.80}")
            return
        for i, item in enumerate(value["data"]):
            check_type(item, args[0] if args else Any, f"{path}.data[{i}]", errors)
        return
    if isinstance(cls, type) and issubclass(cls, UntypedStripeObject):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a hash, got {value!r:.80}")
            return
        for key, item in value.items():
            check_type(item, args[0] if args else Any, f"{path}[{key}]", errors)
        return
    if isinstance(cls, type) and issubclass(cls, StripeObject):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a {cls.__name__} hash, got {value!r:.80}")
            return
        check_fields(value, cls, path, errors, fixture if isinstance(fixture, dict) else None)
        return
    errors.append(f"{path}: no rule for SDK type {ann}")


def check_fields(value: dict[str, Any], cls: type, path: str, errors: list[str],
                 fixture: dict[str, Any] | None, top: bool = False,
                 conditional: frozenset[str] = frozenset()) -> None:
    annotations = {k: v for k, v in _annotations(cls).items()
                   if typing.get_origin(v) is not typing.ClassVar}
    if fixture is not None and not (fixture.get("object") and
                                    fixture.get("object") != value.get("object")):
        missing = sorted(set(fixture) - set(value))
        if missing:
            errors.append(f"{path or '<top>'}: missing fixture fields {missing}")
        if top:
            extra = sorted(set(value) - set(fixture) - conditional)
            if extra:
                errors.append(f"{path or '<top>'}: fields not in the fixture {extra}")
    for key, item in value.items():
        name = f"{path}.{key}" if path else key
        sub_fixture = fixture.get(key) if fixture else None
        if key not in annotations:
            if fixture is None or key not in fixture:
                errors.append(f"{name}: not a field the SDK knows for {cls.__name__}")
            continue
        check_type(item, annotations[key], name, errors, sub_fixture)


def shape_errors(obj: dict[str, Any], resource: str | None = None) -> list[str]:
    resource = resource or obj["object"]
    errors: list[str] = []
    fixture = fixtures()[resource]
    if resource == "event":
        # The fixture's event carries some other resource; compare the envelope here and
        # the carried object against its own resource's fixture.
        envelope = {**obj, "data": {}}
        check_fields(envelope, stripe.Event, "", errors, {**fixture, "data": {}}, top=True,
                     conditional=CONDITIONAL["event"])
        data = obj["data"]
        if set(data) - {"object", "previous_attributes"} or "object" not in data:
            errors.append(f"data: unexpected keys {sorted(data)}")
        if "previous_attributes" in data and not isinstance(data["previous_attributes"], dict):
            errors.append("data.previous_attributes: not a hash")
        errors.extend(f"data.object.{e}" for e in shape_errors(data["object"]))
        return errors
    sparse = SPARSE.get(resource, frozenset())
    absent = INCLUDABLE.get(resource, frozenset()) - set(obj)
    fixture = {key: ({k: v for k, v in value.items() if k in obj.get(key, {})}
                     if key in sparse and isinstance(value, dict) else value)
               for key, value in fixture.items() if key not in absent}
    check_fields(obj, CLASSES[resource], "", errors, fixture, top=True,
                 conditional=CONDITIONAL.get(resource, frozenset()))
    return errors


def assert_shape(obj: dict[str, Any], resource: str | None = None) -> None:
    errors = shape_errors(obj, resource)
    assert not errors, "\n".join(errors)


def raw(sdk_object: StripeObject) -> dict[str, Any]:
    """The JSON the sandbox sent for an SDK object (not the SDK's re-typed view)."""
    response = sdk_object.last_response
    assert response is not None
    return json.loads(json.dumps(response.data))
