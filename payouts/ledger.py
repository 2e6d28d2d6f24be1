"""Where each paid contract's money went, and the check that it all adds up.

For every paid contract, in integers of its currency (`payments.standing`):

    received + still to be paid + written off + taken twice (a dispute lost on money
                                                  refunded already: the platform's loss)
      = refunded + lost to disputes + transferred − reversed − lost (reversals refused)
        − reversals waiting (refused for the coach's short balance, asked again)
        + platform fee share + still to transfer (held, due, or not yet earned)
        + excess kept (paid beyond the total, not given back yet)

The coach's part of each session share is `amount − amount × returned ÷ total`
(the cut rounded up, `returned` being what went back of the price), recomputed from the
contract's own terms (`payments.standing.split`), never read back from the rows
being checked; the platform's fee share is what refunds leave of the fee, so it
absorbs the rounding. A share whose amount is not its split, or a reversal not
yet made, shows as a discrepancy, unless Stripe refused it for the coach's short
balance and it waits to be asked again: then it is a reversal waiting (what the
coach still owes back), not a loss.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, func, select

import clock
import jobs
from accounts.models import User
from contracts.models import Contract
from extensions import db
from payments.standing import Standing, refund_cut, standing_of, standings_of
from payouts.models import (
    UNSENT_STATUSES,
    LedgerCheckRun,
    PlatformLoss,
    SessionShare,
    ShareStatus,
)

log = logging.getLogger(__name__)

FIGURES = ("paid", "unpaid", "waived", "refunded", "disputes_lost", "transferred", "reversed",
           "lost", "waiting", "fee_share", "in_hold", "to_earn", "excess", "taken_twice")


@dataclass
class ContractMoney:
    """One paid contract's money, in minor units of its currency."""

    contract_id: int
    currency: str
    paid: int = 0
    unpaid: int = 0
    waived: int = 0
    refunded: int = 0
    disputes_lost: int = 0
    transferred: int = 0
    reversed: int = 0
    lost: int = 0
    waiting: int = 0  # reversals refused for a short balance, to be asked again
    fee_share: int = 0
    in_hold: int = 0  # delivered, not sent yet (held, due, failed, being sent)
    to_earn: int = 0  # sessions not delivered yet, net of refunds
    excess: int = 0  # paid beyond the total and not given back yet
    taken_twice: int = 0  # went back beyond what arrived (the platform's loss)
    problems: list[str] = field(default_factory=list)

    @property
    def still_to_transfer(self) -> int:
        return self.in_hold + self.to_earn

    @property
    def earned(self) -> int:
        """The coach's part of delivered sessions, net of refunds (what a refused
        reversal left with the coach is the platform's loss, not an earning)."""
        return self.transferred - self.reversed - self.lost - self.waiting + self.in_hold

    @property
    def off_by(self) -> int:
        return (self.paid + self.unpaid + self.waived + self.taken_twice) - (
            self.refunded + self.disputes_lost + self.transferred - self.reversed - self.lost
            - self.waiting + self.fee_share + self.still_to_transfer + self.excess
        )


def contract_money(contract: Contract, standing: Standing | None = None) -> ContractMoney:
    """Read the contract's money from its standing, shares and losses."""
    standing = standing or standing_of(contract)
    money = ContractMoney(contract.id, contract.currency)
    money.paid = standing.arrived
    money.unpaid = standing.still_to_pay
    money.waived = standing.waived
    money.refunded = standing.refunded
    money.disputes_lost = standing.lost
    money.excess = standing.excess_kept
    money.taken_twice = standing.taken_twice
    total, returned = contract.total_amount, standing.returned_of_price
    parts = standing.coach_parts
    cuts = [refund_cut(part, returned, total) for part in parts]
    money.fee_share = contract.platform_fee - (returned - sum(cuts))
    shares = db.session.scalars(
        select(SessionShare).where(SessionShare.contract_id == contract.id)
    ).all()
    numbers = set()
    for share in shares:
        numbers.add(share.number)
        if not 1 <= share.number <= len(parts) or share.amount != parts[share.number - 1]:
            money.problems.append(
                f"share {share.id} (session {share.session_id}) is {share.amount}, "
                f"its split is {parts[share.number - 1] if 1 <= share.number <= len(parts) else 0}"
            )
        if share.status is ShareStatus.TRANSFERRED:
            money.transferred += share.transfer_amount or 0
            money.reversed += share.reversed_amount
            money.lost += share.lost_amount
            if share.reversal_waiting:
                kept = (share.transfer_amount or 0) - share.reversed_amount - share.lost_amount
                coach_part = share.amount - refund_cut(share.amount, returned, total)
                money.waiting += max(kept - coach_part, 0)
        elif share.status in UNSENT_STATUSES:
            money.in_hold += share.amount - refund_cut(share.amount, returned, total)
    money.to_earn = sum(
        part - cut
        for number, (part, cut) in enumerate(zip(parts, cuts, strict=True), 1)
        if number not in numbers
    )
    losses = db.session.scalar(
        select(func.coalesce(func.sum(PlatformLoss.amount), 0))
        .where(PlatformLoss.contract_id == contract.id)
    ) or 0
    if losses != money.lost:
        money.problems.append(f"platform losses recorded {losses}, shares say {money.lost}")
    if money.off_by:
        money.problems.append(
            f"paid {money.paid} + still to be paid {money.unpaid} + written off {money.waived}"
            f" + taken twice {money.taken_twice}"
            f" ≠ refunded {money.refunded} + disputes lost {money.disputes_lost}"
            f" + transferred {money.transferred} − reversed {money.reversed} − lost {money.lost}"
            f" − reversals waiting {money.waiting}"
            f" + platform fee {money.fee_share} + still to transfer {money.still_to_transfer}"
            f" + excess {money.excess} (off by {money.off_by})"
        )
    return money


