"""Demo data for the local stack: a console account to sign in with straight away.

Created through the domain code, not written into the tables, so it is a real account
that obeys the same rules (hashing, unique email) as one signed up in the console.
"""
from __future__ import annotations

DEMO_EMAIL = "demo@cloudpay.local"
DEMO_PASSWORD = "cloudpay-demo-2026"
DEMO_DISPLAY_NAME = "Demo"


def ensure_demo_account() -> bool:
    """Sign the demo account up unless it exists; True if it was created now.

    chalicelib is imported here, not at the top, because its models read their table names
    from the environment at import, and the stack sets that environment first.
    """
    from chalicelib import accounts
    from chalicelib.errors import Conflict

    try:
        accounts.sign_up(DEMO_EMAIL, DEMO_PASSWORD, DEMO_DISPLAY_NAME)
    except Conflict:
        return False
    return True
