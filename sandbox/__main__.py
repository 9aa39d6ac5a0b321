"""Serve the sandbox: python -m sandbox --port 8790."""
from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from sandbox.app import create_app

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8790)
arguments = parser.parse_args()
run_simple(arguments.host, arguments.port, create_app(), threaded=True)
