"""Stripe Billing: products, prices, subscriptions, their invoices and renewals, test clocks
and the customer portal.

A subscription's time is its customer's: the frozen time of the customer's test clock, or
the sandbox's clock. `run_due` does what has fallen due up to that time, earliest first:
period ends (renewal invoices charged to the saved card, cancellation at period end, the
end of a pause) and payment retries of open invoices. It runs when a test clock advances,
when the sandbox's clock is moved, and from the worker.

Every step holds the store's transaction (one state change at a time), and emits the
events Stripe sends for it, in Stripe's order.
"""

from __future__ import annotations

import calendar
import copy
import json
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sandbox import shapes
from sandbox.errors import ParamError, StripeError, not_found
from sandbox.settings import Settings
from sandbox.store import Store

if TYPE_CHECKING:
    from sandbox.engine import Engine, Request

# Subscriptions that still bill.
LIVE = ("active", "past_due", "unpaid", "trialing")
# The id of the portal configuration every portal session names (the sandbox has one).
PORTAL_CONFIGURATION = "bpc_sandbox_default"
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
# Stripe's descriptions of proration lines.
UNUSED = "Unused time on {name} after {date}"
REMAINING = "Remaining time on {name} after {date}"


def add_interval(start: int, interval: str, count: int, anchor: int) -> int:
    """`start` plus `count` intervals. Months and years go by the calendar, on the anchor's
    day of the month (the 31st bills on the last day of shorter months), as Stripe bills."""
    if interval == "day":
        return start + count * shapes.DAY
    if interval == "week":
        return start + count * shapes.WEEK
    months = count * (12 if interval == "year" else 1)
    when = time.gmtime(start)
    day = time.gmtime(anchor).tm_mday
    month_index = when.tm_year * 12 + (when.tm_mon - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    day = min(day, calendar.monthrange(year, month)[1])
    return calendar.timegm((year, month, day, when.tm_hour, when.tm_min, when.tm_sec))


def prorate(amount: int, remaining: int, period: int) -> int:
    """The share of `amount` for `remaining` seconds of a `period`, rounded half up (away
    from zero), in minor units."""
    if period <= 0:
        return 0
    share = (Decimal(abs(amount)) * remaining / period).quantize(Decimal(1), ROUND_HALF_UP)
    return int(share) if amount >= 0 else -int(share)


def _date(timestamp: int) -> str:
    return time.strftime("%d %b %Y", time.gmtime(timestamp))


class Billing:
    def __init__(self, store: Store, settings: Settings, engine: Engine) -> None:
        self.store = store
        self.settings = settings
        self.engine = engine
        self.events = engine.events
        # The time the step being run fell due (see run_due), under the store's lock.
        self._step_time: int | None = None

    # -- time -------------------------------------------------------------------

    def now_for(self, customer_id: str | None) -> int:
        """A customer's time: while a due step runs, the time it fell due; else the frozen
        time of the customer's test clock, else the sandbox's clock."""
        if self._step_time is not None:
            return self._step_time
        if customer_id:
            customer = self.store.get(customer_id, "customer")
            if customer and customer.get("test_clock"):
                clock = self.store.get(customer["test_clock"], "test_helpers.test_clock")
                if clock is not None:
                    return int(clock["frozen_time"])
        return self.settings.now()

    # -- products and prices ------------------------------------------------------

    def create_product(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        with self.store.transaction():
            now = self.settings.now()
            product = shapes.product(params, now)
            if "id" in params:
                if self.store.get(params["id"]) is not None:
                    raise StripeError("Product already exists.", code="resource_already_exists",
                                      param="id")
                product["id"] = params["id"]
            self.store.insert(product)
            self.events.emit("product.created", product, request=request)
            data = params.get("default_price_data")
            if data is not None:
                price = self._insert_price({**data, "product": product["id"]}, request)
                product["default_price"] = price["id"]
                self.store.save(product)
            return product

    def _stored(self, kind: str, object_id: str, name: str, *, status: int,
                param: str) -> dict[str, Any]:
        """The stored object of `kind`, or Stripe's "No such <name>" error."""
        found = self.store.get(object_id, kind)
        if found is None:
            raise not_found(name, object_id, param, status)
        return found

    def product(self, product_id: str, *, status: int = 404,
                param: str = "id") -> dict[str, Any]:
        return self._stored("product", product_id, "product", status=status, param=param)

    def update_product(self, product_id: str, params: dict[str, Any],
                       request: Request) -> dict[str, Any]:
        with self.store.transaction():
            product = self.product(product_id)
            before = copy.deepcopy(product)
            for name in ("name", "description", "active", "images", "statement_descriptor",
                         "unit_label", "url"):
                if name in params:
                    product[name] = params[name]
            if "default_price" in params:
                price = self.price(params["default_price"], status=400, param="default_price")
                if price["product"] != product_id:
                    raise StripeError("The default price must belong to this product.",
                                      param="default_price")
                product["default_price"] = price["id"]
            if "metadata" in params:
                _merge_metadata(product, params["metadata"])
            previous = _previous(before, product)
            if previous:
                product["updated"] = self.settings.now()
                self.store.save(product)
                self.events.emit("product.updated", product, request=request,
                                 previous_attributes=previous)
            return product

    def create_price(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        if ("product" in params) == ("product_data" in params):
            raise ParamError("You must specify either `product` or `product_data` when "
                             "creating a price.", "product", "parameter_missing")
        with self.store.transaction():
            return self._insert_price(params, request)

    def _insert_price(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        params = dict(params)
        params["currency"] = self._currency(params["currency"], "currency")
        if "unit_amount" not in params:
            decimal = params.pop("unit_amount_decimal", None)
            if decimal is None:
                raise ParamError("Missing required param: unit_amount.", "unit_amount",
                                 "parameter_missing")
            if not decimal.isdigit():
                raise ParamError("The sandbox supports whole `unit_amount_decimal` values only.",
                                 "unit_amount_decimal")
            params["unit_amount"] = int(decimal)
        if "product_data" in params:
            product = shapes.product(params["product_data"], self.settings.now())
            self.store.insert(product)
            self.events.emit("product.created", product, request=request)
            product_id = product["id"]
        else:
            product_id = self.product(params["product"], status=400, param="product")["id"]
        if "lookup_key" in params and self.store.ids_where_data(
                "price", "$.lookup_key", params["lookup_key"]):
            raise StripeError(f"A price (`{params['lookup_key']}`) already uses that lookup "
                              "key.", param="lookup_key")
        price = shapes.billing_price(params, product_id, self.settings.now())
        self.store.insert(price)
        self.events.emit("price.created", price, request=request)
        return price

    def _currency(self, currency: str, param: str) -> str:
        currency = currency.lower()
        if currency not in shapes.MINIMUM_CHARGE:
            raise ParamError(f"Invalid currency: {currency}. The sandbox supports: "
                             f"{', '.join(sorted(shapes.MINIMUM_CHARGE))}.", param,
                             "parameter_invalid")
        return currency

    def price(self, price_id: str, *, status: int = 404, param: str = "price") -> dict[str, Any]:
        return self._stored("price", price_id, "price", status=status, param=param)

    def update_price(self, price_id: str, params: dict[str, Any],
                     request: Request) -> dict[str, Any]:
        """Only what Stripe lets change: active, nickname, lookup_key, metadata,
        tax_behavior. An amount is fixed for good (a new amount is a new Price)."""
        with self.store.transaction():
            price = self.price(price_id, param="price")
            before = copy.deepcopy(price)
            for name in ("active", "nickname", "lookup_key", "tax_behavior"):
                if name in params:
                    price[name] = params[name]
            if "metadata" in params:
                _merge_metadata(price, params["metadata"])
            previous = _previous(before, price)
            if previous:
                self.store.save(price)
                self.events.emit("price.updated", price, request=request,
                                 previous_attributes=previous)
            return price

    # -- subscriptions ---------------------------------------------------------------

    def subscription(self, sub_id: str, *, status: int = 404) -> dict[str, Any]:
        return self._stored("subscription", sub_id, "subscription", status=status, param="id")

    def items(self, sub_id: str) -> list[dict[str, Any]]:
        return self.store.children(sub_id, "subscription_item")

    def _save_subscription(self, sub: dict[str, Any]) -> None:
        """A subscription embeds its items (newest state of each)."""
        sub["items"]["data"] = self.items(sub["id"])
        self.store.save(sub)

    def _period(self, sub: dict[str, Any]) -> tuple[int, int]:
        item = self.items(sub["id"])[0]
        return item["current_period_start"], item["current_period_end"]

    def check_subscription_items(self, specs: list[dict[str, Any]],
                                 ) -> list[tuple[dict[str, Any], int]]:
        """Checkout's `line_items` in subscription mode: recurring prices, one currency and
        one billing interval. (price, quantity) for each."""
        if not specs:
            raise ParamError("`line_items` is required in `subscription` mode.", "line_items",
                             "parameter_missing")
        out = []
        for i, spec in enumerate(specs):
            param = f"line_items[{i}]"
            if "price" in spec:
                price = self.price(spec["price"], status=400, param=f"{param}[price]")
            elif "price_data" in spec:
                data = spec["price_data"]
                if "recurring" not in data:
                    raise ParamError("You must specify `recurring` in `price_data` for a "
                                     "subscription mode Checkout Session.",
                                     f"{param}[price_data][recurring]", "parameter_missing")
                if "product" not in data and "product_data" not in data:
                    raise ParamError(f"Missing required param: {param}[price_data][product].",
                                     f"{param}[price_data][product]", "parameter_missing")
                price = self._insert_price({**data, "active": False}, None)
            else:
                raise ParamError(f"Missing required param: {param}[price].", f"{param}[price]",
                                 "parameter_missing")
            if price["type"] != "recurring":
                raise ParamError("You must specify at least one recurring price in "
                                 "`subscription` mode when using prices.", f"{param}[price]")
            if not price["active"] and "price" in spec:
                raise ParamError(f"The price specified ({price['id']}) is inactive. This field "
                                 "only accepts active prices.", f"{param}[price]")
            out.append((price, spec.get("quantity", 1)))
        if len({p["currency"] for p, _ in out}) > 1:
            raise ParamError("Checkout does not support multiple currencies.", "line_items")
        intervals = {(p["recurring"]["interval"], p["recurring"]["interval_count"])
                     for p, _ in out}
        if len(intervals) > 1:
            raise ParamError("Checkout does not support multiple prices with different billing "
                             "intervals.", "line_items")
        return out

    def start_subscription(self, *, customer_id: str, prices: list[tuple[dict[str, Any], int]],
                           pm: dict[str, Any], pm_extra: dict[str, Any],
                           metadata: dict[str, str], description: str | None,
                           public_url: str, request: Request,
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A subscription paid by the card just given (Checkout): active from now, its first
        invoice (subscription_create) charged and paid. Returns (subscription, invoice)."""
        customer = self.engine.customer(customer_id)
        now = self.now_for(customer_id)
        sub_id = shapes.new_id("sub_")
        sub = shapes.subscription(
            subscription_id=sub_id, customer_id=customer_id, currency=prices[0][0]["currency"],
            now=now, metadata=metadata, default_payment_method=pm["id"],
            test_clock=customer.get("test_clock"), description=description)
        self.store.insert(sub, {"public_url": public_url})
        for price, quantity in prices:
            spec = price["recurring"]
            end = add_interval(now, spec["interval"], spec["interval_count"], now)
            self.store.insert(shapes.subscription_item(price, quantity, sub_id, now, end, now),
                              parent=sub_id)
        self._save_subscription(sub)
        self.events.emit("customer.subscription.created", sub, request=request)
        invoice = self._new_invoice(sub, "subscription_create", now, request,
                                    period=(now, now))
        self._finalize(invoice, request)
        self._attempt(invoice, sub, pm, pm_extra, request, on_session_page=True)
        return self.subscription(sub_id), self.invoice(invoice["id"])

    def update_subscription(self, sub_id: str, params: dict[str, Any],
                            request: Request) -> dict[str, Any]:
        with self.store.transaction():
            sub = self.subscription(sub_id)
            ended = sub["status"] in ("canceled", "incomplete_expired")
            if ended and set(params) - {"metadata", "cancellation_details", "expand"}:
                raise StripeError("A canceled subscription can only update its "
                                  "cancellation_details and metadata.", param="id")
            before = copy.deepcopy(sub)
            now = self.now_for(sub["customer"])
            if "cancel_at_period_end" in params:
                wanted = params["cancel_at_period_end"]
                sub["cancel_at_period_end"] = wanted
                sub["cancel_at"] = self._period(sub)[1] if wanted else None
                sub["canceled_at"] = now if wanted else None
                sub["cancellation_details"]["reason"] = ("cancellation_requested" if wanted
                                                         else None)
            if "cancellation_details" in params:
                sub["cancellation_details"].update(params["cancellation_details"])
            if "pause_collection" in params:
                sub["pause_collection"] = self._pause(params["pause_collection"], now)
            if "default_payment_method" in params:
                pm_id = params["default_payment_method"]
                if pm_id is not None:
                    self._customer_method(sub["customer"], pm_id,
                                          "default_payment_method")
                sub["default_payment_method"] = pm_id
            if "description" in params:
                sub["description"] = params["description"]
            if "metadata" in params:
                _merge_metadata(sub, params["metadata"])
            invoice = None
            if "items" in params:
                invoice = self._change_items(sub, params["items"], now,
                                             params.get("proration_behavior",
                                                        "create_prorations"),
                                             params.get("proration_date"), request)
            self._save_subscription(sub)
            previous = _previous(before, sub)
            if previous:
                self.events.emit("customer.subscription.updated", sub, request=request,
                                 previous_attributes=previous)
            if invoice is not None:
                self._finalize(invoice, request)
                self._attempt(invoice, sub, None, None, request)
            return self.subscription(sub_id)

    def _pause(self, value: dict[str, Any] | None, now: int) -> dict[str, Any] | None:
        if value is None:
            return None  # '' resumes collection
        if "behavior" not in value:
            raise ParamError("Missing required param: pause_collection[behavior].",
                             "pause_collection[behavior]", "parameter_missing")
        resumes_at = value.get("resumes_at")
        if resumes_at is not None and resumes_at <= now:
            raise ParamError("`resumes_at` must be in the future.",
                             "pause_collection[resumes_at]")
        return {"behavior": value["behavior"], "resumes_at": resumes_at}

    def _customer_method(self, customer_id: str, pm_id: str, param: str) -> dict[str, Any]:
        pm = self.store.get(pm_id, "payment_method")
        if pm is None or pm["customer"] != customer_id:
            raise StripeError(f"The customer does not have a payment method with the ID "
                              f"{pm_id}. The payment method must be attached to the customer.",
                              code="resource_missing", param=param)
        return pm

    def _change_items(self, sub: dict[str, Any], specs: list[dict[str, Any]], now: int,
                      behavior: str, proration_date: int | None,
                      request: Request) -> dict[str, Any] | None:
        """A price (or quantity) change on existing items, prorated by the second for the
        rest of the period as Stripe does: a credit for the unused time on the old price, a
        charge for the remaining time on the new one. create_prorations leaves them for the
        next invoice, always_invoice invoices them now (returned, draft), none drops them."""
        items = {item["id"]: item for item in self.items(sub["id"])}
        when = proration_date if proration_date is not None else now
        prorations: list[dict[str, Any]] = []
        for i, spec in enumerate(specs):
            param = f"items[{i}]"
            if "id" not in spec:
                raise ParamError("The sandbox changes existing items only: give "
                                 f"{param}[id].", f"{param}[id]", "parameter_missing")
            item = items.get(spec["id"])
            if item is None:
                raise StripeError(f"No such subscription item: '{spec['id']}'",
                                  code="resource_missing", param=f"{param}[id]")
            old_price, old_quantity = item["price"], item["quantity"]
            new_price = (self.price(spec["price"], status=400, param=f"{param}[price]")
                         if "price" in spec else old_price)
            if new_price["type"] != "recurring":
                raise ParamError("The price specified is set to `type=one_time` but this "
                                 "field only accepts prices with `type=recurring`.",
                                 f"{param}[price]")
            if new_price["currency"] != sub["currency"]:
                raise ParamError("The price specified has a different currency from the "
                                 "subscription's.", f"{param}[price]")
            if new_price["recurring"] != old_price["recurring"]:
                raise ParamError("The sandbox keeps a subscription's billing interval: the "
                                 "new price must recur like the old one.", f"{param}[price]")
            quantity = spec.get("quantity", old_quantity)
            start, end = item["current_period_start"], item["current_period_end"]
            if not start <= when <= end:
                raise ParamError("`proration_date` must be within the current period.",
                                 "proration_date")
            if behavior != "none":
                remaining, length = end - when, end - start
                credit = prorate(-old_price["unit_amount"] * old_quantity, remaining, length)
                charge = prorate(new_price["unit_amount"] * quantity, remaining, length)
                for amount, price, qty, words in ((credit, old_price, old_quantity, UNUSED),
                                                  (charge, new_price, quantity, REMAINING)):
                    name = self._product_name(price)
                    prorations.append(shapes.invoice_item(
                        customer_id=sub["customer"], amount=amount, currency=sub["currency"],
                        description=words.format(name=name, date=_date(when)),
                        period=(when, end), price_obj=price, quantity=qty,
                        subscription_id=sub["id"], subscription_item_id=item["id"], now=now,
                        test_clock=sub["test_clock"]))
            item.update(price=new_price, plan=shapes.plan(new_price), quantity=quantity)
            self.store.save(item)
        for ii in prorations:
            self.store.insert(ii, parent=sub["id"])
        if behavior == "always_invoice" and prorations:
            return self._new_invoice(sub, "subscription_update", now, request,
                                     period=(when, when), with_items=False)
        return None

    def _product_name(self, price: dict[str, Any]) -> str:
        product = self.store.get(price["product"], "product")
        return product["name"] if product else price["product"]

    def cancel_subscription(self, sub_id: str, params: dict[str, Any],
                            request: Request) -> dict[str, Any]:
        """`DELETE /v1/subscriptions/{id}`: ends now. `prorate` credits the unused time as a
        pending item; `invoice_now` invoices what is pending at once (a credit left over
        goes to the customer's balance)."""
        with self.store.transaction():
            sub = self.subscription(sub_id)
            if sub["status"] == "canceled":
                raise StripeError(f"No such subscription: '{sub_id}'; it has been canceled.",
                                  status=404, code="resource_missing", param="id")
            now = self.now_for(sub["customer"])
            if params.get("prorate"):
                for item in self.items(sub_id):
                    start, end = item["current_period_start"], item["current_period_end"]
                    credit = prorate(-item["price"]["unit_amount"] * item["quantity"],
                                     end - now, end - start)
                    if credit:
                        self.store.insert(shapes.invoice_item(
                            customer_id=sub["customer"], amount=credit,
                            currency=sub["currency"],
                            description=UNUSED.format(name=self._product_name(item["price"]),
                                                      date=_date(now)),
                            period=(now, end), price_obj=item["price"],
                            quantity=item["quantity"], subscription_id=sub_id,
                            subscription_item_id=item["id"], now=now,
                            test_clock=sub["test_clock"]), parent=sub_id)
            if "cancellation_details" in params:
                sub["cancellation_details"].update(params["cancellation_details"])
            self._end(sub, now, "cancellation_requested", request)
            if params.get("invoice_now") and self._pending_items(sub_id):
                invoice = self._new_invoice(sub, "subscription_update", now, request,
                                            period=(now, now), with_items=False)
                self._finalize(invoice, request)
                if invoice["status"] == "open":
                    self._attempt(invoice, sub, None, None, request)
            return self.subscription(sub_id)

    def _end(self, sub: dict[str, Any], now: int, reason: str, request: Request) -> None:
        sub.update(status="canceled", ended_at=now, cancel_at_period_end=False,
                   canceled_at=sub["canceled_at"] or now)
        sub["cancellation_details"]["reason"] = reason
        self._save_subscription(sub)
        self.events.emit("customer.subscription.deleted", sub, request=request)

    # -- invoices -----------------------------------------------------------------

    def invoice(self, invoice_id: str, *, status: int = 404) -> dict[str, Any]:
        return self._stored("invoice", invoice_id, "invoice", status=status, param="invoice")

    def invoice_extra(self, invoice_id: str) -> dict[str, Any]:
        found = self.store.get_with_extra(invoice_id, "invoice")
        if found is None:
            raise not_found("invoice", invoice_id, "invoice")
        return found[1]

    def _pending_items(self, sub_id: str) -> list[dict[str, Any]]:
        return [ii for ii in self.store.children(sub_id, "invoiceitem") if ii["invoice"] is None]

    def _new_invoice(self, sub: dict[str, Any], reason: str, now: int, request: Request, *,
                     period: tuple[int, int], with_items: bool = True) -> dict[str, Any]:
        """A draft invoice for the subscription: its items for their current period (unless
        `with_items` is false), then its pending invoice items (prorations)."""
        customer = self.engine.customer(sub["customer"])
        extra = self.store.get_with_extra(sub["id"], "subscription")
        public_url = extra[1].get("public_url", "") if extra else ""
        invoice_id = shapes.new_id("in_")
        lines = []
        pending = self._pending_items(sub["id"])
        for ii in pending:
            price = self.store.get(ii["pricing"]["price_details"]["price"], "price") or {}
            details = ii["parent"]["subscription_details"]
            lines.append(shapes.invoice_line(
                invoice_id=invoice_id, amount=ii["amount"], currency=ii["currency"],
                description=ii["description"], quantity=ii["quantity"],
                period=(ii["period"]["start"], ii["period"]["end"]), price_obj=price,
                subscription_id=sub["id"], subscription_item_id=details["subscription_item"],
                invoice_item_id=ii["id"], proration=ii["proration"]))
            ii["invoice"] = invoice_id
            self.store.save(ii)
        if with_items:
            for item in self.items(sub["id"]):
                price = item["price"]
                name = self._product_name(price)
                lines.append(shapes.invoice_line(
                    invoice_id=invoice_id, amount=price["unit_amount"] * item["quantity"],
                    currency=sub["currency"],
                    description=f"{item['quantity']} × {name} (at "
                                f"{shapes.format_money(price['unit_amount'], sub['currency'])}"
                                f" / {price['recurring']['interval']})",
                    quantity=item["quantity"],
                    period=(item["current_period_start"], item["current_period_end"]),
                    price_obj=price, subscription_id=sub["id"],
                    subscription_item_id=item["id"]))
        invoice = shapes.invoice(
            invoice_id=invoice_id, customer=customer, currency=sub["currency"], now=now,
            billing_reason=reason, subscription_id=sub["id"],
            subscription_metadata=sub["metadata"], lines=lines, period=period,
            test_clock=sub["test_clock"],
            hosted_invoice_url=f"{public_url}/invoices/{invoice_id}")
        self.store.insert(invoice, {"public_url": public_url}, parent=sub["customer"])
        sub["latest_invoice"] = invoice_id
        self._save_subscription(sub)
        self.events.emit("invoice.created", invoice, request=request)
        return invoice

    def _finalize(self, invoice: dict[str, Any], request: Request) -> None:
        """Draft → open, numbered from the customer's sequence; an invoice with nothing to
        pay (or a credit) is paid at once, a credit going to the customer's balance."""
        customer = self.engine.customer(invoice["customer"])
        sequence = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = sequence + 1
        starting = customer["balance"]
        total = invoice["total"]
        applied = max(min(-starting, total), 0) if starting < 0 else 0
        due = total - applied
        ending = starting + applied if due >= 0 else starting + total
        if due < 0:
            due = 0
        customer["balance"] = ending
        self.store.save(customer)
        now = self.now_for(invoice["customer"])
        invoice.update(number=f"{customer['invoice_prefix']}-{sequence:04d}", status="open",
                       starting_balance=starting, ending_balance=ending, amount_due=due,
                       amount_remaining=due, effective_at=now)
        invoice["status_transitions"]["finalized_at"] = now
        self.store.save(invoice)
        self.events.emit("invoice.finalized", invoice, request=request)
        if due == 0:
            self._mark_paid(invoice, request)

    def _mark_paid(self, invoice: dict[str, Any], request: Request) -> None:
        now = self.now_for(invoice["customer"])
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0,
                       next_payment_attempt=None, auto_advance=False)
        invoice["status_transitions"]["paid_at"] = now
        self.store.save(invoice)
        self.events.emit("invoice.paid", invoice, request=request)
        self.events.emit("invoice.payment_succeeded", invoice, request=request)

    def _method_for(self, sub: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The card a subscription's invoices are charged to: its own default, else the
        customer's."""
        customer = self.engine.customer(sub["customer"])
        pm_id = (sub["default_payment_method"]
                 or customer["invoice_settings"]["default_payment_method"])
        if not pm_id:
            return None
        found = self.store.get_with_extra(pm_id, "payment_method")
        if found is None or found[0]["customer"] != sub["customer"]:
            return None
        return found

    def _attempt(self, invoice: dict[str, Any], sub: dict[str, Any] | None,
                 pm: dict[str, Any] | None, pm_extra: dict[str, Any] | None,
                 request: Request, *, on_session_page: bool = False) -> str:
        """One attempt to collect an open invoice: a PaymentIntent for the amount due on the
        card, off-session unless the customer is on a page. Returns the outcome: paid,
        failed or action_required. Stripe's events in its order; a failure schedules the
        next retry (or gives up) and makes the subscription past_due. An invoice that is
        not open (one with nothing due is paid when finalized) is not charged: Stripe makes
        no payment of nothing."""
        if invoice["status"] != "open":
            return "paid" if invoice["status"] == "paid" else invoice["status"]
        if pm is None or pm_extra is None:
            found = self._method_for(sub) if sub else None
            if found is None:
                return self._failed(invoice, sub, request)
            pm, pm_extra = found
        now = self.now_for(invoice["customer"])
        description = {"subscription_create": "Subscription creation",
                       "subscription_cycle": "Subscription update",
                       "subscription_update": "Subscription update"}.get(
                           invoice["billing_reason"], f"Invoice {invoice['number']}")
        public_url = self.invoice_extra(invoice["id"]).get("public_url", "")
        payment = next((p for p in self.store.children(invoice["id"], "invoice_payment")
                        if p["status"] == "open"), None)
        if payment is not None:
            # Every attempt confirms the invoice's one PaymentIntent again, as on Stripe.
            pi = self.store.get(payment["payment"]["payment_intent"], "payment_intent")
            assert pi is not None
        else:
            pi = shapes.new_payment_intent(
                amount=invoice["amount_due"], currency=invoice["currency"],
                customer=invoice["customer"], data={"description": description},
                method_types=["card"], now=now)
            self.store.insert(pi, {"public_url": public_url, "invoice": invoice["id"]})
            payment = shapes.invoice_payment(invoice, pi["id"], now)
            self.store.insert(payment, parent=invoice["id"])
            self.events.emit("payment_intent.created", pi, request=request)
        invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1)
        outcome, _ = self.engine._saved_outcome(pm, pm_extra, off_session=True)
        if on_session_page and outcome == "authenticate":
            # The customer is on the page and has just authenticated the card.
            pm_extra = {**pm_extra, "next": {"outcome": "succeed", "decline_code": None}}
            outcome = "succeed"
        if outcome == "authenticate":
            return self._action_required(invoice, sub, pi, pm, request)
        error = self.engine._confirm(pi, pm, pm_extra, off_session=True, request=request,
                                     public_url=public_url)
        if error is None:
            payment.update(amount_paid=invoice["amount_due"], status="paid")
            payment["status_transitions"]["paid_at"] = now
            self.store.save(payment)
            self._mark_paid(invoice, request)
            if sub is not None and sub["status"] in ("past_due", "unpaid"):
                self._set_status(sub, "active", request)
            return "paid"
        return self._failed(invoice, sub, request)

    def _action_required(self, invoice: dict[str, Any], sub: dict[str, Any] | None,
                         pi: dict[str, Any], pm: dict[str, Any], request: Request) -> str:
        """The card asks for 3-D Secure: the PaymentIntent waits for the customer, who
        completes it on the hosted invoice page (invoice.payment_action_required)."""
        pi.update(payment_method=pm["id"], status="requires_action", next_action={
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": pm["id"]}})
        self.store.save(pi)
        self.events.emit("payment_intent.requires_action", pi, request=request)
        self._next_attempt(invoice)
        self.events.emit("invoice.payment_action_required", invoice, request=request)
        self._after_failure(invoice, sub, request)
        return "action_required"

    def _failed(self, invoice: dict[str, Any], sub: dict[str, Any] | None,
                request: Request) -> str:
        self._next_attempt(invoice)
        self.events.emit("invoice.payment_failed", invoice, request=request)
        self._after_failure(invoice, sub, request)
        return "failed"

    def _next_attempt(self, invoice: dict[str, Any]) -> None:
        """After a failed attempt: the next retry per SANDBOX_INVOICE_RETRY_DAYS (each
        counted from the attempt before), or none after the last."""
        retries = self.settings.knobs.invoice_retry_days
        done = invoice["attempt_count"] - 1  # retries made so far (the first try is not one)
        now = self.now_for(invoice["customer"])
        invoice["next_payment_attempt"] = (now + int(retries[done] * shapes.DAY)
                                           if done < len(retries) else None)
        self.store.save(invoice)

    def _after_failure(self, invoice: dict[str, Any], sub: dict[str, Any] | None,
                       request: Request) -> None:
        """The subscription is past due; when no retry is left it is canceled or left
        unpaid (SANDBOX_SUBSCRIPTION_AFTER_RETRIES)."""
        if sub is None:
            return
        now = self.now_for(invoice["customer"])
        if sub["status"] == "active":
            self._set_status(sub, "past_due", request)
        if invoice["next_payment_attempt"] is None and sub["status"] in ("past_due",):
            if self.settings.knobs.subscription_after_retries == "unpaid":
                self._set_status(sub, "unpaid", request)
            else:
                self._end(sub, now, "payment_failed", request)

    def _set_status(self, sub: dict[str, Any], status: str, request: Request) -> None:
        previous = {"status": sub["status"]}
        sub["status"] = status
        self._save_subscription(sub)
        self.events.emit("customer.subscription.updated", sub, request=request,
                         previous_attributes=previous)

    def pay_invoice_with_card(self, invoice_id: str, pm: dict[str, Any],
                              pm_extra: dict[str, Any]) -> str:
        """The customer pays an open invoice on the hosted invoice page (or the portal) with
        a card: an on-session attempt (3-D Secure is completed there)."""
        invoice = self.invoice(invoice_id)
        if invoice["status"] != "open":
            raise StripeError("This invoice is not open.", param="invoice")
        sub = (self.store.get(invoice["subscription"], "subscription")
               if invoice["subscription"] else None)
        # (Paying a canceled subscription's invoice does not revive it.)
        return self._attempt(invoice, sub, pm, pm_extra, None, on_session_page=True)

    # -- renewals and retries, by time ----------------------------------------------

    def run_due(self, clock_id: str | None, now: int) -> int:
        """Everything due up to `now` for the subscriptions on this test clock (None: on the
        sandbox's clock), earliest first. Returns how many steps ran."""
        steps = 0
        while steps < 1000:
            # One transaction per step, found and run together: the worker and a request
            # moving the clock cannot both run it.
            with self.store.transaction():
                due = self._next_due(clock_id, now)
                if due is None:
                    return steps
                self._run_step(due[1], due[2], due[0])
            steps += 1
        return steps

    def _next_due(self, clock_id: str | None, now: int) -> tuple[int, str, str] | None:
        candidates: list[tuple[int, str, str]] = []
        rows = self.store.query(
            "SELECT data FROM objects WHERE type = 'subscription' "
            "AND json_extract(data, '$.test_clock') IS ? "
            "AND json_extract(data, '$.status') IN ('active', 'past_due', 'unpaid', "
            "'trialing') ORDER BY seq", (clock_id,))
        for row in rows:
            sub = json.loads(row["data"])
            end = self._period(sub)[1]
            resumes = (sub["pause_collection"] or {}).get("resumes_at")
            if resumes is not None and resumes <= now and resumes < end:
                candidates.append((resumes, "resume", sub["id"]))
            if end <= now:
                kind = "end" if sub["cancel_at"] is not None and sub["cancel_at"] <= end \
                    else "renew"
                candidates.append((end, kind, sub["id"]))
        invoices = self.store.query(
            "SELECT data FROM objects WHERE type = 'invoice' "
            "AND json_extract(data, '$.test_clock') IS ? "
            "AND json_extract(data, '$.status') = 'open' "
            "AND json_extract(data, '$.next_payment_attempt') <= ? ORDER BY seq",
            (clock_id, now))
        for row in invoices:
            invoice = json.loads(row["data"])
            candidates.append((invoice["next_payment_attempt"], "retry", invoice["id"]))
        return min(candidates) if candidates else None

    def _run_step(self, kind: str, object_id: str, when: int) -> None:
        """One due step, run at the time it fell due (a clock moved far ahead in one go
        still retries N days after the failure, not after the move)."""
        self._step_time = when
        try:
            self._run_due_step(kind, object_id, when)
        finally:
            self._step_time = None

    def _run_due_step(self, kind: str, object_id: str, when: int) -> None:
        if kind == "retry":
            invoice = self.invoice(object_id)
            sub = (self.store.get(invoice["subscription"], "subscription")
                   if invoice["subscription"] else None)
            if sub is not None and sub["status"] == "canceled":
                invoice["next_payment_attempt"] = None
                self.store.save(invoice)
                return
            self._attempt(invoice, sub, None, None, None)
            return
        sub = self.subscription(object_id)
        if kind == "resume":
            previous = {"pause_collection": sub["pause_collection"]}
            sub["pause_collection"] = None
            self._save_subscription(sub)
            # (customer.subscription.resumed is for `paused` subscriptions, not this.)
            self.events.emit("customer.subscription.updated", sub, request=None,
                             previous_attributes=previous)
            return
        if kind == "end":
            self._end(sub, when, "cancellation_requested", None)
            return
        self._renew(sub, when)

    def _renew(self, sub: dict[str, Any], when: int) -> None:
        """A period ended: the next one starts and its invoice (subscription_cycle) is
        charged to the saved card, unless collection is paused (the invoice is then voided,
        left as a draft or marked uncollectible, as the pause says)."""
        previous_items = copy.deepcopy(sub["items"])
        previous_invoice = sub["latest_invoice"]
        invoice = self._cycle_invoice(sub, when)
        self.events.emit("customer.subscription.updated", sub, request=None,
                         previous_attributes={"items": previous_items,
                                              "latest_invoice": previous_invoice})
        pause = sub["pause_collection"]
        if pause is not None:
            self._paused_invoice(invoice, pause["behavior"], when)
            return
        self._finalize(invoice, None)
        if invoice["status"] == "open":
            self._attempt(invoice, sub, None, None, None)

    def _cycle_invoice(self, sub: dict[str, Any], when: int) -> dict[str, Any]:
        """The items move on to their next period and its invoice is drafted. As on Stripe,
        a renewal invoice's own period is the one that just ended; its lines carry the new
        one."""
        items = self.items(sub["id"])
        ended = (items[0]["current_period_start"], items[0]["current_period_end"])
        for item in items:
            spec = item["price"]["recurring"]
            start = item["current_period_end"]
            item.update(current_period_start=start, current_period_end=add_interval(
                start, spec["interval"], spec["interval_count"], sub["billing_cycle_anchor"]))
            self.store.save(item)
        return self._new_invoice(sub, "subscription_cycle", when, None, period=ended)

    def preview_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        """`POST /v1/invoices/create_preview` for a subscription: the next renewal invoice,
        or with `subscription_details[items]` what a change would invoice (always_invoice:
        the prorations now; otherwise the next renewal with them). Worked out by doing it
        in a transaction that is then rolled back: nothing is kept, no event is sent."""
        if "subscription" not in params:
            raise ParamError("The sandbox previews a subscription's invoices only: give "
                             "`subscription`.", "subscription", "parameter_missing")
        try:
            with self.store.transaction():
                sub = self.subscription(params["subscription"], status=400)
                if params.get("customer", sub["customer"]) != sub["customer"]:
                    raise StripeError("The subscription does not belong to this customer.",
                                      param="customer")
                if sub["status"] not in LIVE:
                    raise StripeError("No upcoming invoices for a canceled subscription.",
                                      code="invoice_upcoming_none", param="subscription")
                details = params.get("subscription_details", {})
                now = self.now_for(sub["customer"])
                invoice = None
                if "items" in details:
                    invoice = self._change_items(
                        sub, details["items"], now,
                        details.get("proration_behavior", "create_prorations"),
                        details.get("proration_date"), None)
                if invoice is None:
                    invoice = self._cycle_invoice(sub, self._period(sub)[1])
                raise _Preview(invoice)
        except _Preview as preview:
            invoice = preview.invoice
        invoice.update(id="upcoming_" + invoice["id"], hosted_invoice_url=None)
        for line in invoice["lines"]["data"]:
            line["invoice"] = invoice["id"]
        invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
        return invoice

    def _paused_invoice(self, invoice: dict[str, Any], behavior: str, when: int) -> None:
        if behavior == "keep_as_draft":
            invoice["auto_advance"] = False
            self.store.save(invoice)
            return
        self._finalize(invoice, None)
        if invoice["status"] != "open":
            return
        if behavior == "void":
            invoice.update(status="void", amount_remaining=0)
            invoice["status_transitions"]["voided_at"] = when
            self.store.save(invoice)
            self.events.emit("invoice.voided", invoice, request=None)
        else:
            invoice["status"] = "uncollectible"
            invoice["status_transitions"]["marked_uncollectible_at"] = when
            self.store.save(invoice)
            self.events.emit("invoice.marked_uncollectible", invoice, request=None)

    # -- test clocks ----------------------------------------------------------------

    def create_test_clock(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        with self.store.transaction():
            clock = shapes.test_clock(params.get("name"), params["frozen_time"],
                                      self.settings.now())
            self.store.insert(clock)
            self.events.emit("test_helpers.test_clock.created", clock, request=request)
            return clock

    def test_clock(self, clock_id: str, *, status: int = 404,
                   param: str = "test_clock") -> dict[str, Any]:
        return self._stored("test_helpers.test_clock", clock_id, "test_clock", status=status,
                            param=param)

    def advance_test_clock(self, clock_id: str, frozen_time: int,
                           request: Request) -> dict[str, Any]:
        """Move a test clock forward: what falls due for its customers' subscriptions runs
        (renewals, retries, cancellations), then the clock is ready again
        (test_helpers.test_clock.advancing, then .ready)."""
        with self.store.transaction():
            clock = self.test_clock(clock_id, param="test_clock")
            if frozen_time <= clock["frozen_time"]:
                raise ParamError("The frozen_time must be after the test clock's current "
                                 "frozen_time.", "frozen_time")
            if frozen_time > clock["frozen_time"] + 2 * 366 * shapes.DAY:
                raise ParamError("Test clocks can only be advanced up to two intervals of the "
                                 "longest subscription; the sandbox allows two years.",
                                 "frozen_time")
            clock.update(status="advancing",
                         status_details={"advancing": {"target_frozen_time": frozen_time}})
            self.store.save(clock)
            self.events.emit("test_helpers.test_clock.advancing", clock, request=request)
            snapshot = copy.deepcopy(clock)
        self._advance(clock_id, frozen_time)
        return snapshot

    def _advance(self, clock_id: str, frozen_time: int) -> None:
        """Run what is due step by step with the clock at each step's time, then settle at
        the target and report ready."""
        while True:
            with self.store.transaction():
                due = self._next_due(clock_id, frozen_time)
                if due is None:
                    break
                clock = self.test_clock(clock_id)
                clock["frozen_time"] = max(clock["frozen_time"], due[0])
                self.store.save(clock)
                self._run_step(due[1], due[2], due[0])
        with self.store.transaction():
            clock = self.test_clock(clock_id)
            clock.update(frozen_time=frozen_time, status="ready", status_details={})
            self.store.save(clock)
            self.events.emit("test_helpers.test_clock.ready", clock, request=None)

    def delete_test_clock(self, clock_id: str, request: Request) -> dict[str, Any]:
        """Deleting a clock deletes the customers made on it and their subscriptions with
        it, as on Stripe (no events for those)."""
        with self.store.transaction():
            clock = self.test_clock(clock_id, param="test_clock")
            sub_ids = self.store.ids_where_data("subscription", "$.test_clock", clock_id)
            for sub_id in sub_ids:
                self.store.execute("DELETE FROM objects WHERE parent = ? AND type IN "
                                   "('subscription_item', 'invoiceitem')", (sub_id,))
            for object_id in [*sub_ids, *self.store.ids_where_data(
                    "customer", "$.test_clock", clock_id), clock_id]:
                self.store.execute("DELETE FROM objects WHERE id = ?", (object_id,))
            self.events.emit("test_helpers.test_clock.deleted", clock, request=request)
            return {"id": clock_id, "object": "test_helpers.test_clock", "deleted": True}

    # -- the customer portal ----------------------------------------------------------

    def create_portal_session(self, params: dict[str, Any], public_url: str) -> dict[str, Any]:
        with self.store.transaction():
            self.engine.customer(params["customer"], status=400)
            return_url = params.get("return_url")
            session_id = shapes.new_id("bps_")
            session = shapes.portal_session(
                params["customer"], return_url, f"{public_url}/billing_portal/{session_id}",
                params.get("configuration", PORTAL_CONFIGURATION), self.settings.now(),
                params.get("locale"))
            session["id"] = session_id
            self.store.insert(session, {"public_url": public_url})
            return session

    def portal_session(self, session_id: str) -> dict[str, Any]:
        session = self.store.get(session_id, "billing_portal.session")
        if session is None:
            raise not_found("billing_portal.session", session_id)
        return session

    def portal_cancel(self, session_id: str, sub_id: str, at_period_end: bool) -> None:
        """The portal's cancel (at period end) and "don't cancel" buttons."""
        session = self.portal_session(session_id)
        sub = self.subscription(sub_id)
        if sub["customer"] != session["customer"]:
            raise not_found("subscription", sub_id)
        self.update_subscription(sub_id, {"cancel_at_period_end": at_period_end}, None)

    def portal_replace_card(self, session_id: str, form: dict[str, str]) -> str | None:
        """A new card from the portal: attached, made the customer's and its subscriptions'
        default, then any open invoice is paid with it (as Stripe retries when a new default
        is set). Returns the decline message if the card cannot be used."""
        session = self.portal_session(session_id)
        customer_id = session["customer"]
        with self.store.transaction():
            customer = self.engine.customer(customer_id)
            card, number = self.engine._card(form)
            billing = {"email": customer["email"], "name": form.get("name") or customer["name"],
                       "phone": None}
            pm = self.engine._new_payment_method(card, number, billing)
            found = self.store.get_with_extra(pm["id"], "payment_method")
            assert found is not None
            pm, pm_extra = found
            if card["behaviour"] == "decline":
                pm_extra["consumed"] = True
                self.store.save(pm, pm_extra)
                return "Your card was declined."
            pm_extra["setup_for"] = "off_session"
            pm["allow_redisplay"] = "limited"
            self.engine._attach(pm, pm_extra, customer_id, None)
            self.engine.update_customer(
                customer_id, {"invoice_settings": {"default_payment_method": pm["id"]}}, None)
            for sub_id in self.store.ids_where_data("subscription", "$.customer", customer_id):
                sub = self.subscription(sub_id)
                if sub["status"] in LIVE and sub["default_payment_method"] != pm["id"]:
                    self.update_subscription(sub_id, {"default_payment_method": pm["id"]}, None)
            open_ids = [i for i in self.store.ids_where_data("invoice", "$.customer",
                                                             customer_id)
                        if self.invoice(i)["status"] == "open"]
            for invoice_id in open_ids:
                invoice = self.invoice(invoice_id)
                sub = (self.store.get(invoice["subscription"], "subscription")
                       if invoice["subscription"] else None)
                if sub is not None and sub["status"] == "canceled":
                    continue
                fresh = self.store.get_with_extra(pm["id"], "payment_method")
                assert fresh is not None
                self._attempt(invoice, sub, fresh[0], fresh[1], None, on_session_page=True)
            return None


class _Preview(Exception):  # noqa: N818 - not an error: carries the preview out
    """Leaves a preview's transaction (rolling it back) with the invoice it drafted."""

    def __init__(self, invoice: dict[str, Any]) -> None:
        super().__init__("preview")
        self.invoice = copy.deepcopy(invoice)


def _previous(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    from sandbox.engine import _previous as previous
    return previous(before, after)


def _merge_metadata(obj: dict[str, Any], metadata: dict[str, str | None] | None) -> None:
    from sandbox.engine import _merge_metadata as merge
    merge(obj, metadata)
