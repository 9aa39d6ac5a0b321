"""The sandbox's state: its clock, WeChat users, OAuth codes, and the generated 买单 data.

买单 data of any size is generated from a seed, never stored: provider i and its admin are
a function of (seed, i), so 50 providers with 20,000 sub-merchants cost no memory.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

from sandbox.faults import Faults
from sandbox.notifier import Notifier


def _digest_id(prefix: str, *parts: str, length: int = 27) -> str:
    raw = hashlib.sha256("|".join(parts).encode()).digest()
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")[:length]


class Clock:
    """Real time plus an offset that tests and demos can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class WechatUser:
    user_id: str
    nickname: str
    maidan_status: str  # ADMIN | NOT_ADMIN | NOT_OPENED
    unionid: str = ""

    def openid(self, app_id: str) -> str:
        return _digest_id("o", app_id, self.user_id)


@dataclass(frozen=True)
class MaidanProvider:
    index: int
    sp_mchid: str
    name: str
    admin_user_id: str


@dataclass
class SandboxConfig:
    wechat_app_id: str = "wx0123456789abcdef"
    wechat_app_secret: str = "sandbox-wechat-app-secret-0000000"
    maidan_partner_id: str = "cloudpay-sandbox"
    maidan_api_key: str = "sandbox-maidan-api-key-0123456789abcdef"
    seed: int = 1
    providers: int = 50
    sub_merchants: int = 20000
    in_process: bool = False
    """True when mounted in a test's httpx transport: faults then time out without waiting."""


@dataclass
class OAuthCode:
    app_id: str
    user_id: str
    issued_at: float
    used: bool = False


@dataclass
class World:
    config: SandboxConfig
    clock: Clock = field(default_factory=Clock)
    users: dict = field(default_factory=dict)
    oauth_codes: dict = field(default_factory=dict)
    seen_nonces: dict = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    components: dict = field(default_factory=dict)
    notifier: Notifier = field(init=False)
    faults: Faults = field(init=False)

    def component(self, name: str, factory):
        """Per-system state (orders, refunds, keys...) that a blueprint keeps in the world."""
        with self.lock:
            if name not in self.components:
                self.components[name] = factory(self)
            return self.components[name]

    def __post_init__(self) -> None:
        self.notifier = Notifier(self.clock)
        self.faults = Faults(in_process=self.config.in_process)
        for index in range(self.admin_count):
            self.add_user(f"admin-{index + 1:02d}", f"买单管理员{index + 1:02d}", "ADMIN")
        self.add_user("staff-01", "店员小王（已开通助手，非管理员）", "NOT_ADMIN")
        self.add_user("guest-01", "路人小李（未开通助手）", "NOT_OPENED")

    @property
    def admin_count(self) -> int:
        return max(1, self.config.providers // 5)

    def add_user(self, user_id: str, nickname: str, maidan_status: str) -> WechatUser:
        with self.lock:
            user = WechatUser(user_id, nickname, maidan_status,
                              unionid=_digest_id("o", "unionid", str(self.config.seed), user_id))
            self.users[user_id] = user
            return user

    def create_user(self, nickname: str, maidan_status: str) -> WechatUser:
        return self.add_user(f"user-{secrets.token_hex(4)}", nickname, maidan_status)

    def user_by_unionid(self, unionid: str) -> WechatUser | None:
        return next((u for u in self.users.values() if u.unionid == unionid), None)

    # --- 买单 providers, generated -------------------------------------------------------

    def provider(self, index: int) -> MaidanProvider:
        return MaidanProvider(index=index, sp_mchid=f"19{self.config.seed % 100:02d}{index:06d}",
                              name=f"演示服务商{index + 1:02d}",
                              admin_user_id=f"admin-{index % self.admin_count + 1:02d}")

    def providers_of(self, user_id: str) -> list[MaidanProvider]:
        if not user_id.startswith("admin-"):
            return []
        admin = int(user_id.split("-")[1]) - 1
        return [self.provider(i) for i in range(admin, self.config.providers, self.admin_count)]

    # --- WeChat OAuth codes ----------------------------------------------------------------

    def issue_oauth_code(self, app_id: str, user_id: str) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.oauth_codes[code] = OAuthCode(app_id, user_id, self.clock.now())
        return code

    def accept_nonce(self, nonce: str, now: float) -> bool:
        """False when the nonce was seen in the last 10 minutes (a replayed request)."""
        with self.lock:
            for old, at in list(self.seen_nonces.items()):
                if now - at > 600:
                    del self.seen_nonces[old]
            if nonce in self.seen_nonces:
                return False
            self.seen_nonces[nonce] = now
            return True
