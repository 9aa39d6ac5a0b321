"""Customer payments' figures (issue 12), in-process (moto, the sandbox, chalice.test.Client),
with the same provider, merchant and store as tests/test_pay_pages.py:

- DynamoDB round trips from a WeChat customer's scan of a store code to the rendered pay page,
  the payer cookie already set (goal ≤ 2);
- bytes of the pay page (form and wallet step) and the paid result page: HTML + the CSS and JS
  they load from our origin (the sandbox's jsbridge.js is not counted: in production the
  wallet injects its own) (goal ≤ 15 KB each);
- DynamoDB calls per order created, i.e. per POST /h5/pay/{code} (goal ≤ 3 + 1 channel call),
  and per notification handled (goal ≤ 3 + 1 enqueue), by operation; upstream calls are the
  requests the app sent to the in-process sandbox (`wire.requests`).
"""
from __future__ import annotations

from collections import Counter

from tests import environment

PAGE_BYTES_GOAL = 15 * 1024
SCAN_GOAL = 2
ORDER_GOAL = 3
NOTIFICATION_GOAL = 3
QUEUE_OPERATIONS = ("SendMessage", "SendMessageBatch")
KMS_OPERATIONS = ("Decrypt", "Encrypt", "GenerateDataKey")


def _asset_bytes(client, html: str) -> int:
    from bench.onecode import _asset_bytes as every_asset

    return every_asset(client, html.replace(f'<script src="{environment.SANDBOX_ROOT}', '<script data-sandbox="'))


def measure() -> tuple[list[tuple[str, Counter, int, int]], list[tuple[str, int, int]]]:
    from chalice.test import Client

    from app import app
    from sandbox import alipay as sandbox_alipay
    from tests.drivers import Console, Phone
    from tests.dynamodb_calls import counting_aws_calls
    from tests.test_pay_pages import (
        SP_APPID,
        SP_MCHID,
        AlipayPhone,
        _authorize_alipay,
        _invoke_params,
        _shop,
        _submit,
        _wechat_pay_settings,
    )

    rows: list[tuple[str, Counter, int, int]] = []
    pages: list[tuple[str, int, int]] = []
    with environment.in_memory_aws(), environment.sandbox_in_process() as (world, wire), \
            Client(app, stage_name="local") as client:
        console = Console(client).sign_up_and_in("bench-payments@example.com")
        Phone(client, "admin-01").open(console.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
        _, app_secret = world.add_official_account(SP_APPID)
        isv = sandbox_alipay.state_of(world).create_app()
        console.call("POST", "/v1/providers", {
            "sp_mchid": SP_MCHID, "name": "基准服务商", "wechat_pay": _wechat_pay_settings(world, app_secret),
            "alipay": {"app_id": isv.app_id, "private_key": isv.app_private_key_pem,
                       "alipay_public_key": isv.alipay_public_key_pem}})
        shop = _shop(console, world, client)
        _authorize_alipay(shop, client)

        def measured(label: str, goal: int, action):
            before = len(wire.requests)
            with counting_aws_calls() as calls:
                result = action()
            rows.append((label, calls, len(wire.requests) - before, goal))
            return result

        def page(label: str, phone: Phone) -> None:
            pages.append((label, len(phone.html.encode()), _asset_bytes(client, phone.html)))

        scan_path = f"/h5/q/{shop.code_id}"
        customers = {"WeChat": Phone(client, "guest-01"),
                     "Alipay": AlipayPhone(client, next(iter(sandbox_alipay.state_of(world).buyers)))}
        for wallet, customer in customers.items():
            customer.open(scan_path)  # the first scan signs the payer in (OAuth) and sets cp_payer
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in customer.app_cookies.items()),
                       "user-agent": customer.user_agent}
            measured(f"scan → pay page ({wallet}, cp_payer set)", SCAN_GOAL,
                     lambda headers=headers: client.http.get(scan_path, headers=headers))
            form = customer.open(scan_path)
            page(f"H7 pay form ({wallet})", form)
            invoke = measured(f"POST /h5/pay/{{code}}: order created ({wallet})", ORDER_GOAL,
                              lambda form=form: _submit(form, shop.code_id, "12.34"))
            page(f"H7 wallet step ({wallet})", invoke)
            params, result_url = _invoke_params(invoke)
            _pay(wallet, params)
            measured(f"notification handled ({wallet})", NOTIFICATION_GOAL, world.notifier.deliver_due)
            page(f"H8 result, paid ({wallet})", customer.open(environment.PUBLIC_BASE_URL + result_url))
    return rows, pages


def _pay(wallet: str, params: dict) -> None:
    """The customer taps 支付 in the sandbox's wallet (what jsbridge.js posts)."""
    import json

    from chalicelib.upstream import http

    if wallet == "WeChat":
        answer = http.client().post(f"{environment.SANDBOX_ROOT}/wechatpay/sandbox/wallet/pay",
                                    content=json.dumps(params), headers={"content-type": "text/plain"})
    else:
        answer = http.client().post(f"{environment.SANDBOX_ROOT}/alipay/sandbox/wallet/pay",
                                    data={"trade_no": params["tradeNO"]})
    assert answer.status_code == 200, answer.text


def report() -> None:
    rows, pages = measure()
    print("Payments: AWS calls per request (DynamoDB round trips, KMS decrypts of the provider's keys, SQS "
          "enqueues) and upstream calls")
    print(f"{'request':48} {'DynamoDB':>8} {'goal':>4} {'KMS':>3} {'enqueue':>7} {'upstream':>8}  by operation")
    for label, calls, upstream, goal in rows:
        enqueued = sum(calls[name] for name in QUEUE_OPERATIONS)
        decrypts = sum(calls[name] for name in KMS_OPERATIONS)
        dynamodb = sum(calls.values()) - enqueued - decrypts
        detail = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
        print(f"{label:48} {dynamodb:>8} {goal:>4} {decrypts:>3} {enqueued:>7} {upstream:>8}  {detail}"
              f"{'  OVER' if dynamodb > goal else ''}")
    print()
    print(f"Payments H7/H8 pages: bytes (HTML + the CSS and JS from our origin); goal ≤ {PAGE_BYTES_GOAL} each")
    print(f"{'page':48} {'HTML':>7} {'CSS+JS':>7} {'total':>7}")
    for label, html_bytes, asset_bytes in pages:
        total = html_bytes + asset_bytes
        print(f"{label:48} {html_bytes:>7} {asset_bytes:>7} {total:>7}{'' if total <= PAGE_BYTES_GOAL else '  OVER'}")
