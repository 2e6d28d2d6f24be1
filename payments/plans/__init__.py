"""Payment plans: the offers a contract allows and their rows (`payments.plan_terms`, part
of the money core), charging instalments off-session (`charges`), the student's cards
and hand payments (`cards`), and an admin's operations (`admin`). The names below are
what the pages, commands and jobs use."""

from payments.plan_terms import (
    CHARGE_AT,
    PlanOption,
    PlanRefused,
    deposit_of,
    options,
    plan_of,
    refusal,
    start_plan,
)
from payments.plans.admin import (
    cancel_plan,
    cancel_plan_refusal,
    manual_instalment_refusal,
    move_instalment,
    pause,
    record_manual_instalment,
    resume,
)
from payments.plans.cards import instalment_for_student, saved_cards, use_card
from payments.plans.charges import (
    card_of,
    charge_due_instalments,
    charge_instalment,
    charge_instalment_job,
    due_instalment_ids,
    intent_failed,
    is_instalment_charge,
    record_intent_paid,
    settle_intent,
)

__all__ = [
    "CHARGE_AT",
    "PlanOption",
    "PlanRefused",
    "cancel_plan",
    "cancel_plan_refusal",
    "card_of",
    "charge_due_instalments",
    "charge_instalment",
    "charge_instalment_job",
    "deposit_of",
    "due_instalment_ids",
    "instalment_for_student",
    "intent_failed",
    "is_instalment_charge",
    "manual_instalment_refusal",
    "move_instalment",
    "options",
    "pause",
    "plan_of",
    "record_intent_paid",
    "record_manual_instalment",
    "refusal",
    "resume",
    "saved_cards",
    "settle_intent",
    "start_plan",
    "use_card",
]
