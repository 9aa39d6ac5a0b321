"""C3.4 "test configuration": try a provider's WeChat Pay and Alipay settings against the
real upstream (the sandbox locally) with harmless calls, and say what is wrong in words.

Harmless means a call that must fail in a known way: WeChat Pay is asked for an order that
cannot exist ("order does not exist" proves the keys, serial and platform key all work);
Alipay is asked to exchange an authorization code that cannot exist ("invalid code" proves
the app key and the Alipay public key work, and needs no merchant authorization).
"""
from __future__ import annotations

from chalicelib import providers
from chalicelib.log import logger
from chalicelib.models.providers import Provider
from chalicelib.upstream import alipay, http, wechat_token
from chalicelib.upstream import wechatpay as wp
from chalicelib.upstream.wechat_api import WechatConfigError

PROBE_ORDER = "CPCONFIGCHECK0000000000000000"
PROBE_AUTH_CODE = "cloudpay-configuration-check"
UNEXPECTED_PROBLEM = ("the check failed on our side, not because of these settings; try again later "
                      "(the X-Request-Id header identifies it)")
"""What the client sees of an unexpected failure: the exception's text can hold internals
(paths, table names, upstream answers), so it goes to the log only."""


def _check(name: str, probe) -> dict:
    try:
        detail = probe()
    except http.UpstreamUnavailable as exc:
        return {"check": name, "ok": False, "problem": f"{exc.system} did not answer: {exc.detail}"}
    except Exception:  # each probe turns the errors it expects into words; any other is ours to look into
        logger.exception("configuration check failed unexpectedly", extra={"check": name})
        return {"check": name, "ok": False, "problem": UNEXPECTED_PROBLEM}
    return {"check": name, "ok": detail is None, "problem": detail}


def _wechat_pay_probe(provider: Provider) -> str | None:
    try:
        wp.query_order_by_out_trade_no(providers.wechat_pay_merchant(provider), provider.sp_mchid, PROBE_ORDER)
    except wp.WechatPayNotFound:
        return None
    except wp.WechatPayAuthError as exc:
        return f"WeChat Pay refused our signature ({exc.code}): check the merchant private key and its serial number"
    except wp.WechatPaySignatureError as exc:
        return f"WeChat Pay's answer did not verify ({exc}): check the platform public key or certificate"
    except wp.WechatPayError as exc:
        return f"WeChat Pay answered {exc.code}: {exc.message}"
    return "WeChat Pay found an order that should not exist; the settings point at an unexpected merchant"


def _official_account_probe(provider: Provider) -> str | None:
    app = wechat_token.AppCredentials(providers.mapping(provider.wechat)["app_id"],
                                      providers.secret(provider, "wechat_pay.app_secret"))
    try:
        wechat_token.verify_credentials(app)
    except WechatConfigError as exc:
        return f"WeChat refused the AppID/AppSecret ({exc.errcode} {exc.errmsg})"
    return None


def _alipay_probe(provider: Provider) -> str | None:
    try:
        alipay.exchange_app_auth_code(providers.alipay_app(provider), PROBE_AUTH_CODE)
    except alipay.AuthCodeInvalid:
        return None
    except alipay.AlipayRequestSignatureRejected:
        return "Alipay refused our signature: check the app private key (and that its public key is uploaded)"
    except alipay.AlipaySignatureError as exc:
        return f"Alipay's answer did not verify ({exc}): check the Alipay public key"
    except alipay.AlipayError as exc:
        return f"Alipay answered {exc.code} {exc.sub_code}: {exc.sub_msg or exc.msg}"
    return "Alipay accepted an authorization code that should not exist"


def check_configuration(provider: Provider) -> dict:
    results = []
    if providers.wechat_pay_configured(provider):
        results.append(_check("wechat_pay", lambda: _wechat_pay_probe(provider)))
    else:
        results.append({"check": "wechat_pay", "ok": False, "problem": "WeChat Pay is not fully configured"})
    if "wechat_pay.app_secret" in providers.mapping(provider.secrets):
        results.append(_check("official_account", lambda: _official_account_probe(provider)))
    if providers.alipay_configured(provider):
        results.append(_check("alipay", lambda: _alipay_probe(provider)))
    else:
        results.append({"check": "alipay", "ok": False, "problem": "Alipay is not configured"})
    return {"object": "provider_check", "sp_mchid": provider.sp_mchid, "ok": all(r["ok"] for r in results),
            "checks": results}
