"""Benchmark the Stripe webhook under gunicorn against two floors, then the consumers' drain.

    .venv/bin/python bench/webhook.py [--events N] [--rounds R] [--drain-events D]
                                      [--concurrency 16] [--databases sqlite,postgresql]
                                      [--profile]

For each database: build the app's schema with the migrations and set up
pending contracts, each with a pending Checkout payment, for both phases.

Ack: serve the app (`bench/app_wsgi.py`), floor A (`bench/floor.py`: signature
check with `construct_event`, one insert, one update, one transaction) and
floor B (`bench/floor_inbox.py`: the limit of a durable inbox, `verify_header`
and one INSERT of id, type and payload on the raw driver) side by side, each
with gunicorn (2 sync workers), and NO job consumer: the app's events wait in
its inbox and queue (SQLite: a queue file in the temporary folder; PostgreSQL:
Redis, under a queue name of this run's own). Round by round, post N distinct
signed `checkout.session.completed` events at the given concurrency to each of
the three, taking turns. Check that the app stored and enqueued every event
once and that each floor recorded every event.

Drain: stop those servers; serve the app again on a fresh queue (a new queue
file, or a new queue name) and start the consumers (SQLite: one
`flask --app app jobs consume --workers 2 --no-periodic`; PostgreSQL: two of them
on Redis). After a short warm-up through the whole pipeline, post D new events
for D fresh contracts and time from the first delivery until the database shows
the last contract active. Check that every contract was activated exactly once
(one `contract.paid` audit entry each) and every event processed once.

Prints the per-round figures, then one summary line per database (one line;
split here):

    <db>: ack app/floorA <r> app/floorB <r> p99 <ms> ms |
          drain <done>/<total> <ev/s> ev/s <r> of floorA | OK

and exits non-zero if any count is wrong (FAIL in place of OK). PostgreSQL:
a scratch database is created on the server named by `--pg-url` and dropped
afterwards; the run is skipped, with the reason, if PostgreSQL or Redis cannot
be reached. A benchmark, not a test: the figures are noisy on a shared machine,
the ratios less so.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import http.client
import json
import math
import os
import pstats
import queue
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.kit import (  # noqa: E402
    WEBHOOK_SECRET,
    WORKERS,
    BenchError,
    Child,
    Database,
    Gunicorn,
    add_options,
    app_env,
    database_kinds,
    finish,
    flask_command,
    make_app,
    make_database,
    met,
    migrate,
    percentile,
    verdict,
)

WEBHOOK_PATH = "/webhooks/stripe"
BATCH = 500
CONSUMER_WORKERS = 2  # threads per consumer process
CONSUMERS = {"sqlite": 1, "postgresql": 2}  # consumer processes in the drain
DRAIN_WARMUP = 20  # events through the whole pipeline before the drain's clock starts
POLL_SECONDS = 0.05  # how often the drain looks for its last active contract
STALL_SECONDS = 30.0  # the drain gives up when no contract became active for this long
SERVERS = ("app", "floorA", "floorB")
TARGETS = {
    "app": "bench.app_wsgi:app",
    "floorA": "bench.floor:app",
    "floorB": "bench.floor_inbox:app",
}

# The goals, reported (not enforced): ack ratios and p99 at concurrency 16, the drain's ratio.
GOAL_ACK_FLOOR_A = 1.0
GOAL_ACK_FLOOR_B = 0.5  # of the raw driver's one insert (floor B does no ORM, no queue)
GOAL_P99_MS = 50.0
GOAL_DRAIN = 0.4


# --- figures --------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    events: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int] = field(default_factory=dict)
    server_cpu_ms: float | None = None  # the server's CPU time per event, where /proc tells

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def row(self) -> str:
        cpu = "-" if self.server_cpu_ms is None else f"{self.server_cpu_ms:.2f}"
        return (
            f"  {self.name:<6} {self.rate:9.1f} {self.percentile(50):9.1f} "
            f"{self.percentile(99):9.1f} {cpu:>9} {self.non_2xx:8d}   {self.statuses}"
        )


ROW_HEADER = "           events/s    p50 ms    p99 ms  cpu ms/ev  non-2xx   statuses"


# --- events ---------------------------------------------------------------------------


@dataclass
class Target:
    """One pending contract and its payment, as the events must describe them."""

    index: int
    contract_id: int
    amount: int
    currency: str


def sign(payload: bytes, timestamp: int) -> str:
    """A Stripe-Signature header, computed as Stripe computes it."""
    digest = hmac.new(
        WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    )
    return f"t={timestamp},v1={digest.hexdigest()}"


def build_events(targets: list[Target]) -> list[tuple[bytes, str]]:
    """Signed `checkout.session.completed` events, one per target: (body, signature).

    Full-size events, as Stripe sends them: the envelope and the session carry
    every field of Stripe's own example objects (the sandbox's fixture copy),
    with this contract's values laid over them.
    """
    resources = json.loads((ROOT / "sandbox" / "fixtures.json").read_text())["resources"]
    now = int(time.time())
    out = []
    for t in targets:
        session = copy.deepcopy(resources["checkout.session"])
        session.update(
            {
                "id": f"cs_test_bench_{t.index}",
                "status": "complete",
                "payment_status": "paid",
                "amount_subtotal": t.amount,
                "amount_total": t.amount,
                "currency": t.currency,
                "metadata": {"contract_id": str(t.contract_id)},
                "client_reference_id": str(t.contract_id),
                "payment_intent": f"pi_bench_{t.index}",
                "customer": None,
                "mode": "payment",
                "livemode": False,
            }
        )
        event = copy.deepcopy(resources["event"])
        event.update(
            {
                "id": f"evt_bench_{t.index}",
                "type": "checkout.session.completed",
                "created": now,
                "livemode": False,
                "data": {"object": session},
            }
        )
        body = json.dumps(event).encode()
        out.append((body, sign(body, now)))
    return out


def post_all(port: int, events: list[tuple[bytes, str]], concurrency: int, name: str) -> Run:
    """POST every event at `concurrency`, one new connection per request (sync workers
    close the connection after each response anyway); time each one."""
    work: queue.SimpleQueue[tuple[bytes, str]] = queue.SimpleQueue()
    for item in events:
        work.put(item)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker() -> None:
        mine: list[float] = []
        codes: dict[int, int] = {}
        while True:
            try:
                body, signature = work.get_nowait()
            except queue.Empty:
                break
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request(
                    "POST",
                    WEBHOOK_PATH,
                    body=body,
                    headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                )
                response = conn.getresponse()
                response.read()
                status = response.status
                conn.close()
            except OSError:
                status = 0  # connection refused / reset / timed out
            mine.append((time.perf_counter() - started) * 1000)
            codes[status] = codes.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, n in codes.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(name, len(events), time.perf_counter() - started, latencies, statuses)


# --- child processes ------------------------------------------------------------------


class Consumer(Child):
    """`flask --app app jobs consume --workers 2 --no-periodic`: its INFO log (a line or
    two per job) goes to its file (SIGTERM stops it at once). With `profile_dir`, every
    thread runs under cProfile (`bench/consumer_profiled.py`)."""

    def __init__(self, env: dict[str, str], log_path: Path, profile_dir: Path | None = None):
        options = ["--workers", str(CONSUMER_WORKERS), "--no-periodic"]
        if profile_dir is None:
            command = flask_command("jobs", "consume")
        else:
            command = [sys.executable, str(ROOT / "bench" / "consumer_profiled.py"),
                       str(profile_dir)]
        super().__init__([*command, *options], env, log_path)

    def wait_started(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the consumer exited early:\n{self.log_tail()}")
            if "consumer started" in self.log_text():
                return
            time.sleep(0.1)
        raise BenchError(f"the consumer did not start in {timeout:.0f} s:\n{self.log_tail()}")


def timed(server: Gunicorn, events: list[tuple[bytes, str]], concurrency: int, name: str) -> Run:
    """`post_all`, with the CPU time the server's processes spent per event."""
    before = server.cpu_seconds()
    run = post_all(server.port, events, concurrency, name)
    after = server.cpu_seconds()
    if before is not None and after is not None:
        run.server_cpu_ms = (after - before) * 1000 / len(events)
    return run


