"""Benchmark the admin console's pages at a million payments.

    .venv/bin/python bench/admin.py [--payments 1000000] [--repeat 20] [--warmup 2]
                                    [--export-rows 100000] [--deep-page 500]
                                    [--pg-url URL] [--keep] [--smoke]

Makes a scratch PostgreSQL database on `--pg-url`, builds the schema with the
migrations (`flask --app app db upgrade`) and bulk-loads, in SQL
(`INSERT ... SELECT generate_series`), two years of history: users (coaches and
students), proposals, contracts, `--payments` payments in usd, eur, gbp and jpy
(mostly succeeded; failed, refunded, partially refunded, disputed, expired,
canceled, pending, a few held for review), webhook events and audit entries;
then VACUUM ANALYZE, and the daily figures of the closed days rolled up with
the app's own command (`flask --app app admin rollup`), as in production.

Then it creates an admin (`flask --app app create-admin`), serves the app with
gunicorn (2 sync workers, `bench/admin_wsgi.py`: it counts the SQL statements
of each request in an `X-Statements` header), logs in through `/auth/login`
and times each page, as that admin, `--repeat` times after `--warmup`
untimed rounds (the pages take turns, round by round): the dashboard (30 days
and a year), the payments list (page 1 and a deep page, unfiltered and filtered
by status + currency + range), searches by email and by Stripe id, a payment,
a contract, the event log; then the CSV export of about `--export-rows` rows,
downloaded in full while the gunicorn workers' memory is sampled. Every answer
is checked against the database (the rows shown, the figures).

Prints p50 / p99 and statements per page; for each download, the memory of the
worker that served it just before and at its peak; then one line (one line;
split here):

    admin: worst p50 <ms> ms p99 <ms> ms over <n> pages | csv <rows> rows <s> s
           peak <MB> MB | search p50 <ms> ms | OK

and exits non-zero (FAIL in place of OK) if a page did not answer 200 with what
the database says it should show, or the CSV's row count is wrong. The scratch
database is dropped at the end (kept with `--keep`), gunicorn stopped by its pid.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import math
import re
import secrets
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.kit import (  # noqa: E402
    BenchError,
    Database,
    Gunicorn,
    MemorySampler,
    add_options,
    app_env,
    flask,
    fmt_ms,
    login,
    met,
    percentile,
    postgres_database,
    rss_kb,
    verdict,
)

PAGE_SIZE = 50  # the payments list's page size (admin.payment_queries.PAGE_SIZE)
ADMIN_EMAIL = "admin@bench.test"
EXPORT_RUNS = 3
YEARS_DAYS = 730  # the history's span

# The goals, reported (not enforced).
GOAL_P50_MS = 100.0
GOAL_P99_MS = 250.0
GOAL_PEAK_MB = 100.0

CURRENCY_SHARES = (("usd", 0.50), ("eur", 0.25), ("gbp", 0.15), ("jpy", 0.10))
PAID_ONCE = ("succeeded", "partially_refunded", "refunded")


# --- the history, in SQL --------------------------------------------------------------------

# One row per contract: its parties, terms, when it was made and what became of its payment.
# `two`: the contract's first attempt failed and a second one followed (`delay` later).
PLAN = """
CREATE TEMP TABLE plan AS
WITH r AS (
    SELECT k, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
           random() AS r5, random() AS r6, random() AS r7, random() AS r8
    FROM generate_series(1, %(contracts)s) AS k
), t AS (
    SELECT k,
        1 + floor(%(coaches)s * r4 * r4)::int AS coach_id,  -- a few busy coaches, a long tail
        %(coaches)s + 1 + floor(%(students)s * r5)::int AS student_id,
        CASE WHEN r1 < 0.50 THEN 'usd' WHEN r1 < 0.75 THEN 'eur'
             WHEN r1 < 0.90 THEN 'gbp' ELSE 'jpy' END AS currency,
        (ARRAY[2, 3, 4, 6])[1 + floor(r2 * 4)::int] AS sessions,
        CASE WHEN r3 < 0.5 THEN 45 ELSE 60 END AS minutes,
        2 + floor(r3 * 3)::int AS price_step,
        %(first)s::timestamp + (k - 1 + r6 * 0.9) * %(step)s * interval '1 second' AS c0,
        CASE WHEN r7 < 0.80 THEN 'succeeded' WHEN r7 < 0.84 THEN 'refunded'
             WHEN r7 < 0.87 THEN 'partially_refunded' WHEN r7 < 0.874 THEN 'disputed'
             WHEN r7 < 0.92 THEN 'failed' WHEN r7 < 0.945 THEN 'pending'
             WHEN r7 < 0.9451 THEN 'held' WHEN r7 < 0.965 THEN 'expired'
             WHEN r7 < 0.975 THEN 'canceled' WHEN r7 < 0.98 THEN 'processing'
             ELSE 'succeeded' END AS drawn,
        (mod(k, 4) = 0 AND k / 4 <= %(repeats)s) AS two,
        (5 + floor(r8 * 235)::int) * interval '1 minute' AS delay
    FROM r
), u AS (
    SELECT t.*,
        (CASE currency WHEN 'usd' THEN 6000 WHEN 'eur' THEN 5500 WHEN 'gbp' THEN 4800
                       ELSE 7000 END) * price_step / 2 AS price,
        -- An open Checkout session or a bank debit does not stay open for days.
        CASE WHEN c0 >= %(now)s::timestamp - interval '3 days' THEN drawn
             WHEN drawn = 'pending' THEN 'expired'
             WHEN drawn = 'processing' THEN 'succeeded'
             ELSE drawn END AS outcome
    FROM t
)
SELECT u.*, price * sessions AS total,
    least(price * sessions, greatest(round(price * sessions * 0.05)::int,
                                     CASE currency WHEN 'jpy' THEN 1 ELSE 100 END)) AS fee,
    c0 + interval '2 minutes' + CASE WHEN two THEN delay ELSE interval '0' END AS paid_created
