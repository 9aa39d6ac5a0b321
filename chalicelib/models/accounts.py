"""Console accounts, their sessions, sign-in throttling, and claims on unique values."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class Account(Model):
    Meta = table_meta("accounts_table")

    account_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute()
    display_name = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    created_at = NumberAttribute()
    # Kept in step with the WechatBinding items by the same transaction, so the gate is
    # one read and "never unbind the last one" is one condition.
    wechat_binding_count = NumberAttribute(default=0)


class UniqueClaim(Model):
    """One item per value that must be unique across the platform (e.g. `email#a@b.c`).

    Written in the same transaction as the record that owns it, so two sign-ups with one
    email cannot both succeed.
    """

    Meta = table_meta("unique_claims_table")

    claim = UnicodeAttribute(hash_key=True)
    owner_id = UnicodeAttribute()
    created_at = NumberAttribute()


class Session(Model):
    """A console session. The token itself is never stored, only its SHA-256."""

    Meta = table_meta("sessions_table")

    token_hash = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute()
    created_at = NumberAttribute()
    expires_at = NumberAttribute()
    revoked_at = NumberAttribute(null=True)
    purge_at = NumberAttribute()  # DynamoDB TTL


class AttemptCounter(Model):
    """Attempts counted per key in a time window (chalicelib/throttle.py), in the login-attempts
    table: a sign-in's key is the email (known or not, so both answer alike); other keys
    contain a space (`sign-up ip 1.2.3.4`, `oauth-state <hash>`), which no email can."""

    Meta = table_meta("login_attempts_table")

    key = UnicodeAttribute(hash_key=True, attr_name="email")
    attempts = NumberAttribute(default=0)
    """Taken in this window: in flight or failed (a sign-in that succeeds gives its own back)."""
    window_started_at = NumberAttribute()
    locked_until = NumberAttribute(default=0)
    purge_at = NumberAttribute()  # DynamoDB TTL


class Counter(Model):
    """A monotonic counter kept in the unique-claims table (e.g. `counter#order_prefix`):
    ADD is atomic, so every caller gets a number no one else ever gets."""

    Meta = table_meta("unique_claims_table")

    claim = UnicodeAttribute(hash_key=True)
    value = NumberAttribute(default=0)
