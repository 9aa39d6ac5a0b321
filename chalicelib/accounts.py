"""C1: console accounts: sign up and sign in, both throttled; sessions that expire and revoke."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib import passwords, settings, throttle
from chalicelib.errors import Conflict, InvalidCredentials, InvalidField, TooManyAttempts, Unauthenticated
from chalicelib.models.accounts import Account, Session, UniqueClaim
from chalicelib.models.base import condition_failed, now, transaction

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,}$")
PASSWORD_MIN, PASSWORD_MAX = 10, 256
TOKEN_PREFIX = "cps_"


def _clean_email(raw) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidField("email", "email is required")
    email = raw.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidField("email", "email is not a valid address")
    return email


def _clean_password(raw) -> str:
    if not isinstance(raw, str) or not raw:
        raise InvalidField("password", "password is required")
    if not PASSWORD_MIN <= len(raw) <= PASSWORD_MAX:
        raise InvalidField("password", f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return raw


def _clean_display_name(raw, email: str) -> str:
    if raw is None:
        return email.split("@")[0]
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > 64:
        raise InvalidField("display_name", "display_name must be 1 to 64 characters")
    return raw.strip()


def _take_attempt(key: str, limit: int, window_seconds: int, at: int, what: str) -> throttle.Taken:
    try:
        return throttle.take(key, limit, window_seconds, at)
    except throttle.LimitReached as refused:
        raise TooManyAttempts(f"too many {what}; try again in {refused.retry_after} seconds",
                              headers={"Retry-After": str(refused.retry_after)}) from None


def sign_up(email, password, display_name=None, source_ip: str | None = None) -> Account:
    """Throttled per source IP and per email, since `409 email_taken` tells which emails have
    accounts; `source_ip` is None only for the platform's own scripts (demo, benchmarks)."""
    email = _clean_email(email)
    password = _clean_password(password)
    name = _clean_display_name(display_name, email)
    config, at = settings.current(), now()
    if source_ip:
        _take_attempt(f"sign-up ip {source_ip}", config.sign_up_max_per_ip, config.sign_up_window_seconds, at,
                      "sign-ups from this address")
    _take_attempt(f"sign-up email {email}", config.sign_up_max_per_email, config.sign_up_window_seconds, at,
                  "sign-ups with this email")
    account = Account(account_id="acct_" + secrets.token_hex(10), email=email, display_name=name,
                      password_hash=passwords.hash_password(password), created_at=now(),
                      wechat_binding_count=0)
    claim = UniqueClaim(claim=f"email#{email}", owner_id=account.account_id, created_at=account.created_at)
    try:
        with transaction() as tx:
            tx.save(claim, condition=UniqueClaim.claim.does_not_exist())
            tx.save(account, condition=Account.account_id.does_not_exist())
    except TransactWriteError as exc:
        if condition_failed(exc):
            raise Conflict("an account with this email already exists", param="email",
                           code="email_taken") from None
        raise
    return account


@dataclass(frozen=True)
class IssuedSession:
    token: str
    session: Session
    account: Account


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _upgrade_hash(account: Account, password: str) -> None:
    """Re-hash at the current work factor after a successful sign-in (the only time the
    password is known); only if the stored hash is still the one just verified."""
    if not passwords.needs_rehash(account.password_hash):
        return
    try:
        account.update(actions=[Account.password_hash.set(passwords.hash_password(password))],
                       condition=Account.password_hash == account.password_hash)
    except UpdateError as exc:
        if not condition_failed(exc):  # changed meanwhile (upgraded by a parallel sign-in): keep that
            raise


def sign_in(email, password) -> IssuedSession:
    """The attempt is counted before the password is checked (see throttle): a burst of guesses
    gets at most `login_max_failures` checks, and the failure that reaches it locks the email."""
    email = _clean_email(email)
    if not isinstance(password, str) or not password:
        raise InvalidField("password", "password is required")
    config, at = settings.current(), now()
    taken = _take_attempt(email, config.login_max_failures, config.login_lockout_seconds, at, "failed sign-ins")
    try:
        claim = UniqueClaim.get(f"email#{email}")
        account = Account.get(claim.owner_id)
        stored = account.password_hash
    except DoesNotExist:
        account, stored = None, passwords.unknown_account_hash()
    if not passwords.verify_password(password, stored) or account is None:
        if taken.number >= config.login_max_failures:
            throttle.lock(taken, at)
        raise InvalidCredentials("email or password is wrong")
    throttle.give_back(taken)
    _upgrade_hash(account, password)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ttl = config.session_ttl_seconds
    session = Session(token_hash=_token_hash(token), account_id=account.account_id, created_at=at,
                      expires_at=at + ttl, purge_at=at + ttl + 86400)
    session.save(condition=Session.token_hash.does_not_exist())
    return IssuedSession(token, session, account)


@dataclass(frozen=True)
class Caller:
    """Who is calling the console: resolved by the authorizer from the bearer token."""

    account_id: str
    session_hash: str
    wechat_bound: bool


def authenticate(authorization: str | None) -> Caller:
    """Resolve an `Authorization: Bearer cps_...` header to its caller, or say why not."""
    if not authorization:
        raise Unauthenticated("sign in first: the Authorization header is missing",
                              code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("the Authorization header must be 'Bearer <session token>'",
                              code="invalid_token")
    try:
        session = Session.get(_token_hash(token))
    except DoesNotExist:
        raise Unauthenticated("the session token is not valid", code="invalid_token") from None
    if session.revoked_at:
        raise Unauthenticated("the session was signed out", code="session_revoked")
    if session.expires_at <= now():
        raise Unauthenticated("the session has expired; sign in again", code="session_expired")
    account = Account.get(session.account_id)
    return Caller(account.account_id, session.token_hash, account.wechat_binding_count > 0)


def sign_out(session_hash: str) -> None:
    Session(session_hash).update(actions=[Session.revoked_at.set(now())],
                                 condition=Session.token_hash.exists())


def get_account(account_id: str) -> Account:
    return Account.get(account_id)
