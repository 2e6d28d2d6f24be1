"""Coaches' Stripe connected accounts: made, onboarded through Stripe, mirrored.

An account is made with controller properties (the platform pays Stripe's fees
and bears losses, the coach gets the Express dashboard, Stripe collects the
requirements), never with a legacy `type`. Stripe hosts onboarding (account
links) and the dashboard (login links). `account.updated` events, and the
coach's return from onboarding, bring our row up to what Stripe says.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from audit.services import record as audit
from database.locking import lock_one
from extensions import db
from notifications.services import notify
from payments import stripe_api
from payouts.models import ConnectedAccount

# Stripe's requirement keys (`requirements.currently_due`) in the words a coach reads. A key
# is matched whole, then by its first part ("individual.verification.document" →
# "individual.verification", then "individual"); anything else reads GENERIC_REQUIREMENT.
REQUIREMENT_WORDS = {
    "business_profile.url": "your website or a link to your profile",
    "business_profile.mcc": "what kind of business you run",
    "business_profile.product_description": "a description of what you sell",
    "business_type": "whether you work as an individual or a company",
    "external_account": "the bank account to pay you into",
    "individual.address": "your home address",
    "individual.dob": "your date of birth",
    "individual.email": "your email address",
    "individual.first_name": "your first name",
    "individual.last_name": "your last name",
    "individual.phone": "your phone number",
    "individual.id_number": "your national ID or tax number",
    "individual.ssn_last_4": "the last four digits of your Social Security number",
    "individual.verification.document": "a photo of your ID document",
    "individual.verification.additional_document": "a document proving your address",
    "individual.verification": "a check of your identity",
    "individual": "some personal details",
    "company": "some details about your company",
    "tos_acceptance.date": "your acceptance of Stripe's terms of service",
    "tos_acceptance.ip": "your acceptance of Stripe's terms of service",
    "tos_acceptance": "your acceptance of Stripe's terms of service",
}
GENERIC_REQUIREMENT = "a few more details about you"


def requirement_words(keys: list[str]) -> list[str]:
    """What Stripe asks for (`currently_due` keys), in plain words, each said once."""
    words: list[str] = []
    for key in keys:
        parts = key.split(".")
        said = next((REQUIREMENT_WORDS[".".join(parts[:n])]
                     for n in range(len(parts), 0, -1)
                     if ".".join(parts[:n]) in REQUIREMENT_WORDS), GENERIC_REQUIREMENT)
        if said not in words:
            words.append(said)
    return words


class PayoutsRefused(Exception):
    """Something a coach cannot do with payouts now; the message says why."""


def account_of(user: User) -> ConnectedAccount | None:
    return db.session.scalar(select(ConnectedAccount).where(ConnectedAccount.user_id == user.id))


def connect_account(coach: User) -> ConnectedAccount:
    """The coach's connected account, made at Stripe the first time. Commits.

    Stripe is asked outside any lock with a key from the coach's id, so two clicks
    at once make one account at Stripe; the unique user id keeps one row of it.
    """
    if not coach.is_coach:
        raise PayoutsRefused("Only coaches are paid out.")
    found = account_of(coach)
    if found is not None:
        return found
    db.session.rollback()  # no transaction while Stripe answers
    made = stripe_api.create_connected_account(
        {
            "email": coach.email,
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "stripe_dashboard": {"type": "express"},
                "requirement_collection": "stripe",
            },
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"coachpact_user_id": str(coach.id)},
        },
        stripe_api.idempotency_key("connect-account", coach.id),
    )
    row = ConnectedAccount(user_id=coach.id, stripe_account_id=made.id)
    _copy(row, made.to_dict())
    try:
        db.session.add(row)
        db.session.flush()
        audit("payout_account.created", row, actor=coach,
              after={"stripe_account_id": made.id})
        db.session.commit()
    except IntegrityError:  # the other click wrote it first: the same account
        db.session.rollback()
    found = account_of(coach)
    assert found is not None
    return found


def onboarding_link(coach: User, refresh_url: str, return_url: str) -> str:
    """Where the coach gives Stripe what it needs (made on first use). Commits."""
    account = connect_account(coach)
    link = stripe_api.create_account_link(
        {
            "account": account.stripe_account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
    )
    return str(link.url)


def login_link(coach: User) -> str:
    """A single-use link into the coach's Express dashboard."""
    account = account_of(coach)
    if account is None:
        raise PayoutsRefused("Set up payouts first.")
    if not account.details_submitted:
        raise PayoutsRefused("Finish setting up payouts with Stripe first.")
    return str(stripe_api.create_login_link(account.stripe_account_id).url)


def refresh(coach: User) -> ConnectedAccount | None:
    """Ask Stripe where the coach's account stands (back from onboarding). Flushes."""
    account = account_of(coach)
    if account is None:
        return None
    stripe_account = stripe_api.retrieve_account(account.stripe_account_id).to_dict()
    mirror_account(stripe_account)
    return account_of(coach)


def connected_account_ids() -> list[str]:
    """Every coach's connected account at Stripe (reconcile lists each one's events)."""
    return list(db.session.scalars(
        select(ConnectedAccount.stripe_account_id).order_by(ConnectedAccount.id)
    ))


def _copy(row: ConnectedAccount, stripe_account: dict[str, Any]) -> dict[str, Any]:
    """Copy Stripe's account onto our row; the fields that changed, before and after."""
    requirements = stripe_account.get("requirements") or {}
    capabilities = stripe_account.get("capabilities") or {}
    fresh = {
        "charges_enabled": bool(stripe_account.get("charges_enabled")),
        "payouts_enabled": bool(stripe_account.get("payouts_enabled")),
        "details_submitted": bool(stripe_account.get("details_submitted")),
        "transfers_active": capabilities.get("transfers") == "active",
        "requirements_due": sorted(requirements.get("currently_due") or []),
    }
    changed = {}
    for name, value in fresh.items():
        if getattr(row, name) != value:
            changed[name] = (getattr(row, name), value)
            setattr(row, name, value)
    return changed


def mirror_account(stripe_account: dict[str, Any]) -> str:
    """`account.updated` (registered by `payouts.init_app`): our row follows Stripe's account.

    Flushes; the caller commits.
    """
    row = lock_one(
        db.session,
        select(ConnectedAccount).where(ConnectedAccount.stripe_account_id == stripe_account["id"]),
    )
    if row is None:
        return "unrelated"
    changed = _copy(row, stripe_account)
    if not changed:
        return "unchanged"
    db.session.flush()
    audit(
        "payout_account.updated",
        row,
        actor_label="stripe",
        before={name: before for name, (before, _) in changed.items()},
        after={name: after for name, (_, after) in changed.items()},
    )
    before_due = changed.get("requirements_due", (row.requirements_due, None))[0]
    if row.requirements_due and not before_due:
        # Told when Stripe starts asking (not during onboarding, which asks from the start;
        # the same account read again changes nothing and tells no one twice).
        _tell_requirements(row)
    return "ready" if row.ready else "updated"


def _tell_requirements(row: ConnectedAccount) -> None:
    needed = requirement_words(row.requirements_due)
    listed = needed[0] if len(needed) == 1 else ", ".join(needed[:-1]) + " and " + needed[-1]
    coach = db.session.get(User, row.user_id)
    assert coach is not None
    notify(coach,
           f"Stripe needs more information to keep paying you out: {listed}. "
           "It takes a few minutes on Stripe's page; until then your payouts may be paused.",
           link=url_for("payouts.refresh_link"),
           subject="Coachpact: Stripe needs more information for your payouts")
