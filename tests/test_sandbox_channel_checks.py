"""The sandbox refuses the mix-ups the real channels refuse (issue 12 item 9).

Each check has a test that sends the mixed-up request and one that sends the right request:
an openid of the wrong official account, a sub-merchant or an appid that is not the
provider's, a past time_expire (WeChat Pay); a buyer OpenID of another app, an OpenID sent as
buyer_id, a seller other than the authorizing merchant (Alipay). GET /v3/certificates is read
here with an independent AES-GCM decryption, not with the app's client.
"""
from __future__ import annotations

import base64
import secrets
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.upstream import alipay, http
from chalicelib.upstream import wechatpay as wp
from sandbox import alipay as sandbox_alipay
from sandbox.wechatpay import register_merchant, state_of
from tests.environment import SANDBOX_ROOT

SP_MCHID = "1900000001"
SUB_MCHID = "1600000001"
PROVIDER_APPID = "wx5e0d4c3b2a190807"
"""The provider's own official account: sp_appid of its orders."""
NOTIFY_URL = "http://h5.test/notify/wechatpay"


def _merchant(credentials: dict, mode: str = "public_key") -> wp.WechatPayMerchant:
    serial, pem = ((credentials["platform_certificate_serial_no"], credentials["platform_certificate_pem"])
                   if mode == "certificate" else
                   (credentials["platform_public_key_id"], credentials["platform_public_key_pem"]))
    return wp.WechatPayMerchant(sp_mchid=credentials["sp_mchid"], serial_no=credentials["serial_no"],
                                private_key_pem=credentials["private_key_pem"],
                                api_v3_key=credentials["api_v3_key"], platform_keys={serial: pem})


@pytest.fixture
def provider(sandbox) -> wp.WechatPayMerchant:
    """A provider with one sub-merchant and its official account bound, as its merchant platform shows."""
    return _merchant(register_merchant(sandbox, SP_MCHID, sub_mchids=[SUB_MCHID], appids=[PROVIDER_APPID]))


def _order(merchant: wp.WechatPayMerchant, sp_openid: str, **fields) -> str:
    arguments = dict(sp_appid=PROVIDER_APPID, sub_mchid=SUB_MCHID, description="演示门店-扫码付款",
                     out_trade_no="CP20240601000001", amount_total=880, notify_url=NOTIFY_URL,
                     time_expire=datetime.now(timezone.utc) + timedelta(minutes=15), sp_openid=sp_openid)
    arguments.update(fields)
    return wp.create_jsapi_order(merchant, **arguments)


def _refused(call) -> wp.WechatPayError:
    with pytest.raises(wp.WechatPayError) as raised:
        call()
    return raised.value


# --- WeChat Pay partner JSAPI ---------------------------------------------------------------

def test_an_openid_from_the_platforms_official_account_is_refused_for_the_providers_sp_appid(sandbox, provider):
    platform_openid = sandbox.users["guest-01"].openid(sandbox.config.wechat_app_id)

    refusal = _refused(lambda: _order(provider, platform_openid))

    assert (refusal.status, refusal.code, refusal.message) == (400, "PARAM_ERROR", "appid和openid不匹配")
    assert refusal.detail["field"] == "/payer/sp_openid"
    assert state_of(sandbox).orders == {}


def test_an_openid_issued_for_the_sp_appid_places_the_order(sandbox, provider):
    prepay_id = _order(provider, sandbox.users["guest-01"].openid(PROVIDER_APPID))

    [order] = state_of(sandbox).orders.values()
    assert prepay_id.startswith("wx") and order.prepay_id == prepay_id
    assert order.request["payer"] == {"sp_openid": sandbox.users["guest-01"].openid(PROVIDER_APPID)}


def _snsapi_base_openid(app_id: str, secret: str, user_id: str) -> str:
    """The customer passes the official account's silent OAuth; the code becomes an openid."""
    authorize = http.client().get(f"{SANDBOX_ROOT}/wechat-open/connect/oauth2/authorize", params={
        "appid": app_id, "redirect_uri": "http://h5.test/h5/oauth/wechat", "response_type": "code",
        "scope": "snsapi_base", "state": "s", "as_user": user_id})
    code = parse_qs(urlsplit(authorize.headers["location"]).query)["code"][0]
    token = http.client().get(f"{SANDBOX_ROOT}/wechat-api/sns/oauth2/access_token", params={
        "appid": app_id, "secret": secret, "code": code, "grant_type": "authorization_code"})
    return token.json()["openid"]


