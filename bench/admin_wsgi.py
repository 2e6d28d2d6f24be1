"""The Coachpact app as gunicorn serves it for the admin console benchmark (`bench/admin.py`).

Settings come from the environment, as in `wsgi.py`; the log is kept quiet
(WARNING). Every SQL statement the app sends is counted, and timed, per
request (`bench.kit.StatementCounter`: a SQLAlchemy `before_cursor_execute` /
`after_cursor_execute` listener on the app's engine). The response carries the
figures in headers:

- `X-Statements`: how many statements the request had executed when the
  response's headers were sent (for a page, all of them; a streamed response,
  such as the CSV export, sends its headers before most of its queries);
- `X-SQL-ms`: the time those statements took, as the driver reported back;
- `X-Worker-Pid`: the worker that served the request (whose memory the
  benchmark reads during the export).

The counter is installed only when `BENCH_COUNT_STATEMENTS=1` is in the
environment (the benchmark sets it); without it this is the plain app, quiet.
A benchmark-only wrapper: the app itself is unchanged. Sync workers serve one
request at a time, so a per-process counter is a per-request counter.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from app import create_app
from bench.kit import StatementCounter
from extensions import db

app = create_app(migrations=False)  # as wsgi.py builds it
logging.getLogger().setLevel(logging.WARNING)

_inner = app.wsgi_app


def _counting(counter: StatementCounter) -> Callable[..., Iterable[bytes]]:
    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        counter.reset()

        def counting_start_response(status: str, headers: list[tuple[str, str]],
                                    exc_info: Any = None) -> Any:
            headers = [
                *headers,
                ("X-Statements", str(counter.statements)),
                ("X-SQL-ms", f"{counter.seconds * 1000:.2f}"),
                ("X-Worker-Pid", str(os.getpid())),
            ]
            return start_response(status, headers, exc_info) if exc_info else start_response(
                status, headers
            )

        return _inner(environ, counting_start_response)
    return counted


if os.environ.get("BENCH_COUNT_STATEMENTS") == "1":
    with app.app_context():
        app.wsgi_app = _counting(StatementCounter(db.engine))  # type: ignore[method-assign]
