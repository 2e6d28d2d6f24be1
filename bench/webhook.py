"""Benchmark `POST /webhooks/stripe` under gunicorn against a minimal floor.

    .venv/bin/python bench/webhook.py [--events N] [--rounds R] [--concurrency 16]
                                      [--databases sqlite,postgresql] [--profile]

For each database: build the app's schema with the migrations and set up R x N
pending contracts (plus a few for warm-up), each with a pending Checkout
payment. Serve the app and `bench/floor.py` (signature check, one insert, one
update, one transaction) side by side, each with gunicorn (2 sync workers), on
that database. Then, round by round, post N distinct signed
`checkout.session.completed` events at the given concurrency to the app, and
the same N events to the floor: taking turns, so that a noisy neighbour slows
both alike. Check that every contract is now active and paid and that the floor
recorded every event. Prints events/s, p50 and p99 latency, server CPU per event
and non-2xx counts per round, the app/floor throughput ratio per round, and a
summary with the median ratio.

PostgreSQL: a scratch database is created on the server named by `--pg-url`
and dropped afterwards; the run is skipped, with the reason, if the server
cannot be reached. A benchmark, not a test: the figures are noisy on a shared
machine, the ratios less so.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import http.client
import json
import os
import pstats
import queue
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET = "whsec_bench_" + "0" * 24  # noqa: S105 (a throwaway secret for local servers)
STRIPE_KEY = "sk_test_bench"
WEBHOOK_PATH = "/webhooks/stripe"
WORKERS = 2
BATCH = 500


class BenchError(Exception):
    """The run cannot go on (a server did not start, a count is wrong, ...)."""


# --- figures --------------------------------------------------------------------


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
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return ordered[rank]

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def row(self) -> str:
        cpu = "-" if self.server_cpu_ms is None else f"{self.server_cpu_ms:.2f}"
        return (
            f"  {self.name:<6} {self.rate:9.1f} {self.percentile(50):9.1f} "
            f"{self.percentile(99):9.1f} {cpu:>9} {self.non_2xx:8d}   {self.statuses}"
        )


# --- events -----------------------------------------------------------------------


@dataclass
class Target:
    """One pending contract and its payment, as the events must describe them."""

    index: int
    contract_id: int
    amount: int
    currency: str


def sign(payload: bytes, timestamp: int) -> str:
    """A Stripe-Signature header, computed as Stripe computes it."""
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
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


# --- gunicorn -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -w 2 -k sync` serving `target` on a free local port; stopped by its pid."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            [
                sys.executable, "-m", "gunicorn",
                "-w", str(WORKERS), "-k", "sync",
                "-b", f"127.0.0.1:{self.port}",
                "--log-level", "warning",
                "--chdir", str(ROOT),
                target,
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go with it
        )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited early:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"gunicorn not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the master and its live workers, from
        /proc; None where there is no /proc."""
        try:
            ticks = os.sysconf("SC_CLK_TCK")
            total = 0
            pids = [self.proc.pid] + [
                int(pid) for pid in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
                .read_text().split()
            ]
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError):
            return None
        return total / ticks

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn stops its workers gracefully
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script started
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def timed(server: Gunicorn, events: list[tuple[bytes, str]], concurrency: int, name: str) -> Run:
    """`post_all`, with the CPU time the server's processes spent per event."""
    before = server.cpu_seconds()
    run = post_all(server.port, events, concurrency, name)
    after = server.cpu_seconds()
    if before is not None and after is not None:
        run.server_cpu_ms = (after - before) * 1000 / len(events)
    return run


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STRIPE_", "DATABASE_URL", "APP_ENV", "REDIS_URL", "MAIL_"))
    }
    env.update(
        DATABASE_URL=database_url,
        STRIPE_WEBHOOK_SECRET=SECRET,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        APP_ENV="development",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


# --- databases ----------------------------------------------------------------------


@dataclass
class Database:
    kind: str
    uri: str  # SQLAlchemy URL
    cleanup: Any = None


def sqlite_database(workdir: Path) -> Database:
    return Database("sqlite", f"sqlite:///{workdir / 'bench.sqlite3'}")


def postgres_database(server_url: str) -> Database:
    """A fresh scratch database on `server_url`; raises BenchError if unreachable."""
    import psycopg

    from config import database_uri_from_url

    name = f"coachpact_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(server_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL unreachable at {server_url}: {exc}".strip()) from None
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    base = server_url.rsplit("/", 1)[0]
    return Database("postgresql", database_uri_from_url(f"{base}/{name}"), drop)