# --- job queues -----------------------------------------------------------------------


@dataclass
class JobQueue:
    """The app's job queue for one phase: its settings and a look into it."""

    label: str
    env: dict[str, str]  # JOBS_QUEUE_NAME, and REDIS_URL or JOBS_SQLITE_PATH

    @property
    def redis(self) -> bool:
        return bool(self.env.get("REDIS_URL"))

    def _storage(self) -> Any:
        from huey.storage import RedisStorage, SqliteStorage

        name = self.env["JOBS_QUEUE_NAME"]
        if self.redis:
            return RedisStorage(name=name, url=self.env["REDIS_URL"])
        return SqliteStorage(name=name, filename=self.env["JOBS_SQLITE_PATH"])

    def _use(self, action: Any) -> Any:
        storage = self._storage()
        try:
            return action(storage)
        finally:
            if self.redis:
                storage.conn.connection_pool.disconnect()
            else:
                storage.close()

    def size(self) -> int:
        """Jobs waiting in the queue."""
        return int(self._use(lambda storage: storage.queue_size()))

    def discard(self) -> None:
        """Redis: delete this queue's keys (the name is this run's own). An SQLite queue file
        goes with the temporary folder."""
        if self.redis:
            self._use(lambda storage: storage.flush_all())


def job_queue(kind: str, phase: str, workdir: Path, redis_url: str, run_id: str) -> JobQueue:
    """The queue the app and the consumers use in `phase`, one of this run's own."""
    name = f"coachpact-bench-{run_id}-{phase}"
    if kind == "postgresql":
        return JobQueue(f"Redis {redis_url} queue {name}",
                        {"REDIS_URL": redis_url, "JOBS_QUEUE_NAME": name})
    path = workdir / f"jobs-{phase}.sqlite3"
    return JobQueue(f"SQLite queue file {path.name}",
                    {"REDIS_URL": "", "JOBS_SQLITE_PATH": str(path), "JOBS_QUEUE_NAME": name})


