"""C1: console accounts: sign up, sign in with a throttle, sessions that expire and revoke."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError

from chalicelib import passwords, settings
from chalicelib.errors import Conflict, InvalidCredentials, InvalidField, TooManyAttempts, Unauthenticated
from chalicelib.models.accounts import Account, LoginAttempts, Session, UniqueClaim
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


def sign_up(email, password, display_name=None) -> Account:
    email = _clean_email(email)
    password = _clean_password(password)
    name = _clean_display_name(display_name, email)
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


def _check_not_locked(email: str, at: int) -> None:
    try:
        attempts = LoginAttempts.get(email)
    except DoesNotExist:
        return
    if attempts.locked_until > at:
        retry_after = attempts.locked_until - at
        raise TooManyAttempts(f"too many failed sign-ins; try again in {retry_after} seconds",
                              headers={"Retry-After": str(retry_after)})


def _record_failure(email: str, at: int) -> None:
    """Count a failure in the current window; lock the email when the count reaches the limit.

    Both writes are conditional, so concurrent failures are all counted.
    """
    config = settings.current()
    window = config.login_lockout_seconds
    purge_at = at + 2 * window
    try:
        attempts = LoginAttempts(email)
        attempts.update(actions=[LoginAttempts.failures.add(1), LoginAttempts.purge_at.set(purge_at)],
                        condition=LoginAttempts.window_started_at > at - window)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        attempts = LoginAttempts(email=email, failures=1, window_started_at=at, locked_until=0,
                                 purge_at=purge_at)
        try:
            attempts.save(condition=LoginAttempts.email.does_not_exist()
                          | (LoginAttempts.window_started_at <= at - window))
        except PutError as exc:
            if not condition_failed(exc):
                raise
            return _record_failure(email, at)
    if attempts.failures >= config.login_max_failures:
        attempts.update(actions=[LoginAttempts.locked_until.set(at + window)])


def sign_in(email, password) -> IssuedSession:
    email = _clean_email(email)
    if not isinstance(password, str) or not password:
        raise InvalidField("password", "password is required")
    at = now()
    _check_not_locked(email, at)
    try:
        claim = UniqueClaim.get(f"email#{email}")
        account = Account.get(claim.owner_id)
        stored = account.password_hash
    except DoesNotExist:
        account, stored = None, passwords.unknown_account_hash()
    if not passwords.verify_password(password, stored) or account is None:
        _record_failure(email, at)
        raise InvalidCredentials("email or password is wrong")
    LoginAttempts(email).delete()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ttl = settings.current().session_ttl_seconds
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
