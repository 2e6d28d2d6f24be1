"""Sending each due share to the coach's connected account, and taking back what refunds take.

Separate charges and transfers: the student's payment lands on the platform's
balance; each share is a Stripe transfer to the coach's account, funded from
the charge that paid the contract (`source_transaction`) and grouped by
contract (`transfer_group`).

A transfer is claimed under the contract's lock (the share moves to
`transferring` and the claim is committed), then Stripe is asked outside any
lock. The idempotency key comes from the session (`transfer-session-<id>`) and
the request's parameters are fixed at the first claim, so a retry, a second job
or a lost answer can never make two transfers for one session. Only a refusal,
which proves nothing was sent, moves the key on (`-r<refusals>`), since Stripe
answers a key it refused with the same refusal. Refused → `failed`, retried
after 1 minute doubling to an hour (a short platform balance, `balance_insufficient`:
15 minutes doubling to 12 hours, so retries go on for days); not reached → `due`
again, same key. A share whose source charge's money is still pending at Stripe
(its balance transaction's `available_on` is to come) waits until then, `due`,
with no refusal counted: Stripe would hold the coach's money until then anyway,
and a reversal could not take it back before.

Refunds after transfers: each transferred share gives back
`amount × refunded ÷ total` (rounded up) through transfer reversals, keyed
by the share and the cumulative amount reversed. A reversal Stripe refuses
because the coach's available balance is short (`balance_insufficient`) waits
and is asked again, 15 minutes doubling to 12 hours, each refusal moving the key
on (`-r<refusals>`); the coach is told once to keep that much in their balance.
Still refused REVERSAL_GIVE_UP after the first refusal (or refused for any other
reason), it is written once as a PlatformLoss and never asked again. Shares not
yet sent shrink instead, or are cancelled when the contract is refunded in full.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import exists, func, select

import clock
import jobs
from accounts.models import User
from accounts.timezones import format_local
from audit.services import record as audit
from contracts.models import Contract
from contracts.money import format_money
from contracts.services import lock_contract
from extensions import db
from notifications.services import notify
from payments import stripe_api
from payments.models import Dispute, Payment, Refund, RefundStatus
from payments.records import lock_with_contract, transfer_group
from payments.standing import DISPUTE_LOST, PAID_STATUSES, given_back, refund_cut
from payouts.models import (
    ConnectedAccount,
    PlatformLoss,
    SessionShare,
    ShareStatus,
    TransferReversal,
)
from payouts.shares import move

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=1)
# Stripe's code when a balance cannot cover a transfer or a reversal: money may come (the
# platform's charges become available, the coach earns more), so asked again for days.
SHORT_BALANCE = "balance_insufficient"
SHORT_FIRST_RETRY = timedelta(minutes=15)
SHORT_LONGEST_WAIT = timedelta(hours=12)
# A reversal refused for a short balance this long after its first refusal: the platform's loss.
REVERSAL_GIVE_UP = timedelta(days=5)
# Stripe not reached: the same request (same key) is tried again this much later.
UNREACHED_WAIT = timedelta(minutes=1)
# A share still `transferring` this long after its claim lost its job: due again.
STUCK_AFTER = timedelta(minutes=10)
TRANSFERABLE = (ShareStatus.DUE, ShareStatus.FAILED)


def retry_delay(refusals: int, code: str | None = None) -> timedelta:
    """1 minute after the first refusal, doubling, at most an hour; for a short balance
    15 minutes, doubling, at most 12 hours."""
    if code == SHORT_BALANCE:
        return jobs.backoff(refusals, SHORT_FIRST_RETRY, SHORT_LONGEST_WAIT)
    return jobs.backoff(refusals, FIRST_RETRY, LONGEST_WAIT)


def _open_dispute() -> object:
    return exists().where(Dispute.contract_id == SessionShare.contract_id,
                          Dispute.closed_at.is_(None))


def due_share_ids(limit: int = 500) -> list[int]:
    """Shares to transfer now: due (or failed and due again), the coach's account ready,
    no open dispute on the contract. Full refunds are checked at the claim."""
    return list(
        db.session.scalars(
            select(SessionShare.id)
            .join(ConnectedAccount, ConnectedAccount.user_id == SessionShare.coach_id)
            .where(
                SessionShare.status.in_(TRANSFERABLE),
                SessionShare.next_attempt_at <= clock.now(),
                ConnectedAccount.payouts_enabled.is_(True),
                ConnectedAccount.transfers_active.is_(True),
                ~_open_dispute(),  # type: ignore[operator]
            )
            .order_by(SessionShare.next_attempt_at, SessionShare.id)
            .limit(limit)
        )
    )


def _locked(share_id: int) -> tuple[SessionShare, Contract]:
    return lock_with_contract(SessionShare, share_id)


def has_open_dispute(contract_id: int) -> bool:
    return db.session.scalar(
        select(exists().where(Dispute.contract_id == contract_id, Dispute.closed_at.is_(None)))
    ) or False


@dataclass(frozen=True)
class Claim:
    """What one claimed transfer sends (read under the lock, sent after commit)."""

    share_id: int
    session_id: int
    contract_id: int
    amount: int
    currency: str
    destination: str
    key: str
    source_payment_id: int | None
    source_charge_id: str | None


def _claim(share_id: int) -> Claim | None:
    """Take a due share for one transfer; what to send, or None. Commits.

    Under the contract's lock: of two jobs at once, one claims it and the other
    finds it `transferring`.
    """
    share, contract = _locked(share_id)
    account = db.session.scalar(
        select(ConnectedAccount).where(ConnectedAccount.user_id == share.coach_id)
    )
    if (
        share.status not in TRANSFERABLE
        or share.next_attempt_at > clock.now()
        or account is None
        or not account.ready
        or has_open_dispute(contract.id)
    ):
        db.session.rollback()
        return None
    refunded = given_back(contract)
    if share.transfer_amount is None:
        # Fixed now: every later try of this share sends the same request.
        share.transfer_amount = share.amount - refund_cut(share.amount, refunded,
                                                          contract.total_amount)
    if refunded >= contract.total_amount or share.transfer_amount <= 0:
        move(share, ShareStatus.CANCELLED)
        audit("payout.share_cancelled", share, actor_label="system",
              after={"refunded": refunded})
        db.session.commit()
        return None
    move(share, ShareStatus.TRANSFERRING)
    share.attempts += 1
    key_parts: list[object] = [share.session_id] + ([f"r{share.refusals}"] if share.refusals
                                                   else [])
    claim = Claim(
        share_id=share.id,
        session_id=share.session_id,
        contract_id=contract.id,
        amount=share.transfer_amount,
        currency=share.currency,
        destination=account.stripe_account_id,
        key=stripe_api.idempotency_key("transfer-session", *key_parts),
        source_payment_id=share.source_payment_id,
        source_charge_id=share.source_charge_id,
    )
    audit("payout.transfer_started", share, actor_label="system",
          after={"attempt": share.attempts, "amount": share.transfer_amount})
    db.session.commit()
    return claim


def _source(claim: Claim) -> tuple[int | None, str | None]:
    """The payment and charge that fund this transfer (asks Stripe for an unknown charge).

    The contract's oldest paying Stripe payment whose charge still has room for it
    (a plan has several); none for a contract paid offline: the transfer then comes
    from the platform's balance.
    """
    if claim.source_charge_id:
        return claim.source_payment_id, claim.source_charge_id
    payments = db.session.scalars(
        select(Payment)
        .where(Payment.contract_id == claim.contract_id, Payment.void_reason.is_(None),
               Payment.status.in_(PAID_STATUSES), Payment.payment_intent_id.is_not(None))
        .order_by(Payment.id)
    )
    for payment in payments:
        used = db.session.scalar(
            select(func.coalesce(func.sum(SessionShare.transfer_amount), 0)).where(
                SessionShare.source_payment_id == payment.id,
                SessionShare.id != claim.share_id,
                SessionShare.status.in_((ShareStatus.TRANSFERRED, ShareStatus.TRANSFERRING)),
            )
        ) or 0
        if payment.amount - used < claim.amount:
            continue
        charge = payment.charge_id
        if charge is None:
            assert payment.payment_intent_id is not None
            latest = stripe_api.retrieve_payment_intent(payment.payment_intent_id).latest_charge
            charge = latest if isinstance(latest, str) else getattr(latest, "id", None)
        return payment.id, charge
    return None, None


def transfer_share(share_id: int) -> str:
    """Transfer one due share to its coach's account, once; what happened, in a word.

    Commits: the claim, the source found, then Stripe's answer.
    """
    claim = _claim(share_id)
    if claim is None:
        return "not_due"
    try:
        payment_id, charge_id = _source(claim)
        share = db.session.get(SessionShare, share_id)
        assert share is not None
        share.source_payment_id, share.source_charge_id = payment_id, charge_id
        db.session.commit()  # remember the source: the next try sends the very same request
        available_at = stripe_api.funds_available_at(charge_id) if charge_id else None
        if available_at is not None and available_at > clock.now():
            _wait_for_funds(share_id, available_at)
            return "waiting"
        params: stripe_api.TransferCreateParams = {
            "amount": claim.amount,
            "currency": claim.currency,
            "destination": claim.destination,
            "transfer_group": transfer_group(claim.contract_id),
            "metadata": {
                "coachpact_share_id": str(claim.share_id),
                "session_id": str(claim.session_id),
                "contract_id": str(claim.contract_id),
            },
        }
        if charge_id:
            params["source_transaction"] = charge_id
        made = stripe_api.create_transfer(params, claim.key)
    except stripe_api.PaymentProviderError as exc:
        db.session.rollback()
        if exc.unreached:
            _back_to_due(share_id, str(exc))
            return "unreached"
        _refused(share_id, str(exc), exc.code)
        return "refused"
    return _transferred(share_id, made.id)


def _transferred(share_id: int, transfer_id: str) -> str:
    share, contract = _locked(share_id)
    if share.status is ShareStatus.TRANSFERRED:
        db.session.rollback()  # another job got the same transfer back for the same key
        return "already_transferred"
    if share.status is not ShareStatus.TRANSFERRING:
        # Made due again by the stuck-claim sweep meanwhile: the transfer exists all the same.
        move(share, ShareStatus.TRANSFERRING)
    move(share, ShareStatus.TRANSFERRED)
    share.stripe_transfer_id = transfer_id
    share.transferred_at = clock.now()
    share.last_error = None
    audit("payout.transferred", share, actor_label="stripe",
          after={"amount": share.transfer_amount, "transfer": transfer_id})
    # Here, where the share becomes transferred once, so a second job tells no one twice.
    amount = format_money(share.transfer_amount or share.amount, share.currency)
    held = share.amount - (share.transfer_amount or share.amount)
    notify(share.coach,
           f"{amount} for your session of "
           f"{format_local(share.session.starts_at, share.coach.timezone, '%-d %b')} on "
           f"“{contract.title}” is on its way to your bank account. Stripe pays it out on "
           "your account's payout schedule."
           + (f" A refund on the contract kept back {format_money(held, share.currency)}."
              if held else ""),
           link=url_for("payouts.index"),
           subject=f"Coachpact: {amount} for “{contract.title}” is on its way")
    db.session.commit()
    return "transferred"


def _back_to_due(share_id: int, error: str) -> None:
    """Stripe was not reached: the same request, same key, a minute later."""
    share, _ = _locked(share_id)
    if share.status is ShareStatus.TRANSFERRING:
        move(share, ShareStatus.DUE)
        share.next_attempt_at = clock.now() + UNREACHED_WAIT
        share.last_error = error[:500]
    db.session.commit()


def _wait_for_funds(share_id: int, available_at: datetime) -> None:
    """The student's money is still pending at Stripe: due again when it is available
    (no refusal: nothing was asked, the key stays)."""
    share, _ = _locked(share_id)
    if share.status is ShareStatus.TRANSFERRING:
        move(share, ShareStatus.DUE)
        share.next_attempt_at = available_at
        share.last_error = (f"Waiting for the student's payment to become available at "
                            f"Stripe ({available_at:%Y-%m-%d %H:%M} UTC).")
        audit("payout.transfer_waiting", share, actor_label="stripe",
              after={"available_at": available_at.isoformat()})
    db.session.commit()


def _refused(share_id: int, message: str, code: str | None) -> None:
    share, _ = _locked(share_id)
    if share.status is ShareStatus.TRANSFERRING:
        move(share, ShareStatus.FAILED)
        if code != "idempotency_key_in_use":
            # A refusal made nothing: the next try may (and must) use a new key. A key
            # seen with other parameters proves nothing, so it stays for an admin to see.
            share.refusals += 1
        share.next_attempt_at = clock.now() + retry_delay(max(share.refusals, 1), code)
        share.last_error = (message if not code else f"{message} ({code})")[:500]
        audit("payout.transfer_failed", share, actor_label="stripe",
              after={"error": share.last_error, "attempt": share.attempts})
    db.session.commit()


def retry_now(share_id: int, admin: User) -> SessionShare:
    """An admin's "retry now" for a failed transfer: due at once (its key rule unchanged).

    Flushes; the caller commits. Refuses (LookupError) a share that has not failed.
    """
    share, _ = _locked(share_id)
    if share.status is not ShareStatus.FAILED:
        raise LookupError(f"share {share_id} is {share.status.value}, not failed")
    share.next_attempt_at = clock.now()
    audit("payout.retry_now", share, actor=admin, after={"attempts": share.attempts})
    return share


def unstick() -> int:
    """Shares claimed long ago whose job died: due again (their key finds any transfer made)."""
    stuck = list(db.session.scalars(
        select(SessionShare.id).where(
            SessionShare.status == ShareStatus.TRANSFERRING,
            SessionShare.updated_at <= clock.now() - STUCK_AFTER,
        )
    ))
    for share_id in stuck:
        _back_to_due(share_id, "the transfer's job was lost; tried again")
    return len(stuck)


# --- refunds after (or before) transfers ------------------------------------------------


@dataclass(frozen=True)
class Reversal:
    share_id: int
    transfer_id: str
    amount: int
    target: int  # what reversed + lost should reach with this reversal
    refusals: int = 0  # short-balance refusals so far: each moves the key on


def owed_back(share: SessionShare, refunded: int, total: int) -> int:
    """What a transferred share still has to give back for `refunded` of `total`."""
    cut = refund_cut(share.amount, refunded, total)
    sent_less = share.amount - (share.transfer_amount or share.amount)
    return max(cut - sent_less - share.reversed_amount - share.lost_amount, 0)


def refunded_contract_ids() -> list[int]:
    """Contracts with succeeded refunds and shares that refunds may still touch."""
    return list(db.session.scalars(
        select(SessionShare.contract_id)
        .where(
            exists().where(Refund.contract_id == SessionShare.contract_id,
                           Refund.status == RefundStatus.SUCCEEDED)
            | exists().where(Dispute.contract_id == SessionShare.contract_id,
                             Dispute.status == DISPUTE_LOST),
            (SessionShare.status.in_((ShareStatus.HELD, ShareStatus.DUE, ShareStatus.FAILED)))
            | (
                (SessionShare.status == ShareStatus.TRANSFERRED)
                & (SessionShare.reversed_amount + SessionShare.lost_amount
                   < SessionShare.transfer_amount)
            ),
        )
        .group_by(SessionShare.contract_id)
    ))


def apply_refunds(contract_id: int) -> list[str]:
    """Bring the contract's shares in line with its refunds; an outcome per reversal. Commits.

    Shares not sent yet are cancelled on a full refund (the others shrink at their
    claim); transferred shares are reversed, outside any lock.
    """
    contract = lock_contract(contract_id)
    if contract is None:
        db.session.rollback()
        return []
    refunded = given_back(contract)
    reversals = []
    for share in db.session.scalars(
        select(SessionShare).where(SessionShare.contract_id == contract_id)
        .order_by(SessionShare.number)
    ):
        cut = refund_cut(share.amount, refunded, contract.total_amount)
        if share.status in (ShareStatus.HELD, ShareStatus.DUE, ShareStatus.FAILED):
            if cut >= share.amount:
                move(share, ShareStatus.CANCELLED)
                audit("payout.share_cancelled", share, actor_label="system",
                      after={"refunded": refunded})
        elif share.status is ShareStatus.TRANSFERRED and share.stripe_transfer_id:
            owed = owed_back(share, refunded, contract.total_amount)
            waiting = (share.reversal_next_attempt_at is not None
                       and share.reversal_next_attempt_at > clock.now())
            if owed and not waiting:
                reversals.append(Reversal(share.id, share.stripe_transfer_id, owed,
                                          share.reversed_amount + share.lost_amount + owed,
                                          share.reversal_refusals))
    db.session.commit()
    return [reverse(item) for item in reversals]


def reverse(item: Reversal) -> str:
    """Ask Stripe for one reversal, outside any lock; apply its answer once. Commits."""
    try:
        made = stripe_api.create_transfer_reversal(
            item.transfer_id,
            {"amount": item.amount, "metadata": {"coachpact_share_id": str(item.share_id)}},
            stripe_api.idempotency_key("reversal", item.share_id, item.target,
                                       *([f"r{item.refusals}"] if item.refusals else [])),
        )
    except stripe_api.PaymentProviderError as exc:
        if exc.unreached:
            log.warning("reversal of share %s not reached: %s", item.share_id, exc)
            return "unreached"  # the next run asks again, same key
        if exc.code == SHORT_BALANCE:
            return _short(item, str(exc))
        return _lost(item, str(exc), exc.code)
    share, contract = _locked(item.share_id)
    if share.reversed_amount + share.lost_amount < item.target:
        share.reversed_amount = item.target - share.lost_amount
        db.session.add(TransferReversal(share_id=share.id, stripe_reversal_id=made.id,
                                        amount=item.amount, currency=share.currency))
        audit("payout.reversed", share, actor_label="stripe",
              after={"amount": item.amount, "reversal": made.id,
                     "reversed": share.reversed_amount})
        amount = format_money(item.amount, share.currency)
        notify(share.coach,
               f"A refund to the student of “{contract.title}” took back {amount} of what you "
               f"were paid for your session of "
               f"{format_local(share.session.starts_at, share.coach.timezone, '%-d %b')}. "
               "Stripe has taken it from your account already; there is nothing for you to do.",
               link=url_for("payouts.index"),
               subject=f"Coachpact: a refund took back {amount} for “{contract.title}”")
    _stop_waiting(share)
    db.session.commit()
    return "reversed"


def _stop_waiting(share: SessionShare) -> None:
    share.reversal_waiting_since = None
    share.reversal_next_attempt_at = None
    share.reversal_error = None


def _short(item: Reversal, message: str) -> str:
    """A reversal the coach's available balance cannot cover yet: asked again later with a
    new key, the coach told once; REVERSAL_GIVE_UP after the first refusal, a loss."""
    share, contract = _locked(item.share_id)
    if share.reversed_amount + share.lost_amount >= item.target:
        db.session.rollback()
        return "known"
    now = clock.now()
    reason = f"{message} ({SHORT_BALANCE})"
    if share.reversal_waiting_since is not None and \
            now - share.reversal_waiting_since >= REVERSAL_GIVE_UP:
        db.session.rollback()
        return _lost(item, message, SHORT_BALANCE)
    share.reversal_refusals += 1
    first = share.reversal_waiting_since is None
    if first:
        share.reversal_waiting_since = now
    share.reversal_next_attempt_at = now + retry_delay(share.reversal_refusals, SHORT_BALANCE)
    share.reversal_error = reason[:500]
    audit("payout.reversal_waiting", share, actor_label="stripe",
          after={"amount": item.amount, "refusals": share.reversal_refusals,
                 "next_attempt_at": share.reversal_next_attempt_at.isoformat()})
    if first:
        amount = format_money(item.amount, share.currency)
        notify(share.coach,
               f"A refund on “{contract.title}” takes back {amount} of what you were paid, "
               "and your Stripe balance cannot cover it yet. Please keep at least "
               f"{amount} available in your Stripe balance: we will try again over the "
               "next days.",
               link=url_for("payouts.index"),
               subject=f"Coachpact: a reversal of {amount} for “{contract.title}” is waiting")
    db.session.commit()
    return "waiting"


def _lost(item: Reversal, message: str, code: str | None) -> str:
    """A refused reversal: the platform bears it, written once, never asked again."""
    share, contract = _locked(item.share_id)
    missing = item.target - share.reversed_amount - share.lost_amount
    if missing <= 0:
        db.session.rollback()
        return "known"
    share.lost_amount += missing
    _stop_waiting(share)
    loss = PlatformLoss(share_id=share.id, contract_id=contract.id, amount=missing,
                        currency=share.currency,
                        reason=(message if not code else f"{message} ({code})")[:500],
                        details={"transfer": item.transfer_id, "target": item.target})
    db.session.add(loss)
    db.session.flush()
    audit("payout.reversal_failed", loss, actor_label="stripe",
          after={"share_id": share.id, "amount": missing, "reason": loss.reason})
    db.session.commit()
    log.error("reversal of share %s refused (%s): the platform bears %s %s",
              share.id, message, missing, share.currency)
    return "lost"


# --- jobs ------------------------------------------------------------------------------


def settle_refunds() -> None:
    """Claims whose job died are due again; what refunds take back is taken back."""
    unstick()
    for contract_id in refunded_contract_ids():
        apply_refunds(contract_id)


@jobs.task()
def transfer_share_job(share_id: int) -> None:
    transfer_share(share_id)


@jobs.periodic(jobs.every_minute())
def transfer_due_shares() -> None:
    """Reverse what refunds take back, then enqueue a transfer for every share due now.

    The claim makes doubles harmless. Without Stripe (PAYMENTS_MODE=manual) nothing moves.
    """
    if current_app.config["PAYMENTS_MODE"] == "manual":
        return
    settle_refunds()
    for share_id in due_share_ids():
        jobs.enqueue(transfer_share_job, share_id)
