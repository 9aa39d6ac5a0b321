"""Every Chalice decorator of Cloud Pay: routes, the authorizer, queue and schedule handlers.

A handler parses the request, calls one domain function from chalicelib and shapes the
reply. Errors become one JSON shape here (console) or an error page (H5), nowhere else.
"""
from __future__ import annotations

import functools
import json
import re
import time
import uuid
from urllib.parse import parse_qs

from chalice import AuthResponse, Chalice, Rate, Response

from chalicelib import (accounts, assistant_binding, audit, binding, h5, idempotency, job_detail, jobs, pagination,
                        provider_checks, provider_sync, providers, qr, qrcodes, queues, reattribution, sub_merchant_sync,
                        sub_merchants, sub_service_providers)
from chalicelib import alipay_authorization, h5_alipay_authorization
from chalicelib.errors import (ApiError, InternalError, InvalidField, MethodNotAllowed, NotFound, Unauthenticated,
                               UnsupportedMediaType, WechatBindingRequired)
from chalicelib.log import logger
from chalicelib.onecode import admins as onecode_admins, console_views as onecode_console
from chalicelib.onecode import code_images, merchant_pages, store_pages
from chalicelib.payments import notifications as payment_notifications, outbox as payment_outbox
from chalicelib.payments import phone_orders, queries as payment_queries, sweeps as payment_sweeps
from chalicelib.payments import transactions
from chalicelib.payments import pages as pay_pages
from chalicelib.payments import deliveries, refund_pages, refunds
from chalicelib.web import console_module, render, security as web_security, static_asset, static_text

app = Chalice(app_name="cloudpay", configure_logs=False)

_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
NOT_REPLAYABLE_ROUTES: set[tuple[str, str]] = set()
"""(method, path) of the mutating routes that refuse an Idempotency-Key (see `console`)."""


@app.middleware("http")
def request_context(event, get_response):
    """Give every request an id (header and logs) and log one line per request."""
    request_id = event.context.get("requestId") or str(uuid.uuid4())
    logger.append_keys(request_id=request_id)
    started = time.perf_counter()
    response = _in_our_error_shape(get_response(event))
    response.headers.update(web_security.headers(response.headers.get("Content-Type", ""), response.headers))
    response.headers["X-Request-Id"] = request_id
    logger.info("request", extra={"method": event.method, "route": event.context.get("resourcePath"),
                                  "status": response.status_code,
                                  "ms": round((time.perf_counter() - started) * 1000, 1)})
    logger.remove_keys(["request_id"])
    return response


@app.authorizer(ttl_seconds=0)
def console_session(auth_request):
    """Resolve the session token to its caller for every console route.

    Every route is allowed and the outcome travels in the context, so that an expired or
    revoked session is answered in the API's own error shape by the function (API Gateway
    would answer a bare 401/403 of its own).
    """
    try:
        caller = accounts.authenticate(auth_request.token)
    except Unauthenticated as exc:
        return AuthResponse(routes=["*"], principal_id="anonymous",
                            context={"auth_error_code": exc.code, "auth_error_message": exc.message})
    return AuthResponse(routes=["*"], principal_id=caller.account_id,
                        context={"account_id": caller.account_id, "session_hash": caller.session_hash,
                                 "wechat_bound": "true" if caller.wechat_bound else "false"})


_JSON = {"Content-Type": "application/json"}
_CHALICE_ERRORS = {415: lambda message: UnsupportedMediaType(message),
                   405: lambda message: MethodNotAllowed(message)}


def _in_our_error_shape(response: Response) -> Response:
    """Chalice answers a wrong Content-Type (415) or method (405) itself, before any view:
    give those answers the API's one error shape too."""
    chalice_error = isinstance(response.body, dict) and set(response.body) == {"Code", "Message"}
    if not chalice_error or response.status_code not in _CHALICE_ERRORS:
        return response
    error = _CHALICE_ERRORS[response.status_code](response.body["Message"])
    return Response(body=error.body(), status_code=error.status,
                    headers={**response.headers, **_JSON, **error.headers})


def _error_response(exc: ApiError) -> Response:
    return Response(body=exc.body(), status_code=exc.status, headers={**_JSON, **exc.headers})


def _internal_error() -> Response:
    logger.exception("unhandled error")
    return _error_response(InternalError())