def paid_contracts() -> list[Contract]:
    return list(db.session.scalars(
        select(Contract).where(Contract.paid_at.is_not(None)).order_by(Contract.id)
    ))


def check() -> list[str]:
    """Every discrepancy over all paid contracts, one line each (none when all add up)."""
    lines = []
    contracts = paid_contracts()
    standings = standings_of(contracts)
    for contract in contracts:
        money = contract_money(contract, standings[contract.id])
        lines += [f"contract {contract.id} ({contract.currency}): {p}" for p in money.problems]
    return lines


def totals_by_currency(rows: list[ContractMoney]) -> dict[str, ContractMoney]:
    """The rows added up per currency (never across currencies)."""
    totals: dict[str, ContractMoney] = {}
    for row in rows:
        total = totals.setdefault(row.currency, ContractMoney(0, row.currency))
        for name in FIGURES:
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return totals


# --- the coach's page -----------------------------------------------------------------


@dataclass(frozen=True)
class CoachPayouts:
    contracts: list[tuple[Contract, ContractMoney]]
    totals: dict[str, ContractMoney]
    transfers: list[SessionShare]


def coach_payouts(coach: User) -> CoachPayouts:
    """Per paid contract and per currency: earned, transferred, in hold, to earn, reversed;
    and each transfer, newest first."""
    contracts = [c for c in db.session.scalars(
        select(Contract).where(Contract.coach_id == coach.id, Contract.paid_at.is_not(None))
        .order_by(Contract.paid_at.desc(), Contract.id.desc())
    )]
    standings = standings_of(contracts)
    rows = [(contract, contract_money(contract, standings[contract.id])) for contract in contracts]
    transfers = list(db.session.scalars(
        select(SessionShare)
        .where(SessionShare.coach_id == coach.id,
               SessionShare.status.in_((ShareStatus.TRANSFERRED, ShareStatus.FAILED)))
        .order_by(SessionShare.transferred_at.desc().nulls_first(), SessionShare.id.desc())
    ))
    return CoachPayouts(rows, totals_by_currency([money for _, money in rows]), transfers)


# --- the check's runs ---------------------------------------------------------------------

CHECK_EVERY_MINUTES = 15
KEEP_RUNS = timedelta(days=30)


def record_check() -> LedgerCheckRun:
    """Run the check and keep its result for the admin pages; older runs than KEEP_RUNS go.
    Logs every discrepancy (an error each) or that the ledger adds up. Flushes."""
    started = time.perf_counter()
    lines = check()
    run = LedgerCheckRun(
        checked_at=clock.now(), lines=lines, seconds=round(time.perf_counter() - started, 3)
    )
    db.session.add(run)
    db.session.execute(
        delete(LedgerCheckRun).where(LedgerCheckRun.checked_at < run.checked_at - KEEP_RUNS)
    )
    db.session.flush()
    for line in lines:
        log.error("payout ledger: %s", line)
    if not lines:
        log.info("payout ledger: every paid contract adds up")
    return run


def latest_check() -> LedgerCheckRun | None:
    """The last run of the check, or None before the first."""
    return db.session.scalar(
        select(LedgerCheckRun).order_by(LedgerCheckRun.checked_at.desc(), LedgerCheckRun.id.desc())
        .limit(1)
    )


@jobs.periodic(jobs.every_minutes(CHECK_EVERY_MINUTES))
def periodic_ledger_check() -> None:
    record_check()
    db.session.commit()


@jobs.task()
def ledger_check_job() -> None:
    """The check at once (an admin's "Check now")."""
    record_check()
    db.session.commit()
