"""The sandbox's state: its clock, WeChat users, OAuth codes, and the generated 买单 data.

买单 data of any size is generated from a seed, never stored: provider i and its admin are
a function of (seed, i), and sub-merchant j of provider i a function of (seed, i, j), so 50
providers with 20,000 sub-merchants cost no memory. Only what tests change (a mch id
opening or closing 买单) is stored, as an override.
"""
from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.faults import Faults
from sandbox.notifier import Notifier


def _digest_id(prefix: str, *parts: str, length: int = 27) -> str:
    raw = hashlib.sha256("|".join(parts).encode()).digest()
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")[:length]


def _units(*parts: object) -> list[float]:
    """Eight numbers in [0, 1) fixed by `parts`: the sandbox's only source of variety (one
    hash gives all that a generated record needs)."""
    raw = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return [int.from_bytes(raw[i:i + 4], "big") / 2 ** 32 for i in range(0, 32, 4)]


def _pick(options: tuple[str, ...], unit: float) -> str:
    return options[int(unit * len(options))]


_SHOP_OWNERS = ("老王", "阿香", "小李", "金牌", "福满", "好运", "鲜丰", "一品", "川味", "江南", "老街", "悦来")
_SHOP_KINDS = ("面馆", "咖啡", "便利店", "水果店", "烘焙", "奶茶", "火锅", "花店", "书店", "药房", "洗衣店", "粥铺")
_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙")
_GIVEN_NAMES = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟")
_EPOCH_2023 = 1672531200  # 2023-01-01T00:00:00Z: generated merchants were created in 2023
_NOT_OPENED_EVERY = 7  # every 7th generated sub-merchant has not opened 买单
_RSA_KEYS: list[rsa.RSAPrivateKey] = []
"""Every RSA key a world of this process drew so far (see World.new_rsa_key)."""
_RSA_KEYS_LOCK = threading.Lock()


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
    subscribed: bool = True
    """Follows the platform's official account: WeChat delivers template messages only then."""
    shares_profile: bool = True
    """False: /sns/userinfo answers WeChat's placeholder nickname "微信用户" and a grey avatar."""

    def openid(self, app_id: str) -> str:
        return _digest_id("o", app_id, self.user_id)


@dataclass(frozen=True)
class MaidanProvider:
    index: int
    sp_mchid: str
    name: str
    admin_user_id: str


@dataclass(frozen=True)
class MaidanSubMerchant:
    provider_index: int
    number: int  # position within its provider's list, from 0
    sub_mchid: str
    name: str
    short_name: str
    admin_name: str
    admin_email: str
    admin_phone: str
    logo_url: str
    opened_maidan: bool
    opened_at: float | None
    updated_at: float


@dataclass
class SandboxConfig:
    wechat_app_id: str = "wx0123456789abcdef"
    wechat_app_secret: str = "5f1d3c0a9e8b7a6f5e4d3c2b1a0f9e8d"
    maidan_partner_id: str = "cloudpay-sandbox"
    maidan_api_key: str = "sandbox-maidan-api-key-0123456789abcdef"
    seed: int = 1
    providers: int = 50
    sub_merchants: int = 20000
    in_process: bool = False
    maidan_page_latency_seconds: float = 0.0
    """How long each page of sub-merchants takes to answer (benchmarks fix it)."""
    """True when mounted in a test's httpx transport: faults then time out without waiting."""


