"""Background jobs on Huey: the queue, built from the app's config, and how tasks run.

The queue is `SqliteHuey`'s storage in a file under `instance/` by default, and
Redis when `REDIS_URL` is set. `JOBS_IMMEDIATE` runs each task at once in the
process that enqueues it (the tests do), through the very same task code.

A task carries only the id of a row of ours ("process event 42"): the durable
state lives in our tables, so a lost or duplicated task costs nothing. Every
task runs inside a fresh app context (its own database session) with a request
context for building links, and periodic sweeps re-enqueue whatever a lost task
left behind.

Consumers: `flask --app app jobs consume` (see the README for production).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any, TypeVar

import click
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup
from huey import Huey, crontab
from huey.api import TaskWrapper
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# One Huey for the process. Tasks register on it when their module is imported,
# which each package's `init_app` does for the job modules it owns (`require_jobs`);
# `init_app` here binds its storage to the app's settings before anything is
# enqueued or consumed.
huey = Huey("coachpact", results=False, utc=True, storage_class=MemoryStorage)
_bound_app: Flask | None = None


def init_app(app: Flask) -> None:
    """Point the queue at the storage the app's settings name."""
    global _bound_app
    config = app.config
    huey.name = config["JOBS_QUEUE_NAME"]
    if config.get("REDIS_URL"):
        huey.storage_class = RedisStorage
        huey.storage_kwargs = {"url": config["REDIS_URL"]}
    else:
        huey.storage_class = SqliteStorage
        huey.storage_kwargs = {"filename": config["JOBS_SQLITE_PATH"], "fsync": False}
    huey.immediate = bool(config["JOBS_IMMEDIATE"])
    huey.storage = huey.create_storage()
    _bound_app = app
    app.extensions["huey"] = huey
    _listen_for_commits()
    app.cli.add_command(_cli)


def backoff(attempts: int, first: timedelta, longest: timedelta = timedelta(hours=1)) -> timedelta:
    """The wait before retrying after `attempts` failures: `first`, doubling, at most
    `longest` (the one backoff of events, mails and transfers)."""
    return min(first * 2 ** min(max(attempts - 1, 0), 16), longest)


@contextmanager
def job_context() -> Iterator[None]:
    """A fresh app context (so a fresh database session) and a request context for links."""
    app = current_app._get_current_object() if has_app_context() else _bound_app  # type: ignore[attr-defined]
    if app is None:
        raise RuntimeError("jobs.init_app(app) was not called")
    with app.app_context(), app.test_request_context(base_url=app.config["APP_BASE_URL"]):
        yield


def task(**options: Any) -> Callable[[F], TaskWrapper]:
    """Declare a job; it runs inside `job_context`."""

    def decorate(fn: F) -> TaskWrapper:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with job_context():
                return fn(*args, **kwargs)

        return huey.task(name=fn.__name__, **options)(run)  # huey adds the module

    return decorate


def periodic(schedule: Callable[..., bool]) -> Callable[[F], TaskWrapper]:
    """Declare a periodic job (`schedule` as made by `every_minute`, `hourly_at`...)."""

    def decorate(fn: F) -> TaskWrapper:
        @functools.wraps(fn)
        def run() -> Any:
            with job_context():
                return fn()

        return huey.periodic_task(schedule, name=fn.__name__)(run)

    return decorate


def require_jobs(*modules: ModuleType) -> list[str]:
    """The names of the jobs `modules` define, each checked to be on the queue.

    Huey registers a task when the module defining it is imported (the `task` and
    `periodic` decorators above run then), so importing a job module is what
    registers its jobs. Each package's `init_app` imports the job modules it owns
    and names them here, so their jobs never depend on some other module happening
    to import them; a module named there that no longer defines a job is refused
    instead of passing unnoticed.
    """
    names = []
    for module in modules:
        own = [
            value
            for value in vars(module).values()
            if isinstance(value, TaskWrapper)
            and value.huey is huey
            and getattr(value.func, "__module__", None) == module.__name__
        ]
        if not own:
            raise RuntimeError(f"{module.__name__} defines no job; take it off its init_app's list")
        for wrapper in own:
            name = huey._registry.task_to_string(wrapper.task_class)
            if name not in huey._registry._registry:
                raise RuntimeError(f"job {name} is not registered on the queue")
            names.append(name)
    return names


def every_minute() -> Callable[..., bool]:
    return crontab()


def every_minutes(minutes: int) -> Callable[..., bool]:
    """Every `minutes` minutes, on the clock's multiples of it (a divisor of 60)."""
    return crontab(minute=f"*/{minutes}")


def hourly_at(minute: int) -> Callable[..., bool]:
    return crontab(minute=str(minute))