def setup_app_database(uri: str, count: int) -> list[Target]:
    """Migrate, then `count` pending contracts between one coach and one student,
    each with a pending Checkout payment `cs_test_bench_<i>`."""
    import logging

    from flask_migrate import upgrade

    from accounts.models import Role
    from accounts.services import create_user
    from app import create_app
    from contracts.services import accept_proposal, send_proposal
    from extensions import db
    from payments.models import Payment

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": uri,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_API_BASE": "http://127.0.0.1:9",
        }
    )
    logging.getLogger().setLevel(logging.WARNING)
    targets: list[Target] = []
    with app.app_context():
        logging.disable(logging.INFO)  # alembic's own logging config would print INFO lines
        try:
            upgrade()
        finally:
            logging.disable(logging.NOTSET)
        logging.getLogger().setLevel(logging.WARNING)
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


def count_app_paid(uri: str, contract_ids: list[int]) -> tuple[int, int]:
    """(contracts active and paid, payments succeeded) among `contract_ids`."""
    from sqlalchemy import create_engine, func, select

    from contracts.models import Contract, ContractStatus, PaymentStatus
    from payments.models import Payment, PaymentRecordStatus

    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            contracts = conn.scalar(
                select(func.count()).select_from(Contract).where(
                    Contract.id.in_(contract_ids),
                    Contract.status == ContractStatus.ACTIVE,
                    Contract.payment_status == PaymentStatus.PAID,
                    Contract.paid_at.is_not(None),
                )
            )
            payments = conn.scalar(
                select(func.count()).select_from(Payment).where(
                    Payment.contract_id.in_(contract_ids),
                    Payment.status == PaymentRecordStatus.SUCCEEDED,
                )
            )
    finally:
        engine.dispose()
    return contracts or 0, payments or 0


def setup_floor_tables(uri: str, contract_ids: list[int]) -> None:
    from sqlalchemy import create_engine, insert

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


# --- one database -------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    app: Run | None = None
    floor: Run | None = None
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None
    ratios: list[float] = field(default_factory=list)  # app/floor throughput, per round


