"""What the benchmarks (`admin.py`, `webhook.py`, `scheduling.py`) share:

- scratch databases: `make_database` (an SQLite file in the run's folder, or a fresh
  PostgreSQL database on a server), `Database.drop` at the end of the run;
- the app: `app_env` (the environment of a server or command: the scratch database, a
  throwaway Stripe setup), `flask` (run a `flask --app app` command), and in this
  process `make_app` and `migrate`;
- child processes: `Child` (own process group, log file, log tail and problems, worker
  pids, CPU time, stopped by its pid), `Gunicorn` (a free port, wait until healthy),
  `rss_kb` and `MemorySampler` (resident memory from /proc);
- the client: `login` through the login form with its CSRF token, `StatementCounter`
  (the SQL statements an engine sends, and their time);
- figures: `percentile`, `fmt_ms`, `met`, `verdict`;
- the command line: `add_options` (--pg-url, --databases, --repeat, --warmup, --smoke),
  `database_kinds`, `finish` (the summary lines and the exit status).

Imports of the app and of database drivers happen inside the functions, so a script can
parse its options before any of them loads.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent

STRIPE_KEY = "sk_test_bench"  # noqa: S105 (a throwaway key: nothing listens at the API base)
WEBHOOK_SECRET = "whsec_bench_" + "0" * 24  # noqa: S105 (a throwaway secret)
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://127.0.0.1:5432/postgres")
WORKERS = 2  # gunicorn sync workers
WORKER_TIMEOUT = 30  # gunicorn's default, as production runs it (Procfile)
# The app's own settings: a server or command gets the benchmark's, never this shell's.
APP_SETTINGS = ("STRIPE_", "DATABASE_URL", "APP_ENV", "REDIS_URL", "MAIL_", "JOBS_",
                "SECRET_KEY")


class BenchError(Exception):
    """The run cannot go on (a command failed, a server did not start, a database cannot
    be made, ...)."""


# --- scratch databases --------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # sqlite or postgresql
    name: str  # the PostgreSQL database's name, or the SQLite file's
    uri: str  # SQLAlchemy URL
    url: str  # as its server names it: a libpq URL (PostgreSQL); the SQLAlchemy URL (SQLite)
    cleanup: Callable[[], None] | None = None

    def connect(self, autocommit: bool = True) -> Any:
        """A psycopg connection (PostgreSQL only)."""
        import psycopg

        return psycopg.connect(self.url, autocommit=autocommit)

    def drop(self) -> None:
        """Drop a scratch database that needs it (PostgreSQL's; the SQLite file goes with
        its folder)."""
        if self.cleanup is not None:
            self.cleanup()
            self.cleanup = None
            print(f"  dropped the scratch {self.kind} database {self.name}", flush=True)


def sqlite_database(workdir: Path) -> Database:
    uri = f"sqlite:///{workdir / 'bench.sqlite3'}"
    return Database("sqlite", "bench.sqlite3", uri, uri)


def postgres_database(server_url: str, prefix: str) -> Database:
    """A fresh scratch database on `server_url`; raises BenchError if unreachable."""
    import psycopg
    from psycopg import sql

    from config import database_uri_from_url

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        conn = psycopg.connect(server_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL unreachable at {server_url}: {exc}".strip()) from None
    with conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    url = f"{server_url.rsplit('/', 1)[0]}/{name}"
    return Database("postgresql", name, database_uri_from_url(url), url, drop)


def make_database(kind: str, workdir: Path, pg_url: str, prefix: str) -> Database:
    """The scratch database of `kind` (sqlite or postgresql; `prefix` names a PostgreSQL
    one); raises BenchError if it cannot be made."""
    if kind == "postgresql":
        return postgres_database(pg_url, prefix)
    return sqlite_database(workdir)


# --- the app --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a server or command: this process's, less the app's own settings,
    plus the database, a fresh secret key, a throwaway Stripe setup (nothing listens at its
    API base), jobs queued (not run at once) and `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(APP_SETTINGS)}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_hex(32),
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_CONNECT_WEBHOOK_SECRET=WEBHOOK_SECRET,  # required beside a key
        STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
        APP_ENV="development",  # production would want https for the session cookie
        JOBS_IMMEDIATE="0",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


def flask(env: dict[str, str], *args: str) -> str:
    """Run `flask --app app <args>`; its output, or BenchError with it."""
    done = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        flask_command(*args), cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"flask {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def make_app(uri: str, **config: Any) -> Any:
    """The app in this process on the database at `uri`, with a throwaway Stripe setup and
    `config` over it; its log kept quiet (WARNING)."""
    from app import create_app

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": uri,
        "SECRET_KEY": secrets.token_hex(32),
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # nothing listens there
        **config,
    })
    logging.getLogger().setLevel(logging.WARNING)
    return app


def migrate(app: Any) -> None:
    """Build the schema with the migrations, quietly."""
    from flask_migrate import upgrade

    with app.app_context():
        logging.disable(logging.INFO)  # alembic's own logging config would print INFO lines
        try:
            upgrade()
        finally:
            logging.disable(logging.NOTSET)
        logging.getLogger().setLevel(logging.WARNING)


# --- child processes ------------------------------------------------------------------------


class Child:
    """A process this script starts in its own process group, logging to a file; stopped
    by its pid (SIGTERM, then SIGKILL to its group if it will not stop)."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its children go with it
        )

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """The log's lines that report an error or a traceback."""
        return [line for line in self.log_text().splitlines()
                if "ERROR" in line or "Traceback" in line or "CRITICAL" in line]

    def report_problems(self, what: str) -> None:
        """Print the first error of the log with what follows it, if there is one."""
        problems = self.log_problems()
        if problems:
            print(f"  {what}: {len(problems)} error lines in its log, the first with what "
                  "follows:", flush=True)
            lines = self.log_text().splitlines()
            first = lines.index(problems[0])
            for line in lines[first:first + 25]:
                print(f"    {line[:200]}")

    def worker_pids(self) -> list[int]:
        """The process's children (gunicorn's workers), from /proc."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except (OSError, ValueError):
            return []

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the process (all its threads) and its live
        children, from /proc; None where there is no /proc."""
        try:
            ticks = os.sysconf("SC_CLK_TCK")
            total = 0
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            for pid in [self.proc.pid, *(int(p) for p in children.read_text().split())]:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError):
            return None
        return total / ticks

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script started
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Gunicorn(Child):
    """`gunicorn -w 2 -k sync` (the default 30 s worker timeout) serving `target` on a free
    local port (SIGTERM stops its workers gracefully)."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path):
        self.port = free_port()
        super().__init__(
            [
                sys.executable, "-m", "gunicorn",
                "-w", str(WORKERS), "-k", "sync",
                "--timeout", str(WORKER_TIMEOUT),
                "-b", f"127.0.0.1:{self.port}",
                "--log-level", "warning",
                "--chdir", str(ROOT),
                target,
            ],
            env,
            log_path,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until `GET /healthz` answers 200; BenchError if gunicorn exits or it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited early:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"gunicorn not healthy after {timeout:.0f} s:\n{self.log_tail()}")


def rss_kb(pid: int) -> int:
    """The resident memory (VmRSS) of a process in kB, from /proc; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class MemorySampler:
    """Reads the VmRSS of each process `pids()` names every `every` seconds in a thread,
    while in its `with` block; keeps each one's peak."""

    def __init__(self, pids: Callable[[], list[int]], every: float = 0.05):
        self.pids = pids
        self.every = every
        self.peaks: dict[int, int] = {}  # pid → kB
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak_kb(self) -> int:
        return max(self.peaks.values(), default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids():
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss_kb(pid))
            self.samples += 1
            self._stop.wait(self.every)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the client -----------------------------------------------------------------------------

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def login(client: Any, email: str, password: str, base: str = "", **options: Any) -> None:
    """Log `client` in as `email` through the login form, with the page's CSRF token:
    a `requests.Session` (with `base`, the server's address, and `options` such as
    `timeout`) or a Flask test client. BenchError unless the form answers a redirect."""
    page = client.get(f"{base}/auth/login", **options)
    token = CSRF_META.search(page.text)
    if page.status_code != 200 or token is None:
        raise BenchError(f"GET /auth/login: {page.status_code}, no CSRF token")
    answer = client.post(
        f"{base}/auth/login",
        data={"email": email, "password": password, "csrf_token": token.group(1)},
        **options,
    )
    if answer.status_code not in (302, 303):
        raise BenchError(f"login as {email} answered {answer.status_code}, not a redirect")


