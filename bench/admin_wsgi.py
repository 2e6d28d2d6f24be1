"""The Coachpact app as gunicorn serves it for the admin console benchmark (`bench/admin.py`).

Settings come from the environment, as in `wsgi.py`; the log is kept quiet
(WARNING). Every SQL statement the app sends is counted, and timed, per
request: a SQLAlchemy `before_cursor_execute` / `after_cursor_execute` listener
on the app's engine. The response carries the figures in two headers:

- `X-Statements`: how many statements the request had executed when the
  response's headers were sent (for a page, all of them; a streamed response,
  such as the CSV export, sends its headers before most of its queries);
- `X-SQL-ms`: the time those statements took, as the driver reported back.

The counter is installed only when `BENCH_COUNT_STATEMENTS=1` is in the
environment (the benchmark sets it); without it this is the plain app, quiet.
A benchmark-only wrapper: the app itself is unchanged. Sync workers serve one
request at a time, so a per-process counter is a per-request counter.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event

from app import create_app
from extensions import db

app = create_app()
logging.getLogger().setLevel(logging.WARNING)

_counts = {"statements": 0, "seconds": 0.0}
_started: list[float] = []


def _before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
            executemany: bool) -> None:
    _counts["statements"] += 1
    _started.append(time.perf_counter())


def _after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
           executemany: bool) -> None:
    if _started:
        _counts["seconds"] += time.perf_counter() - _started.pop()


_inner = app.wsgi_app


def _counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    _counts["statements"], _counts["seconds"] = 0, 0.0
    _started.clear()

    def counting_start_response(status: str, headers: list[tuple[str, str]],
                                exc_info: Any = None) -> Any:
        headers = [
            *headers,
            ("X-Statements", str(_counts["statements"])),
            ("X-SQL-ms", f"{_counts['seconds'] * 1000:.2f}"),
        ]
        return start_response(status, headers, exc_info) if exc_info else start_response(
            status, headers
        )

    return _inner(environ, counting_start_response)


if os.environ.get("BENCH_COUNT_STATEMENTS") == "1":
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", _before)
        event.listen(db.engine, "after_cursor_execute", _after)
    app.wsgi_app = _counted  # type: ignore[method-assign]