def redis_unreachable(url: str) -> str | None:
    """Why Redis at `url` cannot be used, or None if it answers."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        return f"Redis unreachable at {url}: {exc}"
    return None


# --- databases ------------------------------------------------------------------------


def setup_app_database(uri: str, count: int) -> list[Target]:
    """Migrate, then `count` pending contracts between one coach and one student,
    each with a pending Checkout payment `cs_test_bench_<i>`."""
    from accounts.models import Role
    from accounts.services import create_user
    from contracts.services import accept_proposal, send_proposal
    from extensions import db
    from payments.models import Payment

    app = make_app(uri)
    migrate(app)
    targets: list[Target] = []
    with app.app_context():
        password = secrets.token_urlsafe(16)
        coach = create_user(email="coach@bench.test", name="Bench Coach", password=password,
                            role=Role.COACH, timezone="UTC")
        student = create_user(email="student@bench.test", name="Bench Student",
                              password=password, role=Role.STUDENT, timezone="UTC")
        db.session.commit()
        for start in range(0, count, BATCH):
            payments = []
            for i in range(start, min(count, start + BATCH)):
                proposal = send_proposal(
                    coach,
                    student_email=student.email,
                    title=f"Bench contract {i}",
                    description="Four mock interviews.",
                    session_count=4,
                    minutes_per_session=60,
                    price_per_session=5000 + i % 100,
                    currency="usd",
                )
                contract = accept_proposal(proposal.id, student)
                payments.append(
                    Payment(
                        contract_id=contract.id,
                        checkout_session_id=f"cs_test_bench_{i}",
                        amount=contract.total_amount,
                        currency=contract.currency,
                        stripe_metadata={"contract_id": str(contract.id), "attempt": "1"},
                    )
                )
                targets.append(Target(i, contract.id, contract.total_amount, contract.currency))
            db.session.add_all(payments)
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return targets


def chunks(items: Sequence[Any], size: int = 900) -> Iterator[Sequence[Any]]:
    """`items` in slices small enough for one `IN (...)` on any database."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def event_id(target: Target) -> str:
    return f"evt_bench_{target.index}"


def count_inbox(uri: str, event_ids: list[str]) -> tuple[int, int]:
    """(rows in the app's inbox for `event_ids`, of them waiting: received, 0 attempts)."""
    from sqlalchemy import create_engine, func, select

    from payments.models import EventStatus, WebhookEvent

    engine = create_engine(uri)
    rows = waiting = 0
    try:
        with engine.connect() as conn:
            for part in chunks(event_ids):
                mine = WebhookEvent.stripe_event_id.in_(part)
                rows += conn.scalar(
                    select(func.count()).select_from(WebhookEvent).where(mine)
                ) or 0
                waiting += conn.scalar(
                    select(func.count()).select_from(WebhookEvent).where(
                        mine,
                        WebhookEvent.status == EventStatus.RECEIVED,
                        WebhookEvent.attempts == 0,
                    )
                ) or 0
    finally:
        engine.dispose()
    return rows, waiting


