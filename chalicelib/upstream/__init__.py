"""One httpx client module per external system; each protocol's signing lives in its module."""