def print_profile(profile_dir: Path, top: int = 30) -> None:
    files = sorted(profile_dir.glob("app-*.prof"))
    if not files:
        print("  (no profile written)")
        return
    stats = pstats.Stats(*map(str, files), stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def merged(name: str, runs: list[Run]) -> Run:
    """Several rounds of one server as one run: all events over all the time spent."""
    cpu = [r.server_cpu_ms * r.events for r in runs if r.server_cpu_ms is not None]
    events = sum(r.events for r in runs)
    statuses: dict[int, int] = {}
    for run in runs:
        for status, count in run.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return Run(
        name,
        events,
        sum(r.seconds for r in runs),
        [ms for r in runs for ms in r.latencies_ms],
        statuses,
        sum(cpu) / events if len(cpu) == len(runs) else None,
    )


def bench_database(db: Database, args: argparse.Namespace, workdir: Path) -> Result:
    result = Result(db.kind)
    n, warm, rounds = args.events, args.warmup, args.rounds
    print(f"\n== {db.kind}: {rounds} rounds of {n} events each for the app and the floor, "
          f"taking turns (+{warm} warm-up), concurrency {args.concurrency}, "
          f"gunicorn -w {WORKERS} -k sync ==", flush=True)

    started = time.perf_counter()
    targets = setup_app_database(db.uri, rounds * n + warm)
    contract_ids = [t.contract_id for t in targets]
    setup_floor_tables(db.uri, contract_ids)
    print(f"  setup: migrated, {len(targets)} pending contracts with payments "
          f"in {time.perf_counter() - started:.1f} s", flush=True)

    extra = {}
    profile_dir = workdir / f"profile-{db.kind}"
    if args.profile:
        profile_dir.mkdir()
        extra["BENCH_PROFILE_DIR"] = str(profile_dir)
    # The app and the floor get the same events; each records them in its own tables.
    events = build_events(targets)
    warmup, timed_events = events[rounds * n:], events[: rounds * n]
    app_runs: list[Run] = []
    floor_runs: list[Run] = []
    with (
        Gunicorn("bench.app_wsgi:app", server_env(db.uri, **extra),
                 workdir / f"app-{db.kind}.log") as app,
        Gunicorn("bench.floor:app", server_env(db.uri), workdir / f"floor-{db.kind}.log") as floor,
    ):
        app.wait_healthy()
        floor.wait_healthy()
        post_all(app.port, warmup, args.concurrency, "warmup")
        post_all(floor.port, warmup, args.concurrency, "warmup")
        print("           events/s    p50 ms    p99 ms  cpu ms/ev  non-2xx   statuses")
        # Taking turns, round by round, so that a noisy neighbour slows both alike.
        for i in range(rounds):
            batch = timed_events[i * n : (i + 1) * n]
            app_runs.append(timed(app, batch, args.concurrency, "app"))
            floor_runs.append(timed(floor, batch, args.concurrency, "floor"))
            print(app_runs[-1].row())
            print(floor_runs[-1].row())
            result.ratios.append(app_runs[-1].rate / floor_runs[-1].rate)
            print(f"  round {i + 1}: app/floor {result.ratios[-1]:.2f}", flush=True)
        for server, runs in ((app, app_runs), (floor, floor_runs)):
            if any(run.non_2xx for run in runs):
                print(f"  {runs[0].name} log tail:\n{server.log_tail(15)}")
    result.app, result.floor = merged("app", app_runs), merged("floor", floor_runs)

    expected = rounds * n + warm
    paid, succeeded = count_app_paid(db.uri, contract_ids)
    print(f"  app verified: {paid}/{expected} contracts active+paid, "
          f"{succeeded} payments succeeded", flush=True)
    if paid != expected or succeeded != expected:
        result.failures.append(f"{db.kind} app: {paid}/{expected} contracts active+paid, "
                               f"{succeeded}/{expected} payments succeeded")
        print("  !!! WRONG COUNT: the app did not fulfil every event !!!", flush=True)
    logged, active = count_floor(db.uri)
    print(f"  floor verified: {logged}/{expected} events recorded, {active} rows active",
          flush=True)
    if logged != expected or active != expected:
        result.failures.append(f"{db.kind} floor: {logged}/{expected} events, {active} active")
        print("  !!! WRONG COUNT: the floor did not record every event !!!", flush=True)
    if args.profile:
        print(f"\n  cProfile of the app's workers ({db.kind}; figures above are slowed by it):")
        print_profile(profile_dir)
    return result


def summary(result: Result) -> str:
    if result.skipped:
        return f"{result.kind}: skipped ({result.skipped})"
    if result.app is None or result.floor is None:
        return f"{result.kind}: failed ({'; '.join(result.failures)})"
    a, f = result.app, result.floor
    verdict = "OK" if not result.failures else "WRONG COUNT"
    ratios = sorted(result.ratios)
    return (
        f"{result.kind}: app {a.rate:.0f} ev/s (p50 {a.percentile(50):.0f} ms, "
        f"p99 {a.percentile(99):.0f} ms, {a.non_2xx} non-2xx) | floor {f.rate:.0f} ev/s "
        f"(p50 {f.percentile(50):.0f} ms, p99 {f.percentile(99):.0f} ms, {f.non_2xx} non-2xx) "
        f"| app/floor median {statistics.median(ratios):.2f} of {len(ratios)} rounds "
        f"({ratios[0]:.2f}–{ratios[-1]:.2f}){cpu_ratio(a, f)} | {verdict}"
    )


def cpu_ratio(app: Run, floor: Run) -> str:
    """The server CPU per event, floor/app (above 1: the app spends less), where known."""
    if not app.server_cpu_ms or not floor.server_cpu_ms:
        return ""
    return f" | cpu/ev floor/app {floor.server_cpu_ms / app.server_cpu_ms:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000,
                        help="timed events per server and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds; the app and the floor take turns, one round each")
    parser.add_argument("--warmup", type=int, default=100, help="untimed events first")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://127.0.0.1:5432/postgres"),
        help="a PostgreSQL server (any database on it) where scratch databases may be made")
    parser.add_argument("--profile", action="store_true",
                        help="run the app's workers under cProfile and print where time goes")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    unknown = set(kinds) - {"sqlite", "postgresql"}
    if unknown or min(args.events, args.concurrency, args.rounds) < 1 or args.warmup < 0:
        parser.error(f"bad arguments (unknown databases: {sorted(unknown)})" if unknown
                     else "--events, --rounds and --concurrency must be positive")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="coachpact-bench-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            try:
                db = (sqlite_database(workdir) if kind == "sqlite"
                      else postgres_database(args.pg_url))
            except BenchError as exc:
                print(f"\n== {kind}: skipped: {exc}", flush=True)
                results.append(Result(kind, skipped=str(exc)))
                continue
            try:
                results.append(bench_database(db, args, workdir))
            except BenchError as exc:
                print(f"  !!! {kind} failed: {exc}", flush=True)
                results.append(Result(kind, failures=[str(exc)]))
            finally:
                if db.cleanup is not None:
                    db.cleanup()
                    print(f"  dropped the scratch {kind} database", flush=True)

    print("\n== summary ==")
    for result in results:
        print(summary(result))
    failed = [f for r in results for f in r.failures]
    if failed:
        print("\nFAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