@dataclass
class DrainCounts:
    active: int = 0  # contracts active and paid
    paid_once: int = 0  # contracts with exactly one `contract.paid` audit entry
    paid_again: int = 0  # `contract.paid` entries beyond the first, over all contracts
    rows: int = 0  # inbox rows of the drain's events
    processed_once: int = 0  # of them processed, in one attempt
    outcomes: dict[str, int] = field(default_factory=dict)

    def ok(self, total: int) -> bool:
        return (
            self.active == total and self.paid_once == total and self.paid_again == 0
            and self.rows == total and self.processed_once == total
        )


def count_drain(uri: str, contract_ids: list[int], event_ids: list[str]) -> DrainCounts:
    """What the drain left in the database for its contracts and events."""
    from sqlalchemy import create_engine, func, select

    from audit.models import AuditEntry
    from contracts.models import Contract, ContractStatus, PaymentStatus
    from payments.models import EventStatus, WebhookEvent

    counts = DrainCounts()
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            for part in chunks(contract_ids):
                counts.active += conn.scalar(
                    select(func.count()).select_from(Contract).where(
                        Contract.id.in_(part),
                        Contract.status == ContractStatus.ACTIVE,
                        Contract.payment_status == PaymentStatus.PAID,
                        Contract.paid_at.is_not(None),
                    )
                ) or 0
                for _, entries in conn.execute(
                    select(AuditEntry.object_id, func.count())
                    .where(
                        AuditEntry.action == "contract.paid",
                        AuditEntry.object_type == Contract.__tablename__,
                        AuditEntry.object_id.in_(part),
                    )
                    .group_by(AuditEntry.object_id)
                ):
                    counts.paid_once += entries == 1
                    counts.paid_again += entries - 1
            for part in chunks(event_ids):
                mine = WebhookEvent.stripe_event_id.in_(part)
                counts.rows += conn.scalar(
                    select(func.count()).select_from(WebhookEvent).where(mine)
                ) or 0
                counts.processed_once += conn.scalar(
                    select(func.count()).select_from(WebhookEvent).where(
                        mine,
                        WebhookEvent.status == EventStatus.PROCESSED,
                        WebhookEvent.attempts == 1,
                    )
                ) or 0
                for outcome, n in conn.execute(
                    select(WebhookEvent.outcome, func.count())
                    .where(mine)
                    .group_by(WebhookEvent.outcome)
                ):
                    key = str(outcome)
                    counts.outcomes[key] = counts.outcomes.get(key, 0) + n
    finally:
        engine.dispose()
    return counts


class ActiveWatch:
    """Counts, again and again, how many of a set of contracts are active."""

    def __init__(self, uri: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(uri)

    def count(self, contract_ids: list[int]) -> int:
        from sqlalchemy import func, select

        from contracts.models import Contract, ContractStatus

        low, high = min(contract_ids), max(contract_ids)
        contiguous = high - low + 1 == len(contract_ids)  # as set up: one range, one query
        parts = [contract_ids] if contiguous else list(chunks(contract_ids))
        total = 0
        with self.engine.connect() as conn:
            for part in parts:
                mine = (
                    Contract.id.between(min(part), max(part)) if contiguous
                    else Contract.id.in_(part)
                )
                total += conn.scalar(
                    select(func.count()).select_from(Contract).where(
                        mine, Contract.status == ContractStatus.ACTIVE
                    )
                ) or 0
        return total

    def wait(self, contract_ids: list[int], since: float) -> tuple[int, float]:
        """Poll until every contract is active, or none became active for STALL_SECONDS;
        (how many are active, seconds from `since` until the last of them was seen)."""
        done, seen_at = 0, since
        while True:
            now_done = self.count(contract_ids)
            now = time.perf_counter()
            if now_done != done:
                done, seen_at = now_done, now
            if done >= len(contract_ids) or now - seen_at > STALL_SECONDS:
                return done, seen_at - since
            time.sleep(POLL_SECONDS)

    def close(self) -> None:
        self.engine.dispose()


def setup_floor_tables(uri: str, contract_ids: list[int]) -> None:
    """Floor A's two tables (its contracts pending) and floor B's inbox, all empty."""
    from sqlalchemy import create_engine, insert

    from bench import floor_inbox
    from bench.floor import contracts_floor, metadata

    engine = create_engine(uri)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(contracts_floor), [{"id": cid, "status": "pending"} for cid in contract_ids]
            )
    finally:
        engine.dispose()
    floor_inbox.create_table(uri)


