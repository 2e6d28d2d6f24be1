"""The Coachpact app as gunicorn serves it for the webhook benchmark.

Settings come from the environment, as in `wsgi.py`. The app configures INFO
logging for development; the benchmark keeps the log quiet (WARNING), so the
per-request log lines the development mailer writes are not part of the figures.

With `BENCH_PROFILE_DIR` set, every request runs under cProfile and each worker
writes its cumulative profile to that folder (`app-<pid>.prof`).
"""

from __future__ import annotations

import atexit
import cProfile
import logging
import os

from app import create_app

app = create_app(migrations=False)  # as wsgi.py builds it
logging.getLogger().setLevel(logging.WARNING)

_profile_dir = os.environ.get("BENCH_PROFILE_DIR")
if _profile_dir:
    _inner = app.wsgi_app
    _profiler = cProfile.Profile()
    _out = os.path.join(_profile_dir, f"app-{os.getpid()}.prof")
    _seen = [0]

    def _profiled(environ, start_response):
        _profiler.enable()
        try:
            return list(_inner(environ, start_response))
        finally:
            _profiler.disable()
            _seen[0] += 1
            if _seen[0] % 100 == 0:  # workers may be killed: keep the file current
                _profiler.dump_stats(_out)

    app.wsgi_app = _profiled  # type: ignore[method-assign]
    atexit.register(lambda: _profiler.dump_stats(_out))