def test_oauth_through_the_providers_own_official_account_gives_the_openid_its_orders_need(sandbox):
    registered = http.client().post(f"{SANDBOX_ROOT}/wechat-api/sandbox/official-accounts",
                                    json={"appid": PROVIDER_APPID}).json()
    merchant = _merchant(register_merchant(sandbox, SP_MCHID, sub_mchids=[SUB_MCHID], appids=[PROVIDER_APPID]))
    providers_openid = _snsapi_base_openid(PROVIDER_APPID, registered["secret"], "guest-01")
    platforms_openid = _snsapi_base_openid(sandbox.config.wechat_app_id, sandbox.config.wechat_app_secret,
                                           "guest-01")

    refusal = _refused(lambda: _order(merchant, platforms_openid))

    assert providers_openid != platforms_openid and refusal.code == "PARAM_ERROR"
    assert _order(merchant, providers_openid).startswith("wx")


def test_an_openid_no_wechat_user_has_is_refused(provider):
    refusal = _refused(lambda: _order(provider, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))

    assert (refusal.status, refusal.code) == (400, "PARAM_ERROR")


def test_a_sub_mchid_that_is_not_a_sub_merchant_of_the_provider_is_refused_with_no_auth(sandbox, provider):
    register_merchant(sandbox, "1900000002", sub_mchids=["1600000002"])
    openid = sandbox.users["guest-01"].openid(PROVIDER_APPID)

    refusal = _refused(lambda: _order(provider, openid, sub_mchid="1600000002"))

    assert (refusal.status, refusal.code) == (403, "NO_AUTH")
    assert refusal.message == f"服务商 {SP_MCHID} 与子商户 1600000002 不存在受理关系"
    assert state_of(sandbox).orders == {}


def test_a_generated_maidan_sub_merchant_may_be_charged_by_its_own_provider_only(sandbox):
    index = next(i for i in range(sandbox.config.providers) if sandbox.sub_merchant_count(i))
    owner_sp_mchid, sub_mchid = sandbox.provider(index).sp_mchid, sandbox.sub_merchant(index, 0).sub_mchid
    owner = _merchant(register_merchant(sandbox, owner_sp_mchid, appids=[PROVIDER_APPID]))
    stranger = _merchant(register_merchant(sandbox, SP_MCHID, appids=[PROVIDER_APPID]))
    openid = sandbox.users["guest-01"].openid(PROVIDER_APPID)

    refusal = _refused(lambda: _order(stranger, openid, sub_mchid=sub_mchid))

    assert refusal.code == "NO_AUTH"
    assert _order(owner, openid, sub_mchid=sub_mchid).startswith("wx")


def test_an_sp_appid_not_bound_to_the_provider_is_refused_with_appid_mchid_not_match(sandbox, provider):
    platform_appid = sandbox.config.wechat_app_id
    openid = sandbox.users["guest-01"].openid(platform_appid)

    refusal = _refused(lambda: _order(provider, openid, sp_appid=platform_appid))

    assert (refusal.status, refusal.code, refusal.message) == (400, "APPID_MCHID_NOT_MATCH",
                                                               "appid和mch_id不匹配，请检查后再试")
    assert state_of(sandbox).orders == {}


def test_a_sub_openid_not_issued_for_the_sub_appid_is_refused(sandbox, provider):
    sub_appid = "wx00aa11bb22cc33dd"
    right, wrong = (sandbox.users["guest-01"].openid(app) for app in (sub_appid, PROVIDER_APPID))

    refusal = _refused(lambda: _order(provider, None, sub_appid=sub_appid, sub_openid=wrong))
    prepay_id = _order(provider, None, sub_appid=sub_appid, sub_openid=right)

    assert (refusal.status, refusal.code, refusal.detail["field"]) == (400, "PARAM_ERROR", "/payer/sub_openid")
    assert prepay_id.startswith("wx")


def test_a_time_expire_in_the_past_is_refused_naming_the_field(sandbox, provider):
    openid = sandbox.users["guest-01"].openid(PROVIDER_APPID)

    refusal = _refused(lambda: _order(provider, openid, time_expire=datetime.now(timezone.utc) - timedelta(minutes=1)))

    assert (refusal.status, refusal.code, refusal.detail["field"]) == (400, "PARAM_ERROR", "/time_expire")
    assert state_of(sandbox).orders == {}