class StatementCounter:
    """Counts, and times, the statements an engine sends (one request at a time: `reset`
    before each)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.engine = engine
        self.statements = 0
        self.seconds = 0.0
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self.statements += 1
        self._started.append(time.perf_counter())

    def _after(self, *_: Any) -> None:
        if self._started:
            self.seconds += time.perf_counter() - self._started.pop()

    def reset(self) -> None:
        self.statements, self.seconds = 0, 0.0
        self._started.clear()

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


# --- figures --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0-100) of `values`; nan if there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


def fmt_ms(value: float) -> str:
    return f"{value:.1f}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def verdict(ok: bool) -> str:
    """The last word of a summary line."""
    return "OK" if ok else "FAIL"


# --- the command line -----------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser, *, smoke: str, databases: bool = False,
                rounds: bool = False) -> None:
    """--pg-url and --smoke (`smoke` says what its tiny sizes are); --databases
    (sqlite,postgresql) with `databases`; --repeat and --warmup with `rounds`."""
    if databases:
        parser.add_argument("--databases", default="sqlite,postgresql",
                            help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=PG_URL,
                        help="a PostgreSQL server (any database on it) where a scratch "
                             "database may be made")
    if rounds:
        parser.add_argument("--repeat", type=int, default=20, help="timed fetches of each page")
        parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--smoke", action="store_true",
                        help=f"every phase at a tiny size ({smoke}), its counts checked: that "
                             "the script works, not figures")


def database_kinds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The databases --databases names, in its order; a usage error for an unknown one."""
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    unknown = set(kinds) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown databases: {sorted(unknown)}")
    return kinds


def finish(summaries: list[str], failures: list[str]) -> int:
    """Print the summary lines (one per database) and the failures; the exit status."""
    print("\n== summary ==")
    for line in summaries:
        print(line)
    if failures:
        print("\nFAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0