def count_floor(uri: str) -> tuple[int, int]:
    from sqlalchemy import create_engine, func, select

    from bench.floor import contracts_floor, floor_events

    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            events = conn.scalar(select(func.count()).select_from(floor_events))
            active = conn.scalar(
                select(func.count()).select_from(contracts_floor).where(
                    contracts_floor.c.status == "active"
                )
            )
    finally:
        engine.dispose()
    return events or 0, active or 0


# --- one database ---------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None
    rounds: dict[str, list[Run]] = field(default_factory=lambda: {s: [] for s in SERVERS})
    drain_done: int = 0
    drain_total: int = 0
    drain_rate: float = math.nan

    def median_ratio(self, floor: str) -> float:
        """The app's throughput over `floor`'s, median over the rounds."""
        ratios = [
            app.rate / other.rate
            for app, other in zip(self.rounds["app"], self.rounds[floor], strict=False)
            if other.rate
        ]
        return statistics.median(ratios) if ratios else math.nan

    @property
    def app_p99(self) -> float:
        p99s = [run.percentile(99) for run in self.rounds["app"]]
        return statistics.median(p99s) if p99s else math.nan

    @property
    def floor_a_rate(self) -> float:
        rates = [run.rate for run in self.rounds["floorA"]]
        return statistics.median(rates) if rates else math.nan

    @property
    def drain_ratio(self) -> float:
        floor = self.floor_a_rate
        return self.drain_rate / floor if floor else math.nan