MAX_BODY_DEPTH = 8
"""Deeper than any body the API takes (a provider's sections are depth 2): deeper nesting is
refused before anything walks it recursively."""
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_body() -> dict:
    """The request's JSON object; bodies too deep and texts that are not Unicode are refused here,
    once, so that no field check, DynamoDB write or log line meets them."""
    raw = app.current_request.raw_body
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        raise InvalidField("body", f"request body is nested deeper than {MAX_BODY_DEPTH} levels") from None
    except ValueError:
        raise InvalidField("body", "request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidField("body", "request body must be a JSON object")
    _check_texts_and_depth(body)
    return body


def _check_texts_and_depth(body: dict) -> None:
    """Walk the body without recursion: a field nested too deep or a text holding a lone UTF-16
    surrogate ("\\ud800", valid JSON but not encodable) is refused naming its path."""
    pending = [(body, "", 1)]
    while pending:
        value, path, depth = pending.pop()
        if depth > MAX_BODY_DEPTH:
            raise InvalidField(path.split(".")[0].split("[")[0],
                               f"{path} is nested deeper than {MAX_BODY_DEPTH} levels")
        if isinstance(value, dict):
            for name, item in value.items():
                field = f"{path}.{name}" if path else name
                if _LONE_SURROGATE.search(name):
                    raise InvalidField(path or "body", "field names must be valid Unicode text")
                pending.append((item, field, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str) and _LONE_SURROGATE.search(value):
            raise InvalidField(path, f"{path} must be valid Unicode text (it holds a lone surrogate)")


def _refuse_unknown_fields(body: dict, accepted: dict, prefix: str = "") -> None:
    """A field the route does not take is refused by name, not silently ignored: a typo
    (`shortname`) would otherwise answer 200 and change nothing. `accepted` maps each field
    to None or, for an object field, to the fields it takes."""
    for name, value in body.items():
        field = f"{prefix}{name}"
        if name not in accepted:
            raise InvalidField(field, f"{field} is not a field of this request", code="unknown_field")
        if accepted[name] is not None and isinstance(value, dict):
            _refuse_unknown_fields(value, accepted[name], f"{field}.")


def _caller(gated: bool) -> accounts.Caller:
    context = (app.current_request.context or {}).get("authorizer") or {}
    if context.get("auth_error_code"):
        raise Unauthenticated(context["auth_error_message"], code=context["auth_error_code"])
    if not context.get("account_id"):
        raise Unauthenticated("sign in first", code="missing_token")
    caller = accounts.Caller(context["account_id"], context["session_hash"], context["wechat_bound"] == "true")
    if gated and not caller.wechat_bound:
        raise WechatBindingRequired("bind a WeChat 买单 assistant admin to this account first: "
                                    "POST /v1/wechat-binding-codes and scan the code")
    return caller


def _reply(result) -> Response:
    if isinstance(result, Response):
        return result
    status, body = result
    return Response(body=body, status_code=status, headers=dict(_JSON))


def _answer(respond) -> Response:
    """Run a console view; every error leaves as the API's one error shape."""
    try:
        return respond()
    except ApiError as exc:
        return _error_response(exc)
    except Exception:
        return _internal_error()


def _accepted(fields) -> dict:
    return fields if isinstance(fields, dict) else dict.fromkeys(fields)


def console(path: str, methods: tuple = ("GET",), *, gated: bool = True, replayable: bool = True,
            fields: dict | tuple = ()):
    """Register a console API route: session authorizer, binding gate, idempotency, errors.

    A route whose answer holds secrets shown once is not `replayable`: a replay would need
    the answer stored, secrets included, so it refuses an Idempotency-Key instead.
    `fields` names the body fields a mutating route takes (a dict for object fields): any
    other is refused, after an Idempotency-Key replay or conflict is settled.
    """
    accepted = _accepted(fields)

    def register(view):
        def respond(params: dict) -> Response:
            caller = _caller(gated)
            pagination.read_as(caller.account_id)
            request = app.current_request
            if request.method not in _MUTATING:
                return _reply(view(caller, **params))
            key = request.headers.get(idempotency.HEADER)
            if key is not None and not replayable:
                raise InvalidField(idempotency.HEADER, "this call's answer holds secrets shown only once, so it "
                                                       "cannot be replayed: send it without Idempotency-Key")
            route = f"{request.method} {path} {json.dumps(params, sort_keys=True)}"
            body = _json_body()

            def act():
                _refuse_unknown_fields(body, accepted)
                return view(caller, **params)

            outcome = idempotency.run(caller.account_id, route, key, body, act, app.lambda_context)
            response = _reply((outcome["status"], outcome["body"]))
            if outcome["replayed"]:
                response.headers[idempotency.REPLAY_HEADER] = "true"
            return response

        @functools.wraps(view)
        def handle(**params):
            return _answer(lambda: respond(params))

        app.route(path, methods=list(methods), authorizer=console_session)(handle)
        if not replayable:
            NOT_REPLAYABLE_ROUTES.update((method, path) for method in methods)
        return view
    return register


def public(path: str, methods: tuple = ("GET",), *, fields: dict | tuple = ()):
    """Register a console API route that needs no session (sign up, sign in)."""
    accepted = _accepted(fields)

    def register(view):
        def respond(params: dict) -> Response:
            if app.current_request.method in _MUTATING:
                _refuse_unknown_fields(_json_body(), accepted)
            return _reply(view(**params))

        @functools.wraps(view)
        def handle(**params):
            return _answer(lambda: respond(params))

        app.route(path, methods=list(methods))(handle)
        return view
    return register


def _page_query() -> tuple[int, str | None]:
    query = app.current_request.query_params or {}
    return pagination.parse_limit(query.get("limit")), query.get("cursor")


# The body fields each mutating route takes (see `console`); a route that names none takes no body.
_PROVIDER_FIELDS = {**dict.fromkeys(("name", "short_name", "remark", "logo_url", "ad_image_url", "ad_link_url",
                                     "callback_url", "pay_limit_fen")),
                    "result_slots": dict.fromkeys(("review", "coupon"), dict.fromkeys(("title", "url"))),
                    "wechat_pay": dict.fromkeys(("app_id", "serial_no", "platform_public_key_id",
                                                 "platform_public_key_pem", "platform_certificate_pem",
                                                 "rebate_ratio_bp", "app_secret", "api_v3_key", "private_key_pem")),
                    "alipay": dict.fromkeys(("app_id", "partner_id", "alipay_public_key", "rebate_ratio_bp",
                                             "private_key"))}
_SUB_SERVICE_PROVIDER_FIELDS = ("name", "admin_name", "phone", "rebate_ratio_bp", "remark")
_SUB_MERCHANT_FIELDS = ("name", "short_name", "admin_name", "admin_email", "remark", "logo_url", "ad_image_url",
                        "ad_link_url", "sub_mchid", "sub_service_provider", "pay_limit_fen")


# --- C1 accounts -------------------------------------------------------------------------

def _account_view(account) -> dict:
    return {"object": "account", "id": account.account_id, "email": account.email,
            "display_name": account.display_name, "created_at": account.created_at,
            "wechat_bound": account.wechat_binding_count > 0,
            "wechat_binding_count": account.wechat_binding_count}


@public("/v1/accounts", methods=("POST",), fields=("email", "password", "display_name"))
def sign_up():
    body = _json_body()
    source_ip = (app.current_request.context.get("identity") or {}).get("sourceIp")
    account = accounts.sign_up(body.get("email"), body.get("password"), body.get("display_name"), source_ip)
    return 201, _account_view(account)


@public("/v1/sessions", methods=("POST",), fields=("email", "password"))
def sign_in():
    body = _json_body()
    issued = accounts.sign_in(body.get("email"), body.get("password"))
    return 201, {"object": "session", "token": issued.token, "expires_at": issued.session.expires_at,
                 "account": _account_view(issued.account)}


@console("/v1/sessions/current", methods=("DELETE",), gated=False)
def sign_out(caller):
    accounts.sign_out(caller.session_hash)
    return 200, {"object": "session", "revoked": True}


@console("/v1/me", gated=False)
def who_am_i(caller):
    return 200, _account_view(accounts.get_account(caller.account_id))


# --- C2 WeChat binding gate -----------------------------------------------------------------

@console("/v1/wechat-binding-codes", methods=("POST",), gated=False)
def create_wechat_binding_code(caller):
    return 201, binding.code_view(binding.issue_code(caller.account_id))


@console("/v1/wechat-binding-codes/{code_id}", gated=False)
def get_wechat_binding_code(caller, code_id):
    return 200, binding.code_view(binding.own_code(caller.account_id, code_id))


@console("/v1/wechat-binding-codes/{code_id}/refresh", methods=("POST",), gated=False)
def refresh_wechat_binding_code(caller, code_id):
    return 201, binding.code_view(binding.refresh_code(caller.account_id, code_id))


@console("/v1/qr-codes/{code_id}/image.png", gated=False)
def qr_code_png(caller, code_id):
    code = onecode_console.readable_code(caller.account_id, code_id)
    return Response(body=qr.png(qrcodes.url_for(code.code_id)),
                    headers={"Content-Type": "image/png", "Cache-Control": "private, max-age=300"})


@console("/v1/qr-codes/{code_id}/image.svg", gated=False)
def qr_code_svg(caller, code_id):
    code = onecode_console.readable_code(caller.account_id, code_id)
    return Response(body=qr.svg(qrcodes.url_for(code.code_id)),
                    headers={"Content-Type": "image/svg+xml", "Cache-Control": "private, max-age=300"})


@console("/v1/wechat-bindings")
def list_wechat_bindings(caller):
    limit, cursor = _page_query()
    return 200, binding.list_bindings(caller.account_id, limit, cursor).body(binding.binding_view)


@console("/v1/wechat-bindings/{openid}", methods=("DELETE",))
def unbind_wechat(caller, openid):
    binding.unbind(caller.account_id, openid)
    return 200, {"object": "wechat_binding", "openid": openid, "deleted": True}


# --- C3 providers ---------------------------------------------------------------------------

@console("/v1/providers")
def list_providers(caller):
    """The account's own providers; `?as=sub_service_provider`: those it belongs to, read-only."""
    limit, cursor = _page_query()
    role = (app.current_request.query_params or {}).get("as")
    if role == "sub_service_provider":
        page = sub_service_providers.attributed_providers(caller.account_id, limit, cursor)
        return 200, page.body(sub_service_providers.read_only_view)
    if role not in (None, "owner"):
        raise InvalidField("as", "as must be owner or sub_service_provider")
    return 200, providers.list_providers(caller.account_id, limit, cursor).body(providers.provider_view)


@console("/v1/providers", methods=("POST",), fields=_PROVIDER_FIELDS | {"sp_mchid": None})
def create_provider(caller):
    return 201, providers.provider_view(providers.create(caller.account_id, caller.account_id, _json_body()))


@console("/v1/providers/{sp_mchid}")
def get_provider(caller, sp_mchid):
    provider, role = sub_service_providers.readable_provider(caller.account_id, sp_mchid)
    if role == "owner":
        return 200, providers.provider_view(provider)
    return 200, sub_service_providers.read_only_view(provider)


@console("/v1/providers/{sp_mchid}/sub-service-providers")
def list_sub_service_providers(caller, sp_mchid):
    limit, cursor = _page_query()
    page = sub_service_providers.list_for_provider(caller.account_id, sp_mchid, limit, cursor)
    return 200, page.body(sub_service_providers.view)


@console("/v1/providers/{sp_mchid}/sub-service-providers", methods=("POST",),
         fields=("account_id", *_SUB_SERVICE_PROVIDER_FIELDS))
def attach_sub_service_provider(caller, sp_mchid):
    return 201, sub_service_providers.view(sub_service_providers.attach(caller.account_id, sp_mchid, _json_body()))


@console("/v1/providers/{sp_mchid}/sub-service-providers/{account_id}", methods=("PATCH",),
         fields=("version", *_SUB_SERVICE_PROVIDER_FIELDS))
def update_sub_service_provider(caller, sp_mchid, account_id):
    record = sub_service_providers.update(caller.account_id, sp_mchid, account_id, _json_body())
    return 200, sub_service_providers.view(record)


@console("/v1/providers/{sp_mchid}/sub-service-providers/{account_id}", methods=("DELETE",))
def detach_sub_service_provider(caller, sp_mchid, account_id):
    sub_service_providers.detach(caller.account_id, sp_mchid, account_id)
    return 200, {"object": "sub_service_provider", "account_id": account_id, "deleted": True}


@console("/v1/providers/{sp_mchid}", methods=("PATCH",), fields=_PROVIDER_FIELDS | {"version": None})
def update_provider(caller, sp_mchid):
    return 200, providers.provider_view(providers.update(caller.account_id, caller.account_id, sp_mchid, _json_body()))


@console("/v1/providers/{sp_mchid}/callback-secret", methods=("POST",), replayable=False)
def rotate_provider_callback_secret(caller, sp_mchid):
    """B5: a new secret for signing the provider's callbacks, shown this once (owner only)."""
    secret, set_at = providers.rotate_callback_secret(caller.account_id, caller.account_id, sp_mchid)
    return 201, {"object": "callback_secret", "sp_mchid": sp_mchid, "callback_secret": secret, "set_at": set_at}


@console("/v1/providers/{sp_mchid}/configuration-checks", methods=("POST",))
def check_provider_configuration(caller, sp_mchid):
    return 200, provider_checks.check_configuration(providers.get(caller.account_id, sp_mchid))


# --- C5 sub-merchants -------------------------------------------------------------------------

@console("/v1/sub-merchants")
def list_sub_merchants(caller):
    """Filters: sp_mchid, sub_service_provider, channel, name (prefix); `as=sub_service_provider`."""
    limit, cursor = _page_query()
    query = app.current_request.query_params or {}
    page = sub_merchants.list_sub_merchants(caller.account_id, query, limit, cursor)
    render = sub_merchants.read_only_view if query.get("as") == "sub_service_provider" else sub_merchants.view
    return 200, page.body(render)


@console("/v1/sub-merchants", methods=("POST",), fields=("sp_mchid", *_SUB_MERCHANT_FIELDS))
def create_sub_merchant(caller):
    return 201, sub_merchants.view(sub_merchants.create(caller.account_id, caller.account_id, _json_body()))


@console("/v1/sub-merchants/{merchant_id}")
def get_sub_merchant(caller, merchant_id):
    merchant, role = sub_merchants.readable(caller.account_id, merchant_id)
    return 200, sub_merchants.view(merchant) if role == "owner" else sub_merchants.read_only_view(merchant)


@console("/v1/sub-merchants/{merchant_id}", methods=("PATCH",),
         fields=("version", *_SUB_MERCHANT_FIELDS, *sub_merchants.REFUSED_ON_EDIT))
def update_sub_merchant(caller, merchant_id):
    """A new sub_service_provider also answers the re-attribution job it started (C5.8)."""
    merchant, job = sub_merchants.update(caller.account_id, caller.account_id, merchant_id, _json_body())
    return 200, sub_merchants.view(merchant) | {"reattribution_job": jobs.view(job) if job else None}


@console("/v1/sub-merchants/{merchant_id}/orders")
def list_merchant_orders(caller, merchant_id):
    """P7: the merchant's orders, newest first (a sub-service-provider sees those attributed to it)."""
    limit, cursor = _page_query()
    page = payment_queries.merchant_orders(caller.account_id, merchant_id, limit, cursor)
    return 200, page.body(payment_queries.order_view)


@console("/v1/orders/{out_trade_no}")
def get_order(caller, out_trade_no):
    """P7/C6: one order by out_trade_no, for its owner or its sub-service-provider, with its
    refunds (oldest first) and its callback and clerk-message deliveries."""
    order = payment_queries.for_console(caller.account_id, out_trade_no)
    return 200, payment_queries.named_view(order) | {"refunds": refunds.views_for_order(order.out_trade_no),
                                                     **deliveries.views_for_order(
                                                         order.out_trade_no,
                                                         owner=order.account_id == caller.account_id)}


@console("/v1/orders/{out_trade_no}/callbacks/resend", methods=("POST",))
def resend_order_callbacks(caller, out_trade_no):
    """B5: one attempt now of each of the order's callbacks (owner only), with the log after it."""
    return 200, deliveries.resend_callbacks(caller.account_id, out_trade_no)


@console("/v1/orders/{out_trade_no}/refunds", methods=("POST",), fields=("amount", "reason"))
def create_refund(caller, out_trade_no):
    """P6: refund `amount` fen of a paid order (owner only; a sub-service-provider gets 404)."""
    body = _json_body()
    order = payment_queries.for_console(caller.account_id, out_trade_no)
    requester = refunds.console_requester(caller.account_id, order)
    return 201, payment_queries.refund_view(refunds.start(order.out_trade_no, body.get("amount"), body.get("reason"),
                                                          requester))


@console("/v1/transactions/orders")
def list_transaction_orders(caller):
    """C6: the caller's orders, filtered, newest first (a sub-service-provider's: attributed to it)."""
    page = transactions.list_orders(caller.account_id, app.current_request.query_params or {})
    return 200, page.body(transactions.with_names(page.data, payment_queries.order_view))


@console("/v1/transactions/refunds")
def list_transaction_refunds(caller):
    """C6: the caller's refunds, filtered, newest first."""
    page = transactions.list_refunds(caller.account_id, app.current_request.query_params or {})
    return 200, page.body(transactions.with_names(page.data, payment_queries.refund_view))


@console("/v1/transactions/summary")
def transaction_summary(caller):
    """C6: trade and refund totals per Beijing day, from the daily totals (at most 90 days)."""
    return 200, transactions.summary(caller.account_id, app.current_request.query_params or {})


@console("/v1/transactions/orders.csv")
def export_transaction_orders(caller):
    """C6: one chunk of the filtered orders as CSV; `X-Next-Cursor` asks for the next one."""
    chunk = transactions.export_chunk(caller.account_id, app.current_request.query_params or {})
    headers = {"Content-Type": "text/csv; charset=utf-8",
               "Content-Disposition": 'attachment; filename="orders.csv"', "X-Csv-Rows": str(chunk.rows)}
    if chunk.next_cursor:
        headers["X-Next-Cursor"] = chunk.next_cursor
    return Response(body=chunk.text, status_code=200, headers=headers)


@console("/v1/sub-merchants/{merchant_id}/keys", methods=("POST",), replayable=False)
def reset_sub_merchant_keys(caller, merchant_id):
    return 201, sub_merchants.reset_keys(caller.account_id, caller.account_id, merchant_id)


@console("/v1/sub-merchants/{merchant_id}/channel", methods=("PUT",), fields=("channel", "version"))
def switch_sub_merchant_channel(caller, merchant_id):
    return 200, sub_merchants.view(sub_merchants.switch_channel(caller.account_id, caller.account_id, merchant_id,
                                                                _json_body()))


# --- C5.5 Alipay authorization of a sub-merchant -------------------------------------------------

@console("/v1/sub-merchants/{merchant_id}/alipay-authorization-links", methods=("POST",))
def create_alipay_authorization_link(caller, merchant_id):
    return 201, alipay_authorization.authorization_link(caller.account_id, merchant_id)


@console("/v1/sub-merchants/{merchant_id}/alipay-authorization", methods=("DELETE",))
def clear_alipay_authorization(caller, merchant_id):
    merchant = alipay_authorization.clear(caller.account_id, caller.account_id, merchant_id)
    return 200, alipay_authorization.authorization_view(merchant)


# --- C5.7 one-code setup in the console ------------------------------------------------------

@console("/v1/sub-merchants/{merchant_id}/setup-codes")
def get_setup_codes(caller, merchant_id):
    """The merchant's admin activation code and management code (owner only). They are issued
    the first time this is asked, never at sync: a sync of 20,000 merchants writes no code."""
    return 200, onecode_admins.setup_codes(caller.account_id, merchant_id)


@console("/v1/sub-merchants/{merchant_id}/setup-codes/admin-activation", methods=("POST",))
def reissue_admin_activation_code(caller, merchant_id):
    return 201, onecode_admins.reissue_admin_activation(caller.account_id, merchant_id)


@console("/v1/sub-merchants/{merchant_id}/setup-codes/management", methods=("POST",))
def reissue_management_code(caller, merchant_id):
    return 201, onecode_admins.reissue_management(caller.account_id, merchant_id)


@console("/v1/sub-merchants/{merchant_id}/admins")
def list_merchant_admins(caller, merchant_id):
    return 200, onecode_console.admin_list(caller.account_id, merchant_id)


@console("/v1/sub-merchants/{merchant_id}/stores")
def list_merchant_stores(caller, merchant_id):
    limit, cursor = _page_query()
    return 200, onecode_console.store_page(caller.account_id, merchant_id, limit, cursor)


@console("/v1/stores/{store_id}")
def get_store(caller, store_id):
    return 200, onecode_console.store_detail(caller.account_id, store_id)


@app.route(alipay_authorization.CALLBACK_PATH)
def h5_alipay_authorization_callback():
    return _h5(lambda: h5_alipay_authorization.callback_page(app.current_request.query_params or {}))


@app.schedule(Rate(1, unit=Rate.HOURS))
def refresh_alipay_authorizations(event):
    """Refresh merchants' Alipay tokens before they expire: only the due ones, found by index."""
    remaining = event.context.get_remaining_time_in_millis if event.context else None
    result = alipay_authorization.refresh_due(time_left_ms=remaining)
    logger.info("alipay refresh sweep", extra={"examined": result.examined, "refreshed": result.refreshed,
                                                "failed": result.failed, "stopped_early": result.stopped_early})
    return {"examined": result.examined, "refreshed": result.refreshed, "failed": result.failed,
            "stopped_early": result.stopped_early}


@console("/v1/provider-sync-codes", methods=("POST",))
def create_provider_sync_code(caller):
    return 201, provider_sync.code_view(provider_sync.issue_code(caller.account_id))


@console("/v1/provider-sync-codes/{code_id}")
def get_provider_sync_code(caller, code_id):
    return 200, provider_sync.code_view(qrcodes.own(caller.account_id, code_id, provider_sync.KIND))


@console("/v1/providers/{sp_mchid}/maidan-assistant-binding", methods=("POST",))
def bind_provider_to_maidan_assistant(caller, sp_mchid):
    outcome, view = assistant_binding.bind(caller.account_id, sp_mchid)
    if outcome == "code":
        return 202, {"object": "maidan_assistant_binding", "outcome": "scan_code", "code": view}
    return 200, {"object": "maidan_assistant_binding", "outcome": "bound", "provider": view}


@console("/v1/maidan-assistant-binding-codes/{code_id}")
def get_maidan_assistant_binding_code(caller, code_id):
    return 200, assistant_binding.code_view(qrcodes.own(caller.account_id, code_id, assistant_binding.KIND))


@console("/v1/audit-log")
def list_audit_log(caller):
    limit, cursor = _page_query()
    entity = (app.current_request.query_params or {}).get("entity")
    return 200, audit.list_entries(caller.account_id, limit, cursor, entity).body(audit.entry_view)


# --- C5.3 sub-merchant sync and C7 jobs ------------------------------------------------------

@console("/v1/sub-merchant-sync-jobs", methods=("POST",))
def start_sub_merchant_sync(caller):
    """202 with a new job; 200 with the running one when a sync is already under way."""
    job, started = sub_merchant_sync.start(caller.account_id)
    return (202 if started else 200), jobs.view(job) | {"already_running": not started}


@console("/v1/jobs")
def list_jobs(caller):
    """Newest first; filters: kind, status."""
    limit, cursor = _page_query()
    query = app.current_request.query_params or {}
    return 200, jobs.list_jobs(caller.account_id, query, limit, cursor).body(jobs.view)


@console("/v1/jobs/{job_id}")
def get_job(caller, job_id):
    return 200, job_detail.detail(jobs.get(caller.account_id, job_id))


@console("/v1/jobs/{job_id}/retry", methods=("POST",))
def retry_job(caller, job_id):
    return 202, job_detail.detail(job_detail.retry(jobs.get(caller.account_id, job_id)))


# --- H5 pages ----------------------------------------------------------------------------------

def _h5(make_page) -> Response:
    try:
        page = make_page()
    except Exception:
        logger.exception("unhandled error on an H5 page")
        page = h5.PageResponse(500, render("message.html", page_id="internal-error", title="出错了",
                                           message="服务出现了问题，请稍后重试。", tone="err", steps=[],
                                           detail=None), {"Content-Type": "text/html; charset=utf-8"})
    return Response(body=page.body, status_code=page.status, headers=page.headers)


def _cookie() -> str | None:
    return app.current_request.headers.get("cookie")


def _form() -> dict:
    raw = (app.current_request.raw_body or b"").decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(raw).items()}


@app.route("/h5/q/{code_id}")
def h5_scan(code_id):
    return _h5(lambda: h5.scan(code_id, _cookie(), app.current_request.headers.get("user-agent")))


@app.route("/h5/q/{code_id}/confirm", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def h5_confirm(code_id):
    return _h5(lambda: h5.confirm(code_id, _cookie(), _form()))


@app.route(h5.OAUTH_CALLBACK_PATH)
def h5_wechat_oauth_callback():
    return _h5(lambda: h5.oauth_callback(app.current_request.query_params or {}, _cookie()))


# --- H7/H8 pay pages ---------------------------------------------------------------------------

def _user_agent() -> str | None:
    return app.current_request.headers.get("user-agent")


@app.route("/h5/pay/{code_id}")
def h5_pay_page(code_id):
    return _h5(lambda: pay_pages.pay_page(qrcodes.find(code_id), _cookie(), _user_agent()))


@app.route("/h5/pay/{code_id}", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def h5_pay(code_id):
    return _h5(lambda: pay_pages.pay(code_id, _cookie(), _user_agent(), _form()))


@app.route("/h5/pay/orders/{out_trade_no}")
def h5_pay_result(out_trade_no):
    return _h5(lambda: pay_pages.result_page(out_trade_no, app.current_request.query_params or {}))


@app.route("/h5/pay/orders/{out_trade_no}/state")
def h5_pay_order_state(out_trade_no):
    return _h5(lambda: pay_pages.order_state(out_trade_no, app.current_request.query_params or {}))


@app.route(pay_pages.DONE_PATH)
def h5_pay_done():
    return _h5(pay_pages.done_page)


@app.route(pay_pages.WECHAT_CALLBACK_PATH)
def h5_pay_wechat_oauth_callback():
    return _h5(lambda: pay_pages.payer_callback(pay_pages.WECHAT, app.current_request.query_params or {}, _cookie()))


@app.route(pay_pages.ALIPAY_CALLBACK_PATH)
def h5_pay_alipay_oauth_callback():
    return _h5(lambda: pay_pages.payer_callback(pay_pages.ALIPAY, app.current_request.query_params or {}, _cookie()))


# --- H3-H6 one-code setup pages ------------------------------------------------------------------

@app.route("/h5/merchants/{merchant_id}")
def h5_merchant(merchant_id):
    return _h5(lambda: merchant_pages.merchant_page(merchant_id, _cookie(), app.current_request.query_params or {}))


@app.route("/h5/merchants/{merchant_id}/new-store")
def h5_merchant_new_store(merchant_id):
    return _h5(lambda: merchant_pages.new_store_page(merchant_id, _cookie()))


@app.route("/h5/merchants/{merchant_id}/orders")
def h5_merchant_orders(merchant_id):
    return _h5(lambda: phone_orders.merchant_orders_page(merchant_id, _cookie(),
                                                         app.current_request.query_params or {}))


@app.route("/h5/merchants/{merchant_id}/{action}", methods=["POST"],
           content_types=["application/x-www-form-urlencoded"])
def h5_merchant_action(merchant_id, action):
    return _h5(lambda: merchant_pages.merchant_action(merchant_id, action, _cookie(), _form()))


@app.route("/h5/me")
def h5_me():
    return _h5(lambda: merchant_pages.me_page(_cookie(), app.current_request.query_params or {}))


@app.route("/h5/codes/{code_id}/image.png")
def h5_code_png(code_id):
    return _h5(lambda: code_images.image(code_id, _cookie(), "png"))


@app.route("/h5/codes/{code_id}/image.svg")
def h5_code_svg(code_id):
    return _h5(lambda: code_images.image(code_id, _cookie(), "svg"))


@app.route("/h5/stores/{store_id}")
def h5_store(store_id):
    return _h5(lambda: store_pages.store_page(store_id, _cookie(), app.current_request.query_params or {}))


@app.route("/h5/stores/{store_id}/my-code")
def h5_store_my_code(store_id):
    return _h5(lambda: store_pages.my_code_page(store_id, _cookie()))


@app.route("/h5/stores/{store_id}/orders")
def h5_store_orders(store_id):
    return _h5(lambda: phone_orders.store_orders_page(store_id, _cookie(), app.current_request.query_params or {}))


@app.route("/h5/stores/{store_id}/poster")
def h5_store_poster(store_id):
    return _h5(lambda: store_pages.poster_page(store_id, _cookie(), app.current_request.query_params or {}))


@app.route("/h5/stores/{store_id}/{action}", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def h5_store_action(store_id, action):
    return _h5(lambda: store_pages.store_action(store_id, action, _cookie(), _form()))


@app.route("/h5/orders/{out_trade_no}")
def h5_order(out_trade_no):
    return _h5(lambda: refund_pages.order_page(out_trade_no, _cookie(), app.current_request.query_params or {}))


@app.route("/h5/orders/{out_trade_no}/refund", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def h5_order_refund(out_trade_no):
    return _h5(lambda: refund_pages.refund_action(out_trade_no, _cookie(), _form()))


# --- C8 console page ---------------------------------------------------------------------------

@app.route("/")
def home():
    return Response(body="", status_code=302, headers={"Location": "/console"})


@app.route("/console")
def console_page():
    return Response(body=static_text("console.html"), headers={"Content-Type": "text/html; charset=utf-8"})


@app.route("/static/{name}")
def static_file(name):
    """The pages' scripts and styles (their CSP allows no inline ones)."""
    return _static_response(static_asset(name))


@app.route("/static/console/{name}")
def console_module_file(name):
    """The console's ES modules, one per section and shared piece (see docs/console.md)."""
    return _static_response(console_module(name))


def _static_response(asset: tuple[str, str] | None) -> Response:
    """A file as (text, content type), no-cache so a deploy shows at once; None is not found."""
    if asset is None:
        return _error_response(NotFound("no such file", param="name"))
    text, content_type = asset
    return Response(body=text, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})


# --- B2 scheduled sweeps -----------------------------------------------------------------------

@app.schedule(Rate(1, unit=Rate.MINUTES))
def expire_qr_codes(event):
    """Mark live codes past their expiry as expired, so the console sees them as such."""
    result = qrcodes.expire_due()
    logger.info("qr expiry sweep", extra={"examined": result.examined, "expired": result.expired})
    return {"examined": result.examined, "expired": result.expired}


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_open_orders(event):
    """P4/P5: close unpaid orders past their expiry and settle the ones paid without a
    notification, through the sparse index of open orders."""
    result = payment_sweeps.sweep_open_orders()
    logger.info("open orders sweep", extra=result)
    return result


@app.schedule(Rate(1, unit=Rate.MINUTES))
def hand_over_outbox_items(event):
    """P3's trigger: hand to the follow-up queue the outbox items a crash left behind."""
    result = payment_outbox.sweep()
    logger.info("outbox sweep", extra=result)
    return result


@app.schedule(Rate(1, unit=Rate.MINUTES))
def attempt_due_deliveries(event):
    """B4/B5: retry the clerk messages and provider callbacks whose next attempt is due."""
    result = deliveries.sweep_due()
    logger.info("due deliveries sweep", extra=result)
    return result


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_processing_refunds(event):
    """P6: ask the channel about refunds still processing (a lost notification, a lost answer)."""
    result = refunds.sweep_processing_refunds()
    logger.info("processing refunds sweep", extra=result)
    return result


# --- P2 payment notifications (called by the channels, not by people) ---------------------------

def _channel_reply(answer: tuple[int, dict, str]) -> Response:
    status, headers, body = answer
    return Response(body=body, status_code=status, headers=headers)


@app.route("/notify/wechatpay/{account_id}/{sp_mchid}", methods=["POST"], content_types=["application/json"])
def wechatpay_notification(account_id, sp_mchid):
    request = app.current_request
    return _channel_reply(payment_notifications.wechatpay_notification(account_id, sp_mchid, dict(request.headers),
                                                                       request.raw_body or b""))


@app.route("/notify/maidan", methods=["POST"], content_types=["application/json"])
def maidan_notification():
    request = app.current_request
    return _channel_reply(payment_notifications.maidan_notification(dict(request.headers), request.raw_body or b""))


@app.route("/notify/alipay", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def alipay_notification():
    return _channel_reply(payment_notifications.alipay_notification(app.current_request.raw_body or b""))


# --- B1 / B3 job queues ------------------------------------------------------------------------

@app.schedule(Rate(5, unit=Rate.MINUTES))
def heal_stalled_jobs(event):
    """C7: a running job with no progress for a while lost a message or its end: heal it, or
    fail it (retryable), so no job and no "already running" lock outlives its work."""
    result = job_detail.heal_stalled_jobs()
    logger.info("stalled jobs check", extra=result)
    return result


@app.on_sqs_message(queue=queues.SUB_MERCHANT_SYNC, batch_size=1)
def sync_sub_merchant_pages(event):
    """B1: each message is one page of one provider's sub-merchants in 买单. Batch size 1: a
    batch is handled in order, so a larger one would queue one provider's page behind
    another's and stretch the sync's critical path."""
    return sub_merchant_sync.handle_messages(event.to_dict(), event.context)


@app.on_sqs_message(queue=queues.SUB_MERCHANT_SYNC_DEAD_LETTERS, batch_size=10)
def record_failed_sync_pages(event):
    """B1: a page that kept failing lands here and is marked failed (and retryable) in its job."""
    return sub_merchant_sync.handle_dead_letters(event.to_dict(), event.context)


@app.on_sqs_message(queue=queues.REATTRIBUTION, batch_size=1)
def reattribute_transaction_pages(event):
    """B3: each message is one page of a merchant's orders or refunds to move."""
    return reattribution.handle_messages(event.to_dict(), event.context)


@app.on_sqs_message(queue=queues.REATTRIBUTION_DEAD_LETTERS, batch_size=10)
def record_failed_reattribution_pages(event):
    """B3: a page that kept failing stops its job, which can then be retried."""
    return reattribution.handle_dead_letters(event.to_dict(), event.context)


@app.on_sqs_message(queue=queues.PAYMENT_FOLLOW_UP, batch_size=10)
def follow_up_paid_orders(event):
    """P3: the work that follows a paid order (for now its audit entry), once per outbox item."""
    return payment_outbox.handle_messages(event.to_dict(), event.context)