FROM u
"""

# Names with accents and without: the search must find "Zoë" and "Inès" by "zoe" and "ines".
FIRST_NAMES = ("Ana", "Kenji", "Priya", "Maya", "Tomás", "Léa", "Omar", "Inès", "Jonas", "Sara",
               "Luca", "Amira", "Noah", "Chloé", "Diego", "Yuki", "Emma", "Ravi", "Zoë", "Felix")
LAST_NAMES = ("Silva", "Tanaka", "Patel", "Novák", "Berg", "Martin", "Haddad", "Costa",
              "Weber", "Lind", "Rossi", "Khan", "Moreau", "Dubois", "García", "Sato",
              "Fischer", "Iyer", "Olsen", "Keller")
TITLES = ("Interview sprint", "Pitch practice", "Writing clinic", "Running form check",
          "Spanish conversation", "Career review", "Portfolio critique", "Négociation drills")

USERS = """
INSERT INTO users (id, email, name, search_text, password_hash, role, timezone, created_at)
SELECT g, email, name, search_name || ' ' || email, '!bench: no password', role, timezone,
    created_at
FROM (
    SELECT g,
        CASE WHEN g <= %(coaches)s THEN 'coach' || g ELSE 'student' || (g - %(coaches)s) END
            || '@bench.test' AS email,
        (%(first_names)s::text[])[1 + mod(g, 20)] || ' '
            || (%(last_names)s::text[])[1 + mod(g / 20, 20)] || ' ' || g AS name,
        -- The same names folded as the app folds them (`database.text.fold`).
        (%(first_folded)s::text[])[1 + mod(g, 20)] || ' '
            || (%(last_folded)s::text[])[1 + mod(g / 20, 20)] || ' ' || g AS search_name,
        CASE WHEN g <= %(coaches)s THEN 'coach' ELSE 'student' END AS role,
        (ARRAY['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'Europe/London'])
            [1 + mod(g, 5)] AS timezone,
        %(first)s::timestamp - interval '30 days' + g * interval '1 second' AS created_at
    FROM generate_series(1, %(coaches)s + %(students)s) AS g
) AS u
"""

PROPOSALS = """
INSERT INTO proposals (id, coach_id, student_id, title, description, session_count,
                       minutes_per_session, price_per_session, currency, status, created_at,
                       responded_at)
SELECT k, coach_id, student_id, (%(titles)s::text[])[1 + mod(k, 8)] || ' #' || k,
    sessions || ' sessions of ' || minutes || ' minutes.',
    sessions, minutes, price, currency, 'accepted', c0 - interval '1 day', c0
FROM plan
"""

CONTRACTS = """
INSERT INTO contracts (id, proposal_id, coach_id, student_id, title, search_text, description,
                       session_count, minutes_per_session, price_per_session, currency,
                       total_amount, platform_fee, coach_earning, status, payment_status,
                       paid_at, created_at, updated_at, refund_full_window_days)
SELECT k, k, plan.coach_id, plan.student_id, p.title,
    (%(titles_folded)s::text[])[1 + mod(k, 8)] || ' #' || k, p.description, sessions, minutes,
    price, plan.currency, total, fee, total - fee,
    CASE WHEN outcome IN ('succeeded', 'partially_refunded')
              THEN CASE WHEN c0 < %(now)s::timestamp - interval '45 days'
                        THEN 'completed' ELSE 'active' END
         WHEN outcome IN ('refunded', 'disputed') THEN outcome
         WHEN outcome = 'canceled' THEN 'cancelled'
         ELSE 'pending' END,
    CASE outcome WHEN 'succeeded' THEN 'paid' WHEN 'partially_refunded' THEN outcome
                 WHEN 'refunded' THEN outcome WHEN 'disputed' THEN outcome
                 WHEN 'failed' THEN 'failed' ELSE 'pending' END,
    CASE WHEN outcome IN ('succeeded', 'partially_refunded', 'refunded', 'disputed')
         THEN paid_created + interval '1 minute' END,
    c0,
    CASE WHEN outcome IN ('refunded', 'partially_refunded')
              THEN least(paid_created + interval '5 days', %(now)s::timestamp)
         WHEN outcome = 'disputed' THEN least(paid_created + interval '12 days',
                                               %(now)s::timestamp)
         ELSE paid_created + interval '1 minute' END,
    14
FROM plan JOIN proposals AS p ON p.id = plan.k
"""

# Every attempt, numbered in the order they were made (ids follow created_at, as in
# production): a contract's failed first attempt where it had two, then its last one.
PAYMENTS = """
INSERT INTO payments (id, contract_id, checkout_session_id, payment_intent_id, charge_id,
                      customer_id, amount, currency, status, amount_refunded,
                      payment_method_type, checkout_url, expires_at, failure_reason,
                      review_reason, paid_at, metadata, created_at, updated_at)
SELECT id, k, 'cs_bench_' || id || '_' || tail,
    CASE WHEN status IN ('pending', 'expired', 'canceled') AND NOT held THEN NULL
         ELSE 'pi_bench_' || id END,
    CASE WHEN status IN ('succeeded', 'partially_refunded', 'refunded') OR held
         THEN 'ch_bench_' || id END,
    'cus_bench_' || student_id, total, currency, status,
    CASE status WHEN 'refunded' THEN total WHEN 'partially_refunded' THEN total / 3 ELSE 0 END,
    CASE WHEN status = 'processing'
         THEN CASE currency WHEN 'eur' THEN 'sepa_debit' ELSE 'us_bank_account' END
         ELSE 'card' END,
    'https://checkout.stripe.com/c/pay/cs_bench_' || id || '_' || tail,
    created + interval '24 hours',
    CASE WHEN status = 'failed' THEN
        (ARRAY['Your card was declined.', 'Your card has insufficient funds.',
               'Your card has expired.', 'Your card''s security code is incorrect.',
               'The bank debit did not go through.'])[1 + mod(k * 7 + attempt, 5)] END,
    CASE WHEN held THEN 'amount ' || (total / 2) || ' ≠ ' || total END,
    CASE WHEN status IN ('succeeded', 'partially_refunded', 'refunded')
         THEN created + interval '1 minute' END,
    json_build_object('contract_id', k::text, 'attempt', attempt::text),
    created,
    CASE WHEN status IN ('refunded', 'partially_refunded')
              THEN least(created + interval '5 days', %(now)s::timestamp)
         WHEN status = 'pending' THEN created
         ELSE created + interval '1 minute' END
FROM (
    SELECT row_number() OVER (ORDER BY created, k, attempt) AS id, a.*
    FROM (
        SELECT k, student_id, total, currency, 1 AS attempt,
            c0 + interval '2 minutes' AS created,
            CASE WHEN two THEN 'failed' WHEN outcome = 'disputed' THEN 'succeeded'
                 WHEN outcome = 'held' THEN 'pending' ELSE outcome END AS status,
            outcome = 'held' AND NOT two AS held
        FROM plan
        UNION ALL
        SELECT k, student_id, total, currency, 2, paid_created,
            CASE outcome WHEN 'disputed' THEN 'succeeded' WHEN 'held' THEN 'pending'
                         ELSE outcome END,
            outcome = 'held'
        FROM plan WHERE two
    ) AS a
) AS b,
-- Eight letters at the end of a session id, as random as Stripe's: the reference a search
-- finds by (an id ending in digits would read as another kind of query).
LATERAL (SELECT translate(substr(md5(b.id::text), 1, 8), '0123456789', 'ghijklmnop') AS tail)
    AS t
"""

# One event for every fifth payment, received as the payment happened: almost all
# processed, a few given up on (failed), the newest few still waiting.
EVENTS = """
INSERT INTO webhook_events (id, stripe_event_id, type, payload, object_id, payment_intent_id,
                            status, outcome, attempts, last_error, next_attempt_at,
                            received_at, processed_at)
SELECT id / 5, 'evt_bench_' || id, type,
    json_build_object('id', 'evt_bench_' || id, 'object', 'event', 'type', type,
                      'livemode', false,
                      'data', json_build_object('object', json_build_object(
                          'id', object_id, 'payment_intent', payment_intent_id)))::text,
    object_id, payment_intent_id,
    CASE WHEN mod(id / 5, 40000) = 7 THEN 'failed' ELSE 'processed' END,
    CASE WHEN mod(id / 5, 40000) = 7 THEN NULL ELSE outcome END,
    CASE WHEN mod(id / 5, 40000) = 7 THEN 79 ELSE 1 END,
    CASE WHEN mod(id / 5, 40000) = 7
         THEN 'RetryLater: ' || type || ' for a payment intent we do not know yet' END,
    created_at + interval '30 seconds',
    created_at + interval '30 seconds',
    CASE WHEN mod(id / 5, 40000) = 7 THEN NULL ELSE created_at + interval '31 seconds' END
FROM (
    SELECT id, created_at, payment_intent_id,
        CASE WHEN status = 'failed' THEN 'payment_intent.payment_failed'
             WHEN status IN ('refunded', 'partially_refunded') THEN 'charge.refunded'
             WHEN status IN ('expired', 'canceled') THEN 'checkout.session.expired'
             ELSE 'checkout.session.completed' END AS type,
        CASE WHEN status = 'failed' THEN payment_intent_id
             WHEN status IN ('refunded', 'partially_refunded') THEN charge_id
             ELSE checkout_session_id END AS object_id,
        CASE WHEN status = 'failed' THEN 'failed'
             WHEN status IN ('refunded', 'partially_refunded') THEN 'refunded'
             WHEN status IN ('expired', 'canceled') THEN 'expired'
             ELSE 'fulfilled' END AS outcome
    FROM payments WHERE mod(id, 5) = 0
) AS e
"""

EVENTS_WAITING = """
UPDATE webhook_events SET status = 'received', outcome = NULL, attempts = 0,
    processed_at = NULL
WHERE id > (SELECT max(id) - 3 FROM webhook_events)
"""

# One entry per payment, as the trail would have it: the contract paid, the attempt
# failed, or the checkout started.
AUDIT = """
INSERT INTO audit_entries (id, actor_id, actor_label, action, object_type, object_id, before,
                           after, created_at)
SELECT id, NULL,
    CASE WHEN status IN ('pending', 'expired', 'canceled') THEN 'system'
         ELSE 'stripe:webhook' END,
    CASE WHEN status IN ('succeeded', 'partially_refunded', 'refunded') THEN 'contract.paid'
         WHEN status = 'failed' THEN 'payment.failed'
         ELSE 'payment.checkout_started' END,
    CASE WHEN status IN ('succeeded', 'partially_refunded', 'refunded') THEN 'contracts'
         ELSE 'payments' END,
    CASE WHEN status IN ('succeeded', 'partially_refunded', 'refunded') THEN contract_id
         ELSE id END,
    CASE WHEN status IN ('succeeded', 'partially_refunded', 'refunded')
         THEN json_build_object('payment_status', 'pending') END,
    CASE WHEN status IN ('succeeded', 'partially_refunded', 'refunded')
              THEN json_build_object('payment_status', 'paid')
         WHEN status = 'failed' THEN json_build_object('failure_reason', failure_reason)
         ELSE json_build_object('checkout_session_id', checkout_session_id) END,
    created_at + interval '1 minute'
FROM payments
"""

# One invoice for every payment that counts, numbered per year of its payment, as
# `payments.invoices` would have issued them; then each year's counter.
INVOICES = """
INSERT INTO invoices (id, number, year, sequence, payment_id, contract_id, student_id,
                      coach_id, amount, currency, platform_fee, coach_earning, student_name,
                      student_email, coach_name, coach_email, contract_title, session_count,
                      minutes_per_session, issued_at)
SELECT row_number() OVER (ORDER BY pm.paid_at, pm.id),
    'CP-' || pm.year || '-' || lpad(pm.sequence::text, 6, '0'), pm.year, pm.sequence,
    pm.id, c.id, c.student_id, c.coach_id, pm.amount, pm.currency, c.platform_fee,
    c.coach_earning, s.name, s.email, co.name, co.email, c.title, c.session_count,
    c.minutes_per_session, pm.paid_at
FROM (
    SELECT id, contract_id, amount, currency, paid_at,
        extract(year FROM paid_at)::int AS year,
        row_number() OVER (PARTITION BY extract(year FROM paid_at) ORDER BY paid_at, id)
            AS sequence
    FROM payments
    WHERE status IN ('succeeded', 'partially_refunded', 'refunded') AND paid_at IS NOT NULL
) AS pm
JOIN contracts AS c ON c.id = pm.contract_id
JOIN users AS s ON s.id = c.student_id
JOIN users AS co ON co.id = c.coach_id
"""

INVOICE_COUNTERS = """
INSERT INTO invoice_counters (year, last_number)
SELECT year, max(sequence) FROM invoices GROUP BY year
"""

SEQUENCES = ("users", "proposals", "contracts", "payments", "invoices", "webhook_events",
             "audit_entries")

# --- every column the models have, whatever the statements above name ------------------------

INSERT_INTO = re.compile(r"^\s*INSERT INTO (\w+) \(([^)]*)\)\s*(SELECT\b.*)$", re.S)


def model_tables() -> dict[str, Any]:
    """The app's tables, as its models declare them."""
    import accounts.models  # noqa: F401 (each import declares its tables)
    import audit.models  # noqa: F401
    import contracts.models  # noqa: F401
    import payments.models  # noqa: F401
    import payouts.models  # noqa: F401
    from extensions import db

    return dict(db.metadata.tables)


def with_model_defaults(statement: str, params: dict[str, Any] | None
                        ) -> tuple[str, dict[str, Any] | None]:
    """`INSERT INTO t (columns) SELECT ...` completed with every column of the model's
    table it does not name, each given the model's own default: a column added to a model
    later gets its default here rather than breaking the load. A required column without
    a default stops the run, naming it (the loader must then say what it holds)."""
    from sqlalchemy.dialects import postgresql

    found = INSERT_INTO.match(statement)
    if found is None:
        return statement, params
    table_name, named, select_part = found.groups()
    table = model_tables()[table_name]
    given = {name.strip() for name in named.split(",")}
    dialect = postgresql.dialect()
    extra_names: list[str] = []
    extra_values: list[str] = []
    values = dict(params or {})
    for column in table.columns:
        if column.name in given or column.server_default is not None:
            continue
        default = column.default
        if default is None:
            if column.nullable or column.primary_key:
                continue
            raise BenchError(f"{table_name}.{column.name} is required and has no default: "
                             "the loader must give it a value")
        value = default.arg(None) if default.is_callable else default.arg
        processor = column.type.bind_processor(dialect)
        key = f"default_{column.name}"
        values[key] = processor(value) if processor else value
        extra_names.append(column.name)
        extra_values.append(f"CAST(%({key})s AS {column.type.compile(dialect=dialect)})")
    if not extra_names:
        return statement, params
    completed = (
        f"INSERT INTO {table_name} ({named.strip()}, {', '.join(extra_names)})\n"
        f"SELECT given.*, {', '.join(extra_values)} FROM (\n{select_part}) AS given"
    )
    return completed, values



@dataclass
class Sizes:
    payments: int
    contracts: int
    coaches: int
    students: int

    @classmethod
    def for_payments(cls, payments: int) -> Sizes:
        contracts = math.ceil(payments * 0.8)  # a quarter of them had a second attempt
        return cls(
            payments=payments,
            contracts=contracts,
            coaches=max(10, round(payments * 0.002)),
            students=max(50, round(payments * 0.05)),
        )


def load_history(db: Database, sizes: Sizes, now: datetime) -> dict[str, int]:
    """Bulk-load the history; returns the rows per table."""
    from psycopg import sql

    from database.text import fold

    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    first = naive_now - timedelta(days=YEARS_DAYS)
    # Contracts are spread evenly from two years ago until five hours ago (the last
    # second attempts come up to four hours after their contract).
    span = (naive_now - timedelta(hours=5) - first).total_seconds()
    params = {
        "contracts": sizes.contracts,
        "repeats": sizes.payments - sizes.contracts,
        "coaches": sizes.coaches,
        "students": sizes.students,
        "first": first,
        "now": naive_now,
        "step": span / sizes.contracts,
        "first_names": list(FIRST_NAMES),
        "last_names": list(LAST_NAMES),
        "first_folded": [fold(name) for name in FIRST_NAMES],
        "last_folded": [fold(name) for name in LAST_NAMES],
        "titles": list(TITLES),
        "titles_folded": [fold(title) for title in TITLES],
    }
    steps: list[tuple[str, str, dict[str, Any] | None]] = [
        ("plan", PLAN, params),
        ("users", USERS, params),
        ("proposals", PROPOSALS, params),
        ("contracts", CONTRACTS, params),
        ("payments", PAYMENTS, params),
        ("invoices", INVOICES, None),
        ("invoice counters", INVOICE_COUNTERS, None),
        ("webhook_events", EVENTS, None),
        ("waiting events", EVENTS_WAITING, None),
        ("audit_entries", AUDIT, None),
    ]
    counts: dict[str, int] = {}
    with db.connect(autocommit=False) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SELECT setseed(0.2026)")
        # The indexes the migrations made (those that back no constraint), dropped while the
        # rows go in and made again after, from their own definitions: building an index
        # once is many times faster than keeping it up row by row (the trigram ones above all).
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (list(SEQUENCES),),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        for label, statement, values in steps:
            started = time.perf_counter()
            statement, values = with_model_defaults(statement, values)
            cursor = conn.execute(statement, values)
            if label in SEQUENCES:
                counts[label] = cursor.rowcount
            seconds = time.perf_counter() - started
            print(f"    {label:<15} {cursor.rowcount:>9} rows {seconds:6.1f} s", flush=True)
        started = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition)
        print(f"    {len(indexes)} indexes made again {time.perf_counter() - started:6.1f} s",
              flush=True)
        for table in SEQUENCES:
            conn.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence({name}, 'id'), "
                        "(SELECT coalesce(max(id), 1) FROM {table}))").format(
                    name=sql.Literal(table), table=sql.Identifier(table))
            )
        conn.commit()
    started = time.perf_counter()
    with db.connect() as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"    vacuum analyze {time.perf_counter() - started:17.1f} s", flush=True)
    return counts