@dataclass
class OAuthCode:
    app_id: str
    user_id: str
    issued_at: float
    scope: str = "snsapi_base"
    """What the authorize URL asked for; the token exchanged for this code carries it."""
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
    maidan_openings: dict = field(default_factory=dict)
    """mch id -> (opened, at): what tests changed; everything else is generated."""
    broken_maidan_pages: set = field(default_factory=set)
    """(sp_mchid, offset) of sub-merchant pages that always answer SYSTEM_ERROR (a poison page)."""
    maidan_renamed_at: float | None = None
    """When set, 买单 reports every sub-merchant renamed at that time (a re-sync that updates all)."""
    official_accounts: dict = field(default_factory=dict)
    """appid -> AppSecret of every official account WeChat knows: the platform's (config) and
    the ones tests register for providers (a provider's sp_appid issues its own openids)."""
    wechatpay_sub_merchants: dict = field(default_factory=dict)
    """sp_mchid -> sub_mchids it may act for (受理关系), beyond each generated 买单 provider's own."""
    wechatpay_appids: dict = field(default_factory=dict)
    """sp_mchid -> appids bound to it (APPID 绑定): the only sp_appids its orders may name."""
    rsa_keys_drawn: int = 0
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
        self.official_accounts[self.config.wechat_app_id] = self.config.wechat_app_secret
        for index in range(self.admin_count):
            self.add_user(f"admin-{index + 1:02d}", f"买单管理员{index + 1:02d}", "ADMIN")
        self.add_user("staff-01", "店员小王（已开通助手，非管理员）", "NOT_ADMIN")
        self.add_user("guest-01", "路人小李（未开通助手）", "NOT_OPENED")

    def new_rsa_key(self) -> rsa.RSAPrivateKey:
        """A 2048-bit RSA key that no other key of this world equals (WeChat Pay's and Alipay's
        platform keys, each merchant's and app's key, a forger's key).

        Generating one costs ~60 ms of CPU, and the test suite makes a world per test: so the
        n-th key a world draws is the n-th key of a process-wide list, generated the first time
        any world needs it. Within a world every key is still distinct; a process with one
        world (the local stack) gets freshly generated keys exactly as before."""
        with self.lock:
            position = self.rsa_keys_drawn
            self.rsa_keys_drawn += 1
        with _RSA_KEYS_LOCK:
            while len(_RSA_KEYS) <= position:
                _RSA_KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
            return _RSA_KEYS[position]

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

    def user_by_openid(self, app_id: str, openid: str) -> WechatUser | None:
        return next((u for u in self.users.values() if u.openid(app_id) == openid), None)

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

    def provider_by_sp_mchid(self, sp_mchid: str) -> MaidanProvider | None:
        prefix = f"19{self.config.seed % 100:02d}"
        if len(sp_mchid) != 10 or not sp_mchid.isdigit() or not sp_mchid.startswith(prefix):
            return None
        index = int(sp_mchid[4:])
        return self.provider(index) if index < self.config.providers else None

    # --- 买单 sub-merchants, generated -----------------------------------------------------

    @cached_property
    def _sub_merchant_offsets(self) -> list[int]:
        """Where each provider's sub-merchants start in one global numbering (plus the total).

        Shares are deliberately uneven (a cubed random weight: a few providers hold most
        merchants, some hold none) and rounded by largest remainder, so they sum exactly to
        `config.sub_merchants`. O(providers), computed once.
        """
        total, count = self.config.sub_merchants, self.config.providers
        if total > 999_999:
            raise ValueError("the sandbox numbers at most 999,999 sub-merchants (6 digits of sub_mchid)")
        weights = [0.02 + _units("share", self.config.seed, i)[0] ** 3 for i in range(count)]
        shares = [total * w / sum(weights) for w in weights]
        counts = [int(share) for share in shares]
        by_remainder = sorted(range(count), key=lambda i: (counts[i] - shares[i], i))
        for i in by_remainder[:total - sum(counts)]:
            counts[i] += 1
        return list(itertools.accumulate(counts, initial=0))

    def sub_merchant_count(self, provider_index: int) -> int:
        offsets = self._sub_merchant_offsets
        return offsets[provider_index + 1] - offsets[provider_index]

    def sub_merchant(self, provider_index: int, number: int) -> MaidanSubMerchant:
        """Sub-merchant `number` of provider `provider_index`, in O(1)."""
        seed = self.config.seed
        serial = self._sub_merchant_offsets[provider_index] + number
        sub_mchid = f"16{seed % 100:02d}{serial:06d}"
        owner, kind, created, updated, surname, given, phone, _ = _units("sub-merchant", seed, serial)
        short_name = _pick(_SHOP_OWNERS, owner) + _pick(_SHOP_KINDS, kind)
        created_at = _EPOCH_2023 + int(created * 365 * 86400)
        generated_at = created_at + int(updated * 30 * 86400)
        opened, opened_at = serial % _NOT_OPENED_EVERY != _NOT_OPENED_EVERY - 1, float(created_at)
        updated_at = float(generated_at)
        if sub_mchid in self.maidan_openings:
            opened, changed_at = self.maidan_openings[sub_mchid]
            opened_at, updated_at = (changed_at if opened else None), changed_at
        elif not opened:
            opened_at = None
        renamed = ""
        if self.maidan_renamed_at is not None:
            renamed, updated_at = "（新）", max(updated_at, self.maidan_renamed_at)
        return MaidanSubMerchant(
            provider_index=provider_index, number=number, sub_mchid=sub_mchid,
            name=f"{short_name}（{self.provider(provider_index).name}·{number + 1}号店）{renamed}",
            short_name=short_name,
            admin_name=_pick(_SURNAMES, surname) + _pick(_GIVEN_NAMES, given),
            admin_email=f"m{sub_mchid}@merchants.example.com",
            admin_phone=f"13{int(phone * 10 ** 9):09d}",
            logo_url=f"https://img.example.com/maidan/logos/{sub_mchid}.png",
            opened_maidan=opened, opened_at=opened_at, updated_at=updated_at)

    def sub_merchant_by_mchid(self, sub_mchid: str) -> MaidanSubMerchant | None:
        prefix = f"16{self.config.seed % 100:02d}"
        if len(sub_mchid) != 10 or not sub_mchid.isdigit() or not sub_mchid.startswith(prefix):
            return None
        serial = int(sub_mchid[4:])
        offsets = self._sub_merchant_offsets
        if serial >= offsets[-1]:
            return None
        provider_index = bisect.bisect_right(offsets, serial) - 1
        return self.sub_merchant(provider_index, serial - offsets[provider_index])

    def maidan_opening(self, mchid: str) -> tuple[bool, float | None]:
        """(opened, opened_at) of any WeChat mch id: a mch id 买单 never saw has not opened."""
        generated = self.sub_merchant_by_mchid(mchid)
        if generated is not None:
            return generated.opened_maidan, generated.opened_at
        opened, at = self.maidan_openings.get(mchid, (False, None))
        return opened, (at if opened else None)

    def set_maidan_opened(self, mchid: str, opened: bool = True) -> None:
        """Make `mchid` open (or close) 买单 now, as its owner would in WeChat."""
        with self.lock:
            self.maidan_openings[mchid] = (opened, self.clock.now())

    def add_official_account(self, app_id: str | None = None) -> tuple[str, str]:
        """(appid, AppSecret) of an official account, created when new (a random appid if none given)."""
        with self.lock:
            app_id = app_id or "wx" + secrets.token_hex(8)
            secret = self.official_accounts.setdefault(app_id, secrets.token_hex(16))
            return app_id, secret

    # --- WeChat Pay: who may act for whom, which appids a merchant may name ----------------

    def add_wechatpay_sub_merchant(self, sp_mchid: str, sub_mchid: str) -> None:
        """Make `sub_mchid` a sub-merchant of service provider `sp_mchid` (受理关系)."""
        with self.lock:
            self.wechatpay_sub_merchants.setdefault(sp_mchid, set()).add(sub_mchid)

    def is_wechatpay_sub_merchant(self, sp_mchid: str, sub_mchid: str) -> bool:
        """Registered relations, plus every generated 买单 sub-merchant under its own provider."""
        if sub_mchid in self.wechatpay_sub_merchants.get(sp_mchid, ()):
            return True
        generated = self.sub_merchant_by_mchid(sub_mchid)
        return generated is not None and self.provider(generated.provider_index).sp_mchid == sp_mchid

    def bind_wechatpay_appid(self, sp_mchid: str, app_id: str) -> None:
        """Bind an official account (or mini program) appid to `sp_mchid`, as in its merchant platform."""
        with self.lock:
            self.wechatpay_appids.setdefault(sp_mchid, set()).add(app_id)

    def is_wechatpay_appid_bound(self, sp_mchid: str, app_id: str) -> bool:
        return app_id in self.wechatpay_appids.get(sp_mchid, ())

    # --- WeChat OAuth codes ----------------------------------------------------------------

    def issue_oauth_code(self, app_id: str, user_id: str, scope: str = "snsapi_base") -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.oauth_codes[code] = OAuthCode(app_id, user_id, self.clock.now(), scope)
        return code

    def accept_nonce(self, nonce: str, now: float) -> bool:
        """False when the nonce was seen in the last 10 minutes (a replayed request).

        `seen_nonces` keeps arrival order, so forgetting old nonces only looks at the front."""
        with self.lock:
            while self.seen_nonces:
                oldest, at = next(iter(self.seen_nonces.items()))
                if now - at <= 600:
                    break
                del self.seen_nonces[oldest]
            if nonce in self.seen_nonces:
                return False
            self.seen_nonces[nonce] = now
            return True
