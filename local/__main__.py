"""Run the local stack: python -m local [--api-port N] [--sandbox-port N] [--moto-port N]."""
from __future__ import annotations

import sys

from local import stack

stack.configure_logging()
sys.exit(stack.main())