def print_profile(profile_dir: Path, pattern: str, entry: str, top: int = 30) -> None:
    """The functions with the most cumulative and own time, then what `entry` (a function's
    name) spends its time in."""
    files = sorted(profile_dir.glob(pattern))
    if not files:
        print("  (no profile written)")
        return
    stats = pstats.Stats(*map(str, files), stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_callees(rf"\({entry}\)")


def machine_load() -> str:
    """The 1-minute load average, a hint that other work shares the machine (this script's
    own previous phase counts too)."""
    try:
        return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def check_warmup(run: Run, name: str, server: Gunicorn) -> None:
    """A warm-up answered with anything but 2xx: the server is broken, stop here."""
    if run.non_2xx:
        raise BenchError(f"{name} answered {run.non_2xx} of {run.events} warm-up events with "
                         f"no 2xx {run.statuses}; its log's tail:\n{server.log_tail(15)}")


def ack_phase(
    db: Database, args: argparse.Namespace, workdir: Path, jobs: JobQueue,
    timed_targets: list[Target], warm_targets: list[Target], result: Result,
) -> None:
    """The app and both floors take turns, round by round; no consumer runs."""
    from bench import floor_inbox

    n, rounds = args.events, args.rounds
    print(f"  ack: {rounds} rounds of {n} events for each of {', '.join(SERVERS)}, taking "
          f"turns (+{len(warm_targets)} warm-up), concurrency {args.concurrency}, "
          f"gunicorn -w {WORKERS} -k sync, no consumer; the app's queue: {jobs.label}; "
          f"{machine_load()}", flush=True)
    profile: dict[str, str] = {}
    profile_dir = workdir / f"profile-{db.kind}"
    if args.profile:
        profile_dir.mkdir()
        profile["BENCH_PROFILE_DIR"] = str(profile_dir)
    envs = {
        "app": app_env(db.uri, **jobs.env, **profile),
        "floorA": app_env(db.uri),
        "floorB": app_env(db.uri),
    }
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                Gunicorn(TARGETS[name], envs[name], workdir / f"{name}-ack-{db.kind}.log")
            )
            for name in SERVERS
        }
        for server in servers.values():
            server.wait_healthy()
        warmup = build_events(warm_targets)
        for name, server in servers.items():
            check_warmup(post_all(server.port, warmup, args.concurrency, "warmup"), name, server)
        print(ROW_HEADER)
        for i in range(rounds):
            # Signed just before the round (Stripe's timestamps go stale after 5 minutes).
            batch = build_events(timed_targets[i * n : (i + 1) * n])
            # Taking turns, in a rotating order, so that a noisy neighbour or a database
            # growing round by round weighs on all three alike.
            order = SERVERS[i % len(SERVERS):] + SERVERS[: i % len(SERVERS)]
            for name in order:
                result.rounds[name].append(timed(servers[name], batch, args.concurrency, name))
            for name in SERVERS:
                print(result.rounds[name][-1].row())
            app, floor_a, floor_b = (result.rounds[name][-1] for name in SERVERS)
            print(f"  round {i + 1}: app/floorA {app.rate / floor_a.rate:.2f} "
                  f"app/floorB {app.rate / floor_b.rate:.2f}", flush=True)
        for name, server in servers.items():
            bad = sum(run.non_2xx for run in result.rounds[name])
            if bad:
                result.failures.append(f"{db.kind} ack: {bad} non-2xx answers from {name}")
                print(f"  {name} answered {bad} requests with no 2xx; its log's tail:\n"
                      f"{server.log_tail(15)}")
            server.report_problems(f"{name} (ack)")

    expected = len(timed_targets) + len(warm_targets)
    rows, waiting = count_inbox(db.uri, [event_id(t) for t in timed_targets + warm_targets])
    queued = jobs.size()
    print(f"  app verified: {rows}/{expected} events in the inbox, {waiting} of them waiting "
          f"(received, 0 attempts), {queued} jobs queued", flush=True)
    if not rows == waiting == queued == expected:
        result.failures.append(f"{db.kind} ack: {rows}/{expected} events in the inbox, "
                               f"{waiting} waiting, {queued} jobs queued")
        print("  !!! WRONG COUNT: the app did not store and enqueue every event once !!!")
    logged, active = count_floor(db.uri)
    stored = floor_inbox.count(db.uri)
    print(f"  floors verified: A {logged}/{expected} events recorded, {active} rows active; "
          f"B {stored}/{expected} events stored", flush=True)
    if not logged == active == stored == expected:
        result.failures.append(f"{db.kind} floors: A {logged}/{expected} events, {active} "
                               f"active; B {stored}/{expected} events")
        print("  !!! WRONG COUNT: a floor did not record every event !!!")
    if args.profile:
        print(f"\n  cProfile of the app's workers in the ack phase ({db.kind}; the figures "
              "above are slowed by it):")
        print_profile(profile_dir, "app-*.prof", "stripe_webhook")