def check_counts(db: Database, sizes: Sizes, counts: dict[str, int]) -> None:
    """Every table holds the rows the sizes call for; BenchError names what does not."""
    with db.connect() as conn:
        paid = conn.execute(
            "SELECT count(*) FROM payments WHERE status = ANY(%s) AND paid_at IS NOT NULL",
            (list(PAID_ONCE),),
        ).fetchone()[0]
    want = {
        "users": sizes.coaches + sizes.students,
        "proposals": sizes.contracts,
        "contracts": sizes.contracts,
        "payments": sizes.payments,
        "invoices": paid,
        "webhook_events": sizes.payments // 5,
        "audit_entries": sizes.payments,
    }
    wrong = [f"{table}: {counts.get(table)} rows, not {rows}" for table, rows in want.items()
             if counts.get(table) != rows]
    if wrong or not paid:
        raise BenchError("the load is not what the sizes call for: " + "; ".join(
            wrong or ["no payment counts"]))


# --- what the pages should show, from the database ------------------------------------------


@dataclass
class Expected:
    """Targets for the pages, and the database's own answers for them."""

    today: date
    student_email: str
    student_payment_ids: list[int]  # the first page of their payments
    stripe_payment_id: int
    payment_id: int  # a payment with a timeline
    payment_session_id: str
    contract_id: int
    contract_payment_ids: list[int]
    newest_event_id: int
    held: int
    open_disputes: int
    gross: dict[tuple[int, str], int]  # (days, currency) → paid-once amount
    filter_status: str = "succeeded"
    filter_currency: str = "eur"
    export_currency: str = "usd"
    export_start: date | None = None
    export_rows: int = 0


