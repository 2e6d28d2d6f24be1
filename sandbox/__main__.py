"""`python -m sandbox --port 12111`: serve the sandbox with werkzeug (threaded)."""

from __future__ import annotations

import argparse
import logging

from werkzeug.serving import run_simple

from sandbox.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app()
    try:
        run_simple(args.host, args.port, app, threaded=True)
    finally:
        app.extensions["sandbox"].close()


if __name__ == "__main__":
    main()