def drain_phase(
    db: Database, args: argparse.Namespace, workdir: Path, jobs: JobQueue,
    timed_targets: list[Target], warm_targets: list[Target], result: Result,
) -> None:
    """A storm of new events posted to the app while the consumers apply them."""
    total = result.drain_total = len(timed_targets)
    consumers = CONSUMERS[db.kind]
    print(f"\n  drain: {total} new events (+{len(warm_targets)} warm-up) posted at concurrency "
          f"{args.concurrency} while {consumers} consumer process(es) (--workers "
          f"{CONSUMER_WORKERS} --no-periodic) apply them; a fresh app server and queue: "
          f"{jobs.label}; {machine_load()}", flush=True)
    env = app_env(db.uri, **jobs.env)
    contract_ids = [t.contract_id for t in timed_targets]
    event_ids = [event_id(t) for t in timed_targets]
    profile_dir = workdir / f"profile-drain-{db.kind}"
    if args.profile:
        profile_dir.mkdir()
    started: list[Consumer] = []
    failed = False
    try:
        with ExitStack() as stack:
            app = stack.enter_context(
                Gunicorn(TARGETS["app"], env, workdir / f"app-drain-{db.kind}.log")
            )
            for i in range(consumers):
                started.append(stack.enter_context(Consumer(
                    env, workdir / f"consumer-{db.kind}-{i + 1}.log",
                    profile_dir if args.profile else None,
                )))
            watch = ActiveWatch(db.uri)
            stack.callback(watch.close)
            app.wait_healthy()
            for consumer in started:
                consumer.wait_started()
            if warm_targets:
                warmup = post_all(app.port, build_events(warm_targets), args.concurrency, "warmup")
                check_warmup(warmup, "app", app)
                warm_ids = [t.contract_id for t in warm_targets]
                if watch.wait(warm_ids, time.perf_counter())[0] != len(warm_ids):
                    raise BenchError("the drain's warm-up events were not all applied")
            events = build_events(timed_targets)  # before the clock starts
            cpu_before = [child.cpu_seconds() for child in (app, *started)]
            since = time.perf_counter()  # the first delivery
            posted = post_all(app.port, events, args.concurrency, "drain")
            done, seconds = watch.wait(contract_ids, since)
            cpu_after = [child.cpu_seconds() for child in (app, *started)]
            window = time.perf_counter() - since
            result.drain_done = done
            result.drain_rate = done / seconds if seconds > 0 else math.nan
            print(ROW_HEADER)
            print(posted.row() + "   (the webhook's answers while the consumers run)")
            print(f"  drain: {done}/{total} contracts active {seconds:.2f} s after the first "
                  f"delivery: {result.drain_rate:.1f} ev/s, {result.drain_ratio:.2f} of floor "
                  f"A's median ack rate ({result.floor_a_rate:.1f} ev/s)", flush=True)
            spent = cpu_spent(cpu_before, cpu_after)
            if spent is not None:
                print(f"  drain CPU per event: the app's web workers {spent[0] * 1000 / total:.2f}"
                      f" ms, the consumers {sum(spent[1:]) * 1000 / total:.2f} ms "
                      f"(over {window:.2f} s on {os.cpu_count()} CPUs)", flush=True)
            if done != total:
                failed = True
                result.failures.append(f"{db.kind} drain: {done}/{total} contracts active, "
                                       f"none more for {STALL_SECONDS:.0f} s")
            if posted.non_2xx:
                failed = True
                result.failures.append(f"{db.kind} drain: {posted.non_2xx} non-2xx answers")
                print(f"  the app's log tail:\n{app.log_tail(15)}")
            app.report_problems("app (drain)")
        # The consumers are stopped: nothing can change the counts any more.
        counts = count_drain(db.uri, contract_ids, event_ids)
        print(f"  drain verified: {counts.active}/{total} contracts active+paid, "
              f"{counts.paid_once}/{total} with exactly one contract.paid audit entry "
              f"({counts.paid_again} extra), {counts.rows}/{total} inbox rows, "
              f"{counts.processed_once}/{total} processed in one attempt; outcomes "
              f"{counts.outcomes}", flush=True)
        if not counts.ok(total):
            failed = True
            result.failures.append(
                f"{db.kind} drain: {counts.active}/{total} active, {counts.paid_once}/{total} "
                f"paid once (+{counts.paid_again}), {counts.rows}/{total} rows, "
                f"{counts.processed_once}/{total} processed once"
            )
            print("  !!! WRONG COUNT: the drain did not apply every event exactly once !!!")
    except BaseException:
        failed = True
        raise
    finally:
        for i, consumer in enumerate(started, 1):
            if failed:
                print(f"  consumer {i}'s log tail:\n{consumer.log_tail(20)}")
            consumer.report_problems(f"consumer {i}")
    if args.profile:
        print(f"\n  cProfile of the consumers in the drain ({db.kind}; all their threads; the "
              "figures above are slowed by it):")
        print_profile(profile_dir, "consumer-*.prof", "process_event")


def cpu_spent(
    before: list[float | None], after: list[float | None]
) -> list[float] | None:
    """CPU seconds each process spent between two readings; None if /proc did not tell."""
    spent = []
    for start, end in zip(before, after, strict=True):
        if start is None or end is None:
            return None
        spent.append(end - start)
    return spent