def test_relations_registered_over_http_are_read_back_and_let_the_order_through(sandbox):
    created = http.client().post(f"{SANDBOX_ROOT}/wechatpay/sandbox/merchants",
                                 json={"sp_mchid": SP_MCHID, "sub_mchids": [SUB_MCHID], "appids": [PROVIDER_APPID]})
    bad = http.client().post(f"{SANDBOX_ROOT}/wechatpay/sandbox/merchants",
                             json={"sp_mchid": SP_MCHID, "appids": ["not-an-appid"]})

    assert (created.json()["sub_mchids"], created.json()["appids"]) == ([SUB_MCHID], [PROVIDER_APPID])
    assert bad.status_code == 400 and "appids" in bad.json()["message"]
    assert _order(_merchant(created.json()), sandbox.users["guest-01"].openid(PROVIDER_APPID)).startswith("wx")


# --- WeChat Pay GET /v3/certificates (平台证书 mode) -------------------------------------------

def _get_certificates(merchant: wp.WechatPayMerchant) -> httpx.Response:
    path = "/wechatpay/v3/certificates"
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    headers = {"Authorization": wp.authorization(merchant, "GET", path, b"", timestamp, nonce),
               "Accept": "application/json"}
    return http.client().get(f"{SANDBOX_ROOT}{path}", headers=headers)


def test_the_certificates_list_decrypts_with_the_api_v3_key_to_the_signed_answers_certificate(sandbox):
    credentials = register_merchant(sandbox, SP_MCHID, platform_key_mode="certificate")

    answer = _get_certificates(_merchant(credentials, mode="certificate"))

    [entry] = answer.json()["data"]
    encrypted = entry["encrypt_certificate"]
    pem = AESGCM(credentials["api_v3_key"].encode()).decrypt(
        encrypted["nonce"].encode(), base64.b64decode(encrypted["ciphertext"]), encrypted["associated_data"].encode())
    certificate = x509.load_pem_x509_certificate(pem)
    message = (f"{answer.headers['Wechatpay-Timestamp']}\n{answer.headers['Wechatpay-Nonce']}\n".encode()
               + answer.content + b"\n")
    certificate.public_key().verify(base64.b64decode(answer.headers["Wechatpay-Signature"]), message,
                                    padding.PKCS1v15(), hashes.SHA256())
    assert answer.status_code == 200 and pem.decode() == credentials["platform_certificate_pem"]
    assert (encrypted["algorithm"], encrypted["associated_data"]) == ("AEAD_AES_256_GCM", "certificate")
    assert entry["serial_no"] == answer.headers["Wechatpay-Serial"] == credentials["platform_certificate_serial_no"]
    assert format(certificate.serial_number, "040X") == entry["serial_no"]
    assert datetime.fromisoformat(entry["effective_time"]) < datetime.now(timezone.utc) < \
        datetime.fromisoformat(entry["expire_time"])


def test_the_certificates_list_does_not_decrypt_with_another_merchants_api_v3_key(sandbox):
    credentials = register_merchant(sandbox, SP_MCHID, platform_key_mode="certificate")
    other = register_merchant(sandbox, "1900000002")

    encrypted = _get_certificates(_merchant(credentials, mode="certificate")).json()["data"][0]["encrypt_certificate"]

    with pytest.raises(Exception) as raised:
        AESGCM(other["api_v3_key"].encode()).decrypt(encrypted["nonce"].encode(),
                                                      base64.b64decode(encrypted["ciphertext"]), b"certificate")
    assert type(raised.value).__name__ == "InvalidTag"


def test_an_unsigned_certificates_request_is_refused_with_sign_error(sandbox):
    register_merchant(sandbox, SP_MCHID, platform_key_mode="certificate")

    answer = http.client().get(f"{SANDBOX_ROOT}/wechatpay/v3/certificates", headers={"Accept": "application/json"})

    assert answer.status_code == 401 and answer.json()["code"] == "SIGN_ERROR"


def test_public_key_mode_signs_answers_with_the_public_key_id_the_request_names(sandbox):
    credentials = register_merchant(sandbox, SP_MCHID)
    merchant = _merchant(credentials)

    answer = _get_certificates(merchant)

    public_key = serialization.load_pem_public_key(credentials["platform_public_key_pem"].encode())
    message = (f"{answer.headers['Wechatpay-Timestamp']}\n{answer.headers['Wechatpay-Nonce']}\n".encode()
               + answer.content + b"\n")
    public_key.verify(base64.b64decode(answer.headers["Wechatpay-Signature"]), message, padding.PKCS1v15(),
                      hashes.SHA256())
    assert answer.headers["Wechatpay-Serial"] == credentials["platform_public_key_id"]


# --- Alipay alipay.trade.create ---------------------------------------------------------------

@pytest.fixture
def world_alipay(sandbox):
    return sandbox_alipay.state_of(sandbox)


