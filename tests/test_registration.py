"""Registration is explicit: create_app's package inits register every event type and job.

The checks that matter run create_app in a fresh interpreter: in this process the
other tests have imported most modules already, which would hide a job or a
handler that only an import made by a test registers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# README, "The event pipeline", step 2: the types a handler applies.
PIPELINE_TYPES = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.payment_failed",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
}
# README, "Payment plans" (a redelivered payment_intent.succeeded counts once) and
# "Coach payouts" (account.updated keeps the connected account in step).
OTHER_TYPES = {"payment_intent.succeeded", "account.updated"}

# The periodic jobs the README names, with how many times a day each runs.
PERIODIC_JOBS = {
    # The event pipeline, step 4: events still received and refunds not sent yet...
    "payments.inbox.processing.sweep_inbox": 1440,
    "payments.refunds.sync.sweep_unsent_refunds": 1440,
    # ...and mails still pending, every minute; the reconcile every hour.
    "notifications.tasks.sweep_outbox": 1440,
    "payments.inbox.reconcile.reconcile_hourly": 24,
    # Proposals expire (a job every minute).
    "contracts.expiry.expire_proposals": 1440,
    # Plans: a job every minute charges the instalments due.
    "payments.plans.charges.charge_due_instalments": 1440,
    # Payouts: shares every minute, transfers every minute, the ledger check every 15 minutes.
    "payouts.shares.make_session_shares": 1440,
    "payouts.transfers.transfer_due_shares": 1440,
    "payouts.ledger.periodic_ledger_check": 96,
    # The admin dashboard's daily_payment_stats, kept by a nightly job.
    "admin.analytics.nightly_rollup": 1,
}
# The jobs those enqueue, one per row id.
ROW_JOBS = {
    "payments.inbox.processing.process_event_job",
    "payments.refunds.sync.send_refund_job",
    "payments.plans.charges.charge_instalment_job",
    "notifications.tasks.send_mail",
    "payouts.transfers.transfer_share_job",
}


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter at the project's root; its standard output."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> dict:
    """What a fresh process's create_app registered: event types, jobs, periodic runs a day."""
    folder = tmp_path_factory.mktemp("registration")
    settings = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'app.sqlite3'}",
        "JOBS_SQLITE_PATH": str(folder / "jobs.sqlite3"),
        "REDIS_URL": "",
        "JOBS_IMMEDIATE": True,
    }
    output = run_python(
        f"""
        import json
        from collections import Counter
        from datetime import datetime, timedelta

        from app import create_app
        import jobs
        from payments.inbox import table as events

        create_app({settings!r})
        huey = jobs.huey
        # What a consumer's scheduler would start, minute by minute, over one UTC day.
        runs = Counter(
            huey._registry.task_to_string(type(task))
            for minute in range(24 * 60)
            for task in huey.read_periodic(datetime(2025, 3, 4) + timedelta(minutes=minute))
        )
        print(json.dumps({{
            "types": sorted(events.handled_types()),
            "jobs": sorted(huey._registry._registry),
            "runs_a_day": runs,
        }}))
        """
    )
    return json.loads(output.strip().splitlines()[-1])


def test_every_event_type_of_the_pipeline_has_a_handler(registered):
    missing = (PIPELINE_TYPES | OTHER_TYPES) - set(registered["types"])
    assert not missing, f"no handler registered for {sorted(missing)}"


# Connected accounts' events: Stripe sends them only to a Connect endpoint.
CONNECT_TYPES = {"account.updated"}


def going_live_subscriptions() -> dict[str, set[str]]:
    """README, "Going live": the event types each webhook endpoint subscribes to, by path
    (`.expired` after `checkout.session.completed` is `checkout.session.expired`)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Going live: webhooks", 1)[1].split("\n## ", 1)[0]
    found: dict[str, set[str]] = {}
    for path, events in re.findall(r"^\| `https://<host>(\S+)` \|[^|]*\|([^|]*)\|", section,
                                   re.MULTILINE):
        types, prefix = set(), ""
        for name in re.findall(r"`([a-z_.]+)`", events):
            if name.startswith("."):
                name = prefix + name
            prefix = name.rsplit(".", 1)[0]
            types.add(name)
        found[path] = types
    return found


def test_going_live_subscribes_each_endpoint_to_the_types_it_handles(registered):
    handled = set(registered["types"])
    assert going_live_subscriptions() == {
        "/webhooks/stripe": handled - CONNECT_TYPES,
        "/webhooks/stripe/connect": handled & CONNECT_TYPES,
    }


def test_one_source_names_the_connected_accounts_reconcile_lists(app):
    from payments.inbox import reconcile
    from payouts.accounts import connected_account_ids

    with pytest.raises(ValueError, match="connected accounts"):
        reconcile.register_connected_accounts(lambda: ["acct_other"])
    reconcile.register_connected_accounts(connected_account_ids)  # the same again: nothing


def test_every_periodic_job_the_readme_names_runs_as_often_as_it_says(registered):
    assert {
        name: registered["runs_a_day"].get(name) for name in PERIODIC_JOBS
    } == PERIODIC_JOBS


def test_the_jobs_the_sweeps_enqueue_are_registered(registered):
    missing = ROW_JOBS - set(registered["jobs"])
    assert not missing, f"not on the queue: {sorted(missing)}"


def test_a_second_handler_for_a_type_is_refused(app):
    from payments.inbox import table as events

    original = events.handler_for("charge.refunded")
    assert original is not None

    def another(obj: dict) -> str:
        return "other"

    with pytest.raises(ValueError, match="charge.refunded"):
        events.register("charge.refunded", another)
    assert events.handler_for("charge.refunded") is original
    # The same function again changes nothing: create_app runs once per test here.
    events.register("charge.refunded", original)
    assert events.handler_for("charge.refunded") is original


def test_create_app_twice_in_one_process_registers_the_same_handlers(app):
    from app import create_app
    from payments.inbox import table as events

    before = {kind: events.handler_for(kind) for kind in events.handled_types()}
    create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "JOBS_IMMEDIATE": True,
        }
    )
    assert {kind: events.handler_for(kind) for kind in events.handled_types()} == before


def test_audit_and_notifications_do_not_import_accounts():
    output = run_python(
        """
        import importlib
        import pkgutil
        import sys

        for name in ("audit", "notifications"):
            package = importlib.import_module(name)
            for module in pkgutil.iter_modules(package.__path__, name + "."):
                importlib.import_module(module.name)
        print(sorted(m for m in sys.modules if m == "accounts" or m.startswith("accounts.")))
        """
    )
    assert output.strip().splitlines()[-1] == "[]"


def test_app_keeps_no_import_for_its_side_effects():
    assert "noqa: F401" not in (ROOT / "app.py").read_text()


def test_every_models_module_is_imported_for_the_migrations():
    from app import MODEL_MODULES

    found = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in ROOT.glob("*/*.py")
        if re.fullmatch(r"(\w+_)?models\.py", path.name)
        and path.parts[len(ROOT.parts)] not in {"sandbox", "tests", "bench"}
    }
    assert found == set(MODEL_MODULES)