def bench_database(
    db: Database, args: argparse.Namespace, workdir: Path, redis_url: str
) -> Result:
    result = Result(db.kind)
    n, rounds, warm, drain = args.events, args.rounds, args.warmup, args.drain_events
    drain_warm = min(warm, DRAIN_WARMUP)
    print(f"\n== {db.kind} ==", flush=True)

    started = time.perf_counter()
    targets = setup_app_database(db.uri, rounds * n + warm + drain_warm + drain)
    # In order of creation: the ack's timed and warm-up contracts, then the drain's.
    ack_timed, ack_warm = targets[: rounds * n], targets[rounds * n : rounds * n + warm]
    drain_targets = targets[rounds * n + warm :]
    drain_warm_targets, drain_timed = drain_targets[:drain_warm], drain_targets[drain_warm:]
    setup_floor_tables(db.uri, [t.contract_id for t in ack_timed + ack_warm])
    print(f"  setup: migrated, {len(targets)} pending contracts with payments "
          f"in {time.perf_counter() - started:.1f} s", flush=True)

    run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
    queues = [job_queue(db.kind, phase, workdir, redis_url, run_id) for phase in ("ack", "drain")]
    try:
        ack_phase(db, args, workdir, queues[0], ack_timed, ack_warm, result)
        # The ack's events stay in the inbox (received) and its queue, which no consumer reads.
        drain_phase(db, args, workdir, queues[1], drain_timed, drain_warm_targets, result)
    except BenchError as exc:
        print(f"  !!! {db.kind} failed: {exc}", flush=True)
        result.failures.append(f"{db.kind}: {exc}")
    finally:
        for jobs in queues:
            jobs.discard()
    print(f"  goals: ack app/floorA {result.median_ratio('floorA'):.2f} "
          f"(≥ {GOAL_ACK_FLOOR_A:.2f}: {met(result.median_ratio('floorA') >= GOAL_ACK_FLOOR_A)}), "
          f"app/floorB {result.median_ratio('floorB'):.2f} "
          f"(≥ {GOAL_ACK_FLOOR_B:.2f}: {met(result.median_ratio('floorB') >= GOAL_ACK_FLOOR_B)}), "
          f"p99 {result.app_p99:.1f} ms (< {GOAL_P99_MS:.0f}: {met(result.app_p99 < GOAL_P99_MS)}"
          f"); drain {result.drain_ratio:.2f} of floorA "
          f"(≥ {GOAL_DRAIN:.2f}: {met(result.drain_ratio >= GOAL_DRAIN)})", flush=True)
    return result


def summary(result: Result) -> str:
    if result.skipped:
        return f"{result.kind}: skipped ({result.skipped})"
    return (
        f"{result.kind}: ack app/floorA {result.median_ratio('floorA'):.2f} "
        f"app/floorB {result.median_ratio('floorB'):.2f} p99 {result.app_p99:.1f} ms | "
        f"drain {result.drain_done}/{result.drain_total} {result.drain_rate:.1f} ev/s "
        f"{result.drain_ratio:.2f} of floorA | {verdict(not result.failures)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000,
                        help="timed events per server and round in the ack phase")
    parser.add_argument("--rounds", type=int, default=3,
                        help="ack rounds; the app and the floors take turns, one run each")
    parser.add_argument("--drain-events", type=int, default=None,
                        help="timed events of the drain (default: as --events)")
    parser.add_argument("--warmup", type=int, default=100,
                        help=f"untimed events first (the drain's: at most {DRAIN_WARMUP})")
    parser.add_argument("--concurrency", type=int, default=16)
    add_options(parser, smoke="40 events, one round", databases=True)
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the app's job queue in the PostgreSQL pass")
    parser.add_argument("--profile", action="store_true",
                        help="run the app's workers under cProfile in the ack phase and print "
                             "where time goes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.rounds, args.drain_events, args.warmup = 40, 1, 40, 5
    if args.drain_events is None:
        args.drain_events = args.events
    kinds = database_kinds(parser, args)
    if min(args.events, args.concurrency, args.rounds, args.drain_events) < 1 or args.warmup < 0:
        parser.error("--events, --rounds, --drain-events and --concurrency must be positive")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="coachpact-bench-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            try:
                if kind == "postgresql":
                    reason = redis_unreachable(args.redis_url)
                    if reason is not None:
                        raise BenchError(reason)
                db = make_database(kind, workdir, args.pg_url, "coachpact_bench")
            except BenchError as exc:
                print(f"\n== {kind}: skipped: {exc}", flush=True)
                results.append(Result(kind, skipped=str(exc)))
                continue
            try:
                results.append(bench_database(db, args, workdir, args.redis_url))
            finally:
                db.drop()
    return finish([summary(r) for r in results], [f for r in results for f in r.failures])


if __name__ == "__main__":
    sys.exit(main())
