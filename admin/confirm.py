"""Money moves only once the admin has read what will happen.

The first POST of a money form (approve and refund, bulk approve, issue a refund, record
an offline payment, cancel with a refund) writes nothing: it answers with a page that
restates, in words, the amount and currency, the contract and the people, and what
happens to the money. Its Confirm button posts the same fields again with `confirm=1`,
so it works without JavaScript and keeps the CSRF check.

The figures restated travel in the confirming form. The confirmed POST works them out
again from the same functions the action uses; if they changed meanwhile (another
refund, a session used, a request decided) nothing is done and the page is shown again
with what changed. Services that compute an amount themselves also check it under the
contract's lock (`quoted=`), so a change in between is refused there too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from flask import make_response, render_template, request
from werkzeug.wrappers import Response

CONFIRM = "confirm"  # "1" when the admin pressed Confirm
RESTATED = "restated"  # the figures the admin read, as JSON
_NOT_REPOSTED = {CONFIRM, RESTATED, "csrf_token"}


@dataclass(frozen=True)
class Item:
    """One of several decisions confirmed at once (a request of a bulk approval)."""

    key: str  # "Request #7"
    contract: str  # "#12 “Public speaking”"
    contract_url: str
    student: str
    coach: str
    amount: str  # "$120.00"
    refusal: str | None = None  # why it will not go through, or None


@dataclass(frozen=True)
class Confirmation:
    """What a money action will do, in words, before it does it."""

    question: str  # the page's heading: "Refund $120.00 to Zoë Student?"
    button: str  # the Confirm button's words: "Refund $120.00"
    back: str  # where "Back" goes, nothing done
    figures: dict[str, str]  # label → words, shown and compared on confirmation
    happens: list[str]  # what will happen, a sentence each
    items: list[Item] = field(default_factory=list)
    totals: list[str] = field(default_factory=list)  # bulk: one line per currency
    danger: bool = False  # the button in red: something ends (a contract)
    section: str = "refunds"  # the console's tab it belongs to

    @property
    def restated(self) -> dict[str, str]:
        """Every figure the admin reads, the items' amounts included."""
        found = dict(self.figures)
        for item in self.items:
            found[item.key] = item.refusal or item.amount
        return found


def ask(confirmation: Confirmation) -> str | Response | None:
    """The confirmation page, or None when this POST confirms these very figures.

    Call it after the form is valid and the action is known to be possible, just
    before the action: a None means go ahead.
    """
    if request.form.get(CONFIRM) != "1":
        return _page(confirmation)
    changed = _changes(_read_back(), confirmation.restated)
    if changed:
        # 409: the admin confirmed figures that are no longer true.
        return make_response(_page(confirmation, changed=changed), 409)
    return None


def _read_back() -> dict[str, str]:
    try:
        found = json.loads(request.form.get(RESTATED) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _changes(shown: dict[str, str], now: dict[str, str]) -> list[str]:
    """What differs between the figures the admin read and those of now, in words."""
    changes = []
    for label, value in now.items():
        before = shown.get(label)
        if before is None:
            changes.append(f"{label}: {value} (not shown before)")
        elif before != value:
            changes.append(f"{label}: {before} before, {value} now")
    changes += [f"{label}: {value} before, gone now"
                for label, value in shown.items() if label not in now]
    return changes


def _page(confirmation: Confirmation, changed: list[str] | None = None) -> str:
    reposted = [
        (name, value)
        for name, values in request.form.lists()
        if name not in _NOT_REPOSTED
        for value in values
    ]
    return render_template(
        "admin/confirm.html",
        section=confirmation.section,
        confirmation=confirmation,
        reposted=reposted,
        restated=json.dumps(confirmation.restated, ensure_ascii=False, sort_keys=True),
        changed=changed or [],
    )