def _ids(conn: Any, where: str, params: tuple[Any, ...], offset: int = 0) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM payments WHERE " + where  # noqa: S608 (fixed clauses)
        + " ORDER BY created_at DESC, id DESC OFFSET %s LIMIT %s",
        (*params, offset, PAGE_SIZE),
    )
    return [row[0] for row in rows]


def expected_from(db: Database, today: date, export_rows: int) -> Expected:
    with db.connect() as conn:
        # A student of a recent contract, and the first page of their payments.
        email, student_id = conn.execute(
            "SELECT u.email, u.id FROM contracts c JOIN users u ON u.id = c.student_id "
            "ORDER BY c.id DESC LIMIT 1"
        ).fetchone()
        student_ids = _ids(
            conn, "contract_id IN (SELECT id FROM contracts WHERE student_id = %s)",
            (student_id,),
        )
        count = conn.execute("SELECT count(*) FROM payments").fetchone()[0]
        stripe_id = conn.execute(
            "SELECT id FROM payments WHERE payment_intent_id IS NOT NULL "
            "ORDER BY abs(id - %s) LIMIT 1", (min(123456, count * 6 // 10),)
        ).fetchone()[0]
        # A refunded payment with its events and audit entries, half-way through.
        payment_id, session_id = conn.execute(
            "SELECT id, checkout_session_id FROM payments WHERE status = 'refunded' "
            "AND mod(id, 5) = 0 ORDER BY abs(id - %s) LIMIT 1", (count // 2,)
        ).fetchone()
        # A contract with two attempts.
        contract_id = conn.execute(
            "SELECT contract_id FROM payments GROUP BY contract_id HAVING count(*) = 2 "
            "ORDER BY contract_id DESC LIMIT 1"
        ).fetchone()[0]
        contract_payments = [row[0] for row in conn.execute(
            "SELECT id FROM payments WHERE contract_id = %s", (contract_id,))]
        newest_event = conn.execute("SELECT max(id) FROM webhook_events").fetchone()[0]
        held = conn.execute(
            "SELECT count(*) FROM payments WHERE review_reason IS NOT NULL "
            "AND review_resolution IS NULL"
        ).fetchone()[0]
        disputes = conn.execute(
            "SELECT count(*) FROM contracts WHERE status = 'disputed'"
        ).fetchone()[0]
        gross: dict[tuple[int, str], int] = {}
        for days in (30, 365):
            start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time())
            for currency, amount in conn.execute(
                "SELECT currency, sum(amount) FROM payments WHERE status = ANY(%s) "
                "AND created_at >= %s GROUP BY currency", (list(PAID_ONCE), start),
            ):
                gross[(days, currency)] = int(amount)
        # The export: the newest `export_rows` usd payments, rounded out to whole days.
        start_at = conn.execute(
            "SELECT created_at FROM payments WHERE currency = 'usd' "
            "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1", (export_rows - 1,)
        ).fetchone()
        export_start = (start_at[0] if start_at else conn.execute(
            "SELECT min(created_at) FROM payments").fetchone()[0]).date()
        rows = conn.execute(
            "SELECT count(*) FROM payments WHERE currency = 'usd' AND created_at >= %s",
            (datetime.combine(export_start, datetime.min.time()),),
        ).fetchone()[0]
    return Expected(
        today=today, student_email=email, student_payment_ids=student_ids,
        stripe_payment_id=stripe_id, payment_id=payment_id, payment_session_id=session_id,
        contract_id=contract_id, contract_payment_ids=contract_payments,
        newest_event_id=newest_event, held=held, open_disputes=disputes, gross=gross,
        export_start=export_start, export_rows=rows,
    )


@dataclass
class SearchTarget:
    """One search of the header's box: what a customer would quote, and the row
    (`payment-<id>`, `contract-<id>`, `person-<id>`) the database says it must find."""

    name: str
    q: str
    must_show: list[str]


def search_targets(db: Database) -> list[SearchTarget]:
    from database.text import fold

    with db.connect() as conn:
        # A student of a recent contract with an accented first name, and their newest payment.
        student_id, name, email = conn.execute(
            "SELECT u.id, u.name, u.email FROM contracts c JOIN users u ON u.id = c.student_id "
            "WHERE u.name LIKE 'Zoë %%' ORDER BY c.id DESC LIMIT 1"
        ).fetchone()
        newest = conn.execute(
            "SELECT p.id FROM payments p JOIN contracts c ON c.id = p.contract_id "
            "WHERE c.student_id = %s ORDER BY p.created_at DESC, p.id DESC LIMIT 1",
            (student_id,),
        ).fetchone()[0]
        contract_id, title = conn.execute(
            "SELECT id, title FROM contracts WHERE title LIKE 'Négociation %%' "
            "ORDER BY abs(id - (SELECT max(id) / 3 FROM contracts)) LIMIT 1"
        ).fetchone()
        middle = conn.execute("SELECT max(id) / 2 FROM payments").fetchone()[0]
        payment_id, session_id, intent_id, charge_id, customer_id = conn.execute(
            "SELECT id, checkout_session_id, payment_intent_id, charge_id, customer_id "
            "FROM payments WHERE charge_id IS NOT NULL ORDER BY abs(id - %s) LIMIT 1",
            (middle,),
        ).fetchone()
        number, invoiced = conn.execute(
            "SELECT number, payment_id FROM invoices ORDER BY abs(id - "
            "(SELECT max(id) * 2 / 3 FROM invoices)) LIMIT 1"
        ).fetchone()
        event_id, event_payment = conn.execute(
            "SELECT e.stripe_event_id, p.id FROM webhook_events e JOIN payments p "
            "ON p.checkout_session_id = e.object_id ORDER BY abs(e.id - %s) LIMIT 1",
            (middle // 5,),
        ).fetchone()
    local = email.split("@")[0]
    return [
        SearchTarget("search part of email", f"{local}@bench",
                     [f'id="person-{student_id}"', f'id="payment-{newest}"']),
        SearchTarget("search name no accents", fold(name),
                     [f'id="person-{student_id}"', f'id="payment-{newest}"']),
        SearchTarget("search title", fold(title), [f'id="contract-{contract_id}"']),
        SearchTarget("search reference", session_id[-8:], [f'id="payment-{payment_id}"']),
        SearchTarget("search invoice number", number, [f'id="payment-{invoiced}"']),
        SearchTarget("search cs_ id", session_id, [f'id="payment-{payment_id}"']),
        SearchTarget("search pi_ id", intent_id, [f'id="payment-{payment_id}"']),
        SearchTarget("search ch_ id", charge_id, [f'id="payment-{payment_id}"']),
        # The bench names each customer after its student: cus_bench_<student id>.
        SearchTarget("search cus_ id", customer_id,
                     [f'id="person-{int(customer_id.rsplit("_", 1)[1])}"']),
        SearchTarget("search evt_ id", event_id, [f'id="payment-{event_payment}"']),
    ]


def list_filter_where(expected: Expected, start: date) -> tuple[str, tuple[Any, ...]]:
    return (
        "status = %s AND currency = %s AND created_at >= %s",
        (expected.filter_status, expected.filter_currency,
         datetime.combine(start, datetime.min.time())),
    )


# --- the client -----------------------------------------------------------------------------

PAYMENT_ROW = re.compile(r'data-payment-id="(\d+)"')
NEXT_PAGE = re.compile(r'<a[^>]*id="next-page"[^>]*href="([^"]+)"|'
                       r'<a[^>]*href="([^"]+)"[^>]*id="next-page"', re.S)
EVENT_ROW = re.compile(r'<tr id="event-(\d+)"')


def admin_login(session: Any, base: str, password: str) -> None:
    login(session, ADMIN_EMAIL, password, base, timeout=30, allow_redirects=False)
    # The console answers 404 to anyone but an admin; to an admin, /admin/ is a redirect.
    check = session.get(f"{base}/admin/", timeout=60, allow_redirects=False)
    if check.status_code not in (302, 303):
        raise BenchError(f"logged in, but /admin/ answered {check.status_code}")


def next_link(body: str) -> str | None:
    found = NEXT_PAGE.search(body)
    if found is None:
        return None
    return html.unescape(found.group(1) or found.group(2))


@dataclass
class Page:
    name: str
    path: str  # with its query string
    check: Callable[[str], str | None]  # what is wrong with the body, or None
    latencies_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: int | None = None  # rows the page shows, where that means something
    size: int = 0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def fetch(session: Any, base: str, page: Page, timed: bool) -> None:
    started = time.perf_counter()
    try:
        answer = session.get(urljoin(base, page.path), timeout=120, allow_redirects=False)
        body, status = answer.text, answer.status_code
    except Exception as exc:  # noqa: BLE001 (any failure is reported as the page's problem)
        page.problems.append(f"{type(exc).__name__}: {exc}")
        return
    elapsed = (time.perf_counter() - started) * 1000
    problem = f"answered {status}" if status != 200 else page.check(body)
    if problem and len(page.problems) < 3:
        page.problems.append(problem)
    if not timed:
        return
    page.latencies_ms.append(elapsed)
    page.size = len(answer.content)
    if "X-Statements" in answer.headers:
        page.statements.append(int(answer.headers["X-Statements"]))
        page.sql_ms.append(float(answer.headers.get("X-SQL-ms", "nan")))


def payment_rows_check(expected_ids: list[int], want_next: bool | None = None
                       ) -> Callable[[str], str | None]:
    def check(body: str) -> str | None:
        shown = [int(i) for i in PAYMENT_ROW.findall(body)]
        if shown != expected_ids:
            return (f"shows {len(shown)} rows {shown[:3]}..., the database says "
                    f"{len(expected_ids)} {expected_ids[:3]}...")
        if want_next is not None and (next_link(body) is not None) != want_next:
            return "the next-page link is " + ("missing" if want_next else "there")
        return None
    return check


def contains_check(*needles: str) -> Callable[[str], str | None]:
    def check(body: str) -> str | None:
        missing = [n for n in needles if n not in body]
        return f"does not show {missing}" if missing else None
    return check


def dashboard_check(expected: Expected, days: int) -> Callable[[str], str | None]:
    from contracts.money import format_money

    def value(body: str, element_id: str) -> str | None:
        found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', body)
        return html.unescape(found.group(1)).strip() if found else None

    def check(body: str) -> str | None:
        wrong = []
        for (span, currency), amount in expected.gross.items():
            if span != days:
                continue
            shown, want = value(body, f"gross-{currency}"), format_money(amount, currency)
            if shown != want:
                wrong.append(f"gross {currency} {shown!r} (the database: {want!r})")
        for element_id, want_count in (("held-for-review", expected.held),
                                       ("open-disputes", expected.open_disputes)):
            shown = value(body, element_id)
            if shown != str(want_count):
                wrong.append(f"{element_id} {shown!r} (the database: {want_count})")
        if 'id="range-error"' in body:
            wrong.append("a range error")
        return "; ".join(wrong) or None
    return check


def walk(session: Any, base: str, first: str, pages: int) -> tuple[str, int]:
    """Follow the "Next page" link from `first` until page `pages` (or the last);
    (that page's path, its number)."""
    path, number = first, 1
    while number < pages:
        answer = session.get(urljoin(base, path), timeout=120, allow_redirects=False)
        if answer.status_code != 200:
            raise BenchError(f"page {number} of {first} answered {answer.status_code}")
        link = next_link(answer.text)
        if link is None:
            break
        path, number = link, number + 1
    return path, number


def build_pages(session: Any, base: str, db: Database, expected: Expected, deep: int
                ) -> list[Page]:
    today = expected.today
    year_start = today - timedelta(days=364)
    filt = (f"status={expected.filter_status}&currency={expected.filter_currency}"
            f"&start={year_start.isoformat()}&end={today.isoformat()}")
    pages = [
        Page("dashboard 30d", "/admin/payments?range=30d", dashboard_check(expected, 30)),
        Page("dashboard year",
             f"/admin/payments?range=custom&start={year_start.isoformat()}"
             f"&end={today.isoformat()}", dashboard_check(expected, 365)),
    ]
    started = time.perf_counter()
    walked = []
    with db.connect() as conn:
        for label, first, where, params in (
            ("list", "/admin/payments/list", "true", ()),
            ("list filtered", f"/admin/payments/list?{filt}",
             *list_filter_where(expected, year_start)),
        ):
            page_one = _ids(conn, where, params)
            pages.append(Page(f"{label} p1", first, payment_rows_check(page_one, True)))
            path, number = walk(session, base, first, deep)
            walked.append(f"{label} to page {number}")
            ids = _ids(conn, where, params, offset=(number - 1) * PAGE_SIZE)
            pages.append(Page(f"{label} p{number}", path, payment_rows_check(ids)))
    print(f"  followed the next-page links untimed ({', '.join(walked)}) in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    stripe_id = f"pi_bench_{expected.stripe_payment_id}"
    pages += [
        Page("search email", f"/admin/payments/list?q={expected.student_email}",
             payment_rows_check(expected.student_payment_ids)),
        Page("search stripe id", f"/admin/payments/list?q={stripe_id}",
             payment_rows_check([expected.stripe_payment_id], False)),
        Page("payment detail", f"/admin/payments/{expected.payment_id}",
             contains_check(expected.payment_session_id, 'id="timeline"')),
        Page("contract detail", f"/admin/contracts/{expected.contract_id}",
             contains_check(*(f'id="payment-{i}"' for i in expected.contract_payment_ids))),
        Page("event log", "/admin/events",
             contains_check(f'id="event-{expected.newest_event_id}"', 'id="next-page"')),
    ]
    pages += [
        Page(target.name, "/admin/search?" + urlencode({"q": target.q}),
             contains_check(*target.must_show))
        for target in search_targets(db)
    ]
    return pages


def count_rows(page: Page, body: str) -> int | None:
    if "/admin/payments/list" in page.path:
        return len(PAYMENT_ROW.findall(body))
    if page.path.startswith("/admin/events"):
        return len(EVENT_ROW.findall(body))
    if page.path.startswith("/admin/contracts/"):
        return body.count('<tr id="payment-')
    return None


# --- the export -----------------------------------------------------------------------------


@dataclass
class Download:
    """One download of the export, and the memory of the worker that served it."""

    worker: int  # its pid (0: unknown)
    idle_kb: int  # its RSS just before the download
    peak_kb: int  # its highest RSS during the download


@dataclass
class Export:
    rows: int = -1
    seconds: list[float] = field(default_factory=list)  # of the complete downloads
    downloads: list[Download] = field(default_factory=list)
    samples: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan

    @property
    def highest(self) -> Download:
        """The download that took its worker's memory highest."""
        return max(self.downloads, key=lambda d: d.peak_kb, default=Download(0, 0, 0))

    @property
    def peak_kb(self) -> int:
        return self.highest.peak_kb

    @property
    def idle_kb(self) -> int:
        return self.highest.idle_kb


def run_export(session: Any, server: Gunicorn, expected: Expected, runs: int) -> Export:
    assert expected.export_start is not None
    path = (f"/admin/payments/export.csv?currency={expected.export_currency}"
            f"&start={expected.export_start.isoformat()}&end={expected.today.isoformat()}")
    result = Export()
    for number in range(1, runs + 1):
        chunks: list[bytes] = []
        worker = 0
        idle = {pid: rss_kb(pid) for pid in server.worker_pids()}  # just before
        with MemorySampler(server.worker_pids) as sampler:
            started = time.perf_counter()
            try:
                with session.get(urljoin(server.base, path), stream=True, timeout=600,
                                 allow_redirects=False) as answer:
                    status = answer.status_code
                    worker = int(answer.headers.get("X-Worker-Pid", 0))
                    for chunk in answer.iter_content(chunk_size=65536):
                        chunks.append(chunk)
            except Exception as exc:  # noqa: BLE001 (reported as the export's problem)
                problem: str | None = f"{type(exc).__name__}: {exc}"
            else:
                problem = None if status == 200 else f"answered {status}"
            elapsed = time.perf_counter() - started
        if worker not in sampler.peaks:  # no header: the worker whose memory grew most
            worker = max(sampler.peaks, key=lambda pid: sampler.peaks[pid] - idle.get(pid, 0),
                         default=0)
        download = Download(worker, idle.get(worker, 0), sampler.peaks.get(worker, 0))
        result.downloads.append(download)
        result.samples += sampler.samples
        # What arrived, even when the download broke off: how far it got.
        text = b"".join(chunks).decode("utf-8", errors="replace")
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        records = list(reader)
        result.rows = len(records)
        print(f"    download {number}: {elapsed:.2f} s, {result.rows} rows; worker {worker}: "
              f"{download.idle_kb / 1024:.0f} MB idle just before, peak "
              f"{download.peak_kb / 1024:.0f} MB during "
              f"({(download.peak_kb - download.idle_kb) / 1024:+.0f} MB)", flush=True)
        if problem:
            result.problems.append(f"{problem} (after {result.rows} rows)")
            break
        result.seconds.append(elapsed)
        if header is None or header[0] != "payment_id":
            result.problems.append(f"the CSV starts with {header!r}")
        if result.rows != expected.export_rows:
            result.problems.append(f"{result.rows} rows, the database says "
                                   f"{expected.export_rows}")
        elif records and any(r[5] != expected.export_currency for r in records):
            result.problems.append("rows in another currency")
    return result


# --- the run --------------------------------------------------------------------------------


def bench(args: argparse.Namespace, db: Database, workdir: Path) -> tuple[list[Page], Export]:
    sizes = Sizes.for_payments(args.payments)
    # bench/admin_wsgi.py counts each request's statements.
    env = app_env(db.url, BENCH_COUNT_STATEMENTS="1")

    started = time.perf_counter()
    flask(env, "db", "upgrade")
    print(f"  migrated in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"  loading: {sizes.payments} payments over {YEARS_DAYS} days, {sizes.contracts} "
          f"contracts, {sizes.coaches} coaches, {sizes.students} students", flush=True)
    started = time.perf_counter()
    counts = load_history(db, sizes, datetime.now(UTC))
    loaded = time.perf_counter() - started
    print(f"  loaded in {loaded:.1f} s: " + ", ".join(f"{n} {t}" for t, n in counts.items()),
          flush=True)
    check_counts(db, sizes, counts)

    started = time.perf_counter()
    since = (datetime.now(UTC) - timedelta(days=YEARS_DAYS)).date()
    out = flask(env, "admin", "rollup", "--since", since.isoformat())
    print(f"  rollup in {time.perf_counter() - started:.1f} s: {out.splitlines()[-1]}",
          flush=True)
    password = secrets.token_urlsafe(18)
    flask(env, "create-admin", "--email", ADMIN_EMAIL, "--name", "Bench Admin",
          "--password", password)

    today = datetime.now(UTC).date()
    expected = expected_from(db, today, args.export_rows)

    import requests

    server = Gunicorn("bench.admin_wsgi:app", env, workdir / "gunicorn.log")
    try:
        server.wait_healthy()
        session = requests.Session()
        admin_login(session, server.base, password)
        pages = build_pages(session, server.base, db, expected, args.deep_page)
        print(f"  timing {len(pages)} pages: {args.warmup} untimed rounds, then {args.repeat} "
              "timed ones (the pages take turns)", flush=True)
        for round_number in range(args.warmup + args.repeat):
            for page in pages:
                fetch(session, server.base, page, timed=round_number >= args.warmup)
        for page in pages:  # what each page shows, once more
            answer = session.get(urljoin(server.base, page.path), timeout=120)
            page.rows = count_rows(page, answer.text)
        print(f"  export: {expected.export_currency} from {expected.export_start} to "
              f"{expected.today}, {expected.export_rows} rows in the database; {EXPORT_RUNS} "
              "downloads", flush=True)
        export = run_export(session, server, expected, EXPORT_RUNS)
        server.report_problems("gunicorn")
    finally:
        server.stop()
    return pages, export


def report(pages: list[Page], export: Export) -> bool:
    print("\n  page                         p50 ms   p99 ms  stmts   sql ms(p50)  rows    KB"
          "  problems")
    ok = True
    for page in pages:
        statements = sorted(set(page.statements))
        shown = ",".join(str(s) for s in statements) or "-"
        sql = statistics.median(page.sql_ms) if page.sql_ms else math.nan
        rows = "-" if page.rows is None else str(page.rows)
        print(f"  {page.name:<26} {fmt_ms(page.percentile(50)):>8} {fmt_ms(page.percentile(99)):>8}"
              f" {shown:>6} {sql:12.1f} {rows:>5} {page.size / 1024:5.0f}  "
              f"{'; '.join(page.problems) or 'ok'}")
        ok = ok and not page.problems and bool(page.latencies_ms)
    by_name = {page.name: page for page in pages}

    def stmts(name: str) -> str:
        page = by_name.get(name)
        return ",".join(str(s) for s in sorted(set(page.statements))) if page else "?"

    lists = [p for p in pages if "/admin/payments/list" in p.path]
    print("\n  statements vs rows shown (the payments list): " + "; ".join(
        f"{p.name}: {stmts(p.name)} for {p.rows} rows" for p in lists))
    constant = len({s for p in lists for s in p.statements}) == 1
    print(f"  statements per page constant across the list's pages: {'yes' if constant else 'NO'}")
    growth = (export.peak_kb - export.idle_kb) / 1024
    print(f"\n  export: {export.rows} rows, {', '.join(f'{s:.2f}' for s in export.seconds)} s "
          f"(median {export.median_s:.2f} s); the RSS of the worker that served it: "
          f"{export.idle_kb / 1024:.0f} MB idle just before, peak {export.peak_kb / 1024:.0f} MB"
          f" during (the export adds {growth:+.0f} MB; {export.samples} samples); "
          f"{'; '.join(export.problems) or 'ok'}")
    ok = ok and not export.problems and bool(export.seconds)
    worst50 = max((p.percentile(50) for p in pages), default=math.nan)
    worst99 = max((p.percentile(99) for p in pages), default=math.nan)
    slow = [p.name for p in pages
            if not (p.percentile(50) < GOAL_P50_MS and p.percentile(99) < GOAL_P99_MS)]
    print(f"\n  goals: every page p50 < {GOAL_P50_MS:.0f} ms and p99 < {GOAL_P99_MS:.0f} ms: "
          f"{met(not slow)}{' (not: ' + ', '.join(slow) + ')' if slow else ''}; statements "
          f"per page constant: {met(constant)}; export peak < {GOAL_PEAK_MB:.0f} MB: "
          f"{met(0 < export.peak_kb / 1024 < GOAL_PEAK_MB)} (its worker held "
          f"{export.idle_kb / 1024:.0f} MB idle)")
    searches = [p for p in pages if p.path.startswith("/admin/search")]
    search50 = max((p.percentile(50) for p in searches), default=math.nan)
    print(f"  the header's search box: worst p50 {fmt_ms(search50)} ms over {len(searches)} "
          f"kinds of query (goal < {GOAL_P50_MS:.0f} ms: {met(search50 < GOAL_P50_MS)})")
    print(f"admin: worst p50 {fmt_ms(worst50)} ms p99 {fmt_ms(worst99)} ms over {len(pages)} pages"
          f" | csv {export.rows} rows {export.median_s:.2f} s peak {export.peak_kb / 1024:.0f} MB"
          f" | search p50 {fmt_ms(search50)} ms | {verdict(ok)}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1_000_000,
                        help="payments to load (20000 makes a quick run)")
    add_options(parser, smoke="2000 payments, 2 rounds", rounds=True)
    parser.add_argument("--deep-page", type=int, default=500,
                        help="the deep page of the payments list (or its last page)")
    parser.add_argument("--export-rows", type=int, default=100_000,
                        help="about how many rows the CSV export should hold")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch database (its URL is printed) for inspection")
    args = parser.parse_args(argv)
    if args.smoke:
        args.payments, args.repeat, args.warmup = 2000, 2, 0
        args.export_rows, args.deep_page = 300, 3
    if args.payments < 1000 or args.repeat < 1 or args.warmup < 0 or args.deep_page < 2:
        parser.error("--payments ≥ 1000, --repeat ≥ 1, --warmup ≥ 0, --deep-page ≥ 2")

    try:
        db = postgres_database(args.pg_url, "coachpact_bench_admin")
    except BenchError as exc:
        print(f"admin: skipped ({exc})")
        return 1
    print(f"== admin console, scratch database {db.name} ==", flush=True)
    ok = False
    try:
        with tempfile.TemporaryDirectory(prefix="coachpact-bench-admin-") as tmp:
            pages, export = bench(args, db, Path(tmp))
            ok = report(pages, export)
    except Exception as exc:  # noqa: BLE001 (any failure ends the run with its summary line)
        if isinstance(exc, BenchError):
            print(f"  !!! failed: {exc}", flush=True)
        else:
            traceback.print_exc()
        print("admin: worst p50 nan ms p99 nan ms over 0 pages | csv 0 rows nan s peak 0 MB "
              "| search p50 nan ms | FAIL")
    finally:
        if args.keep:
            print(f"  kept the scratch database: {db.url}", flush=True)
        else:
            db.drop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