def daily_at(hour: int, minute: int) -> Callable[..., bool]:
    """Once a day at `hour`:`minute` UTC (the queue runs on UTC)."""
    return crontab(minute=str(minute), hour=str(hour))


def enqueue(job: TaskWrapper, *args: Any, delay: timedelta | None = None) -> bool:
    """Put `job(*args)` on the queue; False (logged) if the queue cannot be reached.

    Never raises: what a job would do is recorded in our tables first, and the
    sweeps enqueue it again later.
    """
    try:
        if delay is not None and delay > timedelta(0):
            job.schedule(args=args, delay=delay.total_seconds())
        else:
            job(*args)
    except Exception:  # any storage failure: the sweep will find the row
        log.exception("could not enqueue %s%r; the sweep will retry", job.name, args)
        return False
    return True


def overdue_ids(model: Any, waiting: Any, grace: timedelta, limit: int = 1000) -> list[int]:
    """Ids of `model` rows in status `waiting` due more than `grace` ago: their job was lost.

    For the sweeps. `model` has `status` and `next_attempt_at` columns.
    """
    from clock import now
    from extensions import db

    return list(
        db.session.scalars(
            select(model.id)
            .where(model.status == waiting, model.next_attempt_at <= now() - grace)
            .order_by(model.next_attempt_at)
            .limit(limit)
        )
    )


_AFTER_COMMIT = "jobs_after_commit"


class RowId:
    """The primary key of a row added in this transaction, for a job's argument: read at
    commit, when the flush has given it one, so the caller need not flush to learn it (and
    the transaction's inserts go out together, several rows per statement)."""

    __slots__ = ("row",)

    def __init__(self, row: Any) -> None:
        self.row = row

    def value(self) -> Any:
        """The key, or None for a row that never reached the database (a savepoint rolled
        back with it in)."""
        identity = inspect(self.row).identity  # kept after commit; reading it loads nothing
        return None if identity is None else identity[0]


def enqueue_after_commit(session: Any, job: TaskWrapper, *args: Any, batch: bool = False) -> None:
    """Enqueue `job(*args)` once `session`'s transaction commits; never if it rolls back.

    A `RowId` argument becomes that row's primary key at commit. With `batch`, every call
    for `job` in the transaction becomes one job given all their arguments
    (`job(*first, *second, ...)`): one mail job sends everything a transaction queued,
    over one connection.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append((job, args, batch))


def _after_commit(session: Any) -> None:
    # SQLAlchemy also reports a savepoint released (`begin_nested`) as a commit; the
    # jobs wait for the real one, or a rollback after it would leave them sent.
    if session.in_nested_transaction():
        return
    calls: list[tuple[TaskWrapper, list[Any]]] = []
    batches: dict[str, list[Any]] = {}
    for job, given, batch in session.info.pop(_AFTER_COMMIT, []):
        args = _resolved(given)
        if args is None:
            continue
        if batch and job.name in batches:
            batches[job.name].extend(args)
            continue
        calls.append((job, list(args)))
        if batch:
            batches[job.name] = calls[-1][1]
    for job, args in calls:
        enqueue(job, *args)


def _resolved(given: tuple[Any, ...]) -> list[Any] | None:
    """The arguments with each `RowId` read; a row that was rolled back drops out, and a
    call left with none of its rows is no call (None)."""
    read = [(arg.value(), True) if isinstance(arg, RowId) else (arg, False) for arg in given]
    rows = [value for value, is_row in read if is_row]
    if rows and all(value is None for value in rows):
        return None
    return [value for value, is_row in read if not (is_row and value is None)]


def _after_rollback(session: Any, transaction: Any = None) -> None:
    # A savepoint rolled back leaves the transaction (and what it queued) going on.
    if transaction is not None and transaction.parent is not None:
        return
    session.info.pop(_AFTER_COMMIT, None)


def _listen_for_commits() -> None:
    """Run the after-commit queue of every SQLAlchemy session (hooked once per process)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _after_rollback)


_cli = AppGroup("jobs", help="Background jobs.")


@_cli.command("consume")
@click.option("--workers", default=2, show_default=True, help="worker threads")
@click.option(
    "--periodic/--no-periodic",
    default=True,
    show_default=True,
    help="run the periodic sweeps here; enable on exactly one consumer",
)
def consume(workers: int, periodic: bool) -> None:
    """Run a job consumer until stopped (SIGINT finishes running jobs; SIGTERM stops at once)."""
    if huey.immediate:
        raise click.UsageError("JOBS_IMMEDIATE is set: jobs run where they are enqueued.")
    # An idle consumer polls the SQLite queue at most every second (Huey's default backs
    # off to ten); Redis blocks on the queue instead of polling.
    consumer = huey.create_consumer(
        workers=workers,
        worker_type="thread",
        periodic=periodic,
        check_worker_health=True,
        max_delay=1.0,
    )
    consumer.run()