def _isv(world_alipay) -> alipay.AlipayApp:
    credentials = world_alipay.create_app()
    return alipay.AlipayApp(credentials.app_id, credentials.app_private_key_pem, credentials.alipay_public_key_pem)


@pytest.fixture
def isv(world_alipay) -> alipay.AlipayApp:
    return _isv(world_alipay)


@pytest.fixture
def token(isv, world_alipay) -> str:
    """The first sandbox merchant authorizes the ISV app."""
    merchant = next(iter(world_alipay.merchants))
    url = alipay.app_authorization_url(isv.app_id, "http://h5.test/alipay/authorized")
    back = parse_qs(urlsplit(http.client().get(f"{url}&merchant={merchant}").headers["location"]).query)
    return alipay.exchange_app_auth_code(isv, back["app_auth_code"][0]).app_auth_token


def _open_id_via_auth_base(app: alipay.AlipayApp, user_id: str) -> str:
    """The wallet user passes auth_base for `app`; its OpenID is issued for that app only."""
    url = alipay.user_authorization_url(app.app_id, "http://h5.test/h5/oauth/alipay", state="s")
    code = parse_qs(urlsplit(http.client().get(f"{url}&as_user={user_id}").headers["location"]).query)["auth_code"][0]
    return alipay.exchange_user_auth_code(app, code).open_id


def _refused_by_alipay(call) -> alipay.AlipayError:
    with pytest.raises(alipay.AlipayError) as raised:
        call()
    return raised.value


def test_a_buyer_open_id_issued_for_another_app_is_refused_as_buyer_not_exist(isv, token, world_alipay):
    buyer = next(iter(world_alipay.buyers))
    other_apps_open_id = _open_id_via_auth_base(_isv(world_alipay), buyer)

    refusal = _refused_by_alipay(lambda: alipay.create_trade(
        isv, app_auth_token=token, out_trade_no="OPENID_OTHER_APP", total_fen=5, subject="s",
        buyer_open_id=other_apps_open_id))

    assert (refusal.code, refusal.sub_code, refusal.sub_msg) == ("40004", "ACQ.BUYER_NOT_EXIST", "买家不存在")
    assert world_alipay.trades == {}


def test_a_buyer_open_id_issued_for_the_calling_app_is_charged(isv, token, world_alipay):
    open_id = _open_id_via_auth_base(isv, next(iter(world_alipay.buyers)))

    created = alipay.create_trade(isv, app_auth_token=token, out_trade_no="OPENID_OWN_APP", total_fen=5,
                                  subject="s", buyer_open_id=open_id)

    assert world_alipay.trades[created.trade_no].buyer_open_id == open_id


def test_an_open_id_sent_as_buyer_id_is_refused_as_buyer_not_exist(isv, token, world_alipay):
    open_id = _open_id_via_auth_base(isv, next(iter(world_alipay.buyers)))

    refusal = _refused_by_alipay(lambda: alipay.create_trade(
        isv, app_auth_token=token, out_trade_no="OPENID_AS_ID", total_fen=5, subject="s", buyer_id=open_id))

    assert refusal.sub_code == "ACQ.BUYER_NOT_EXIST"
    assert world_alipay.trades == {}


def _create_for_seller(isv: alipay.AlipayApp, token: str, seller_id: str, buyer_id: str) -> dict:
    """alipay.trade.create naming the seller, whatever seller the app's order code would name."""
    return alipay._call(isv, "alipay.trade.create", app_auth_token=token, biz_content={
        "out_trade_no": "SELLER_CHECK_1", "total_amount": "0.05", "subject": "s", "buyer_id": buyer_id,
        "seller_id": seller_id})


def test_an_app_auth_token_of_another_merchant_than_the_seller_is_refused(isv, token, world_alipay):
    seller = list(world_alipay.merchants)[1]

    refusal = _refused_by_alipay(lambda: _create_for_seller(isv, token, seller, next(iter(world_alipay.buyers))))

    assert (refusal.code, refusal.sub_code, refusal.sub_msg) == ("40004", "ACQ.INVALID_RECEIVE_ACCOUNT",
                                                                 "卖家不在设置的收款账户列表之中")
    assert world_alipay.trades == {}


def test_the_app_auth_token_of_the_seller_creates_the_trade_for_it(isv, token, world_alipay):
    seller = next(iter(world_alipay.merchants))

    node = _create_for_seller(isv, token, seller, next(iter(world_alipay.buyers)))

    assert node["out_trade_no"] == "SELLER_CHECK_1"
    assert world_alipay.trades[node["trade_no"]].merchant.user_id == seller
