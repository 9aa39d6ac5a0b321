// C3 服务商: list, create and edit (WeChat Pay and Alipay sections, secrets write-only),
// configuration check, sync from 买单 by code, bind to the 买单 assistant. A
// sub-service-provider sees the providers it belongs to, read-only.
import {all, api} from "./api.js";
import {append, button, card, facts, h, pageHead, time} from "./dom.js";
import {form} from "./form.js";
import {parseYuan, yuan, yuanText} from "./money.js";
import {navigate} from "./router.js";
import {asRole, readOnly} from "./state.js";
import {pagedTable} from "./table.js";
import {confirm, qrDialog, secretsOnceDialog, statusBadge, toast, toastError} from "./ui.js";

export const section = {id: "providers", label: "服务商", home: "/providers", roles: ["owner", "sub_service_provider"]};

export const SOURCE = {maidan: "买单同步", manual: "手动添加"};
const HTTPS = "以 https:// 开头的网址";
const REBATE = "基点，0–10000（2000 即 20%），仅用于统计";

export const BASIC_FIELDS = [
  {name: "name", label: "名称", required: true},
  {name: "short_name", label: "简称"},
  {name: "logo_url", label: "Logo 图片地址", hint: HTTPS},
  {name: "callback_url", label: "交易完成回调地址", hint: HTTPS + "；付款成功和退款成功时，平台向此地址推送带签名的通知（回调密钥在服务商详情中生成）"},
  {name: "ad_image_url", label: "支付结果页广告图片", hint: HTTPS},
  {name: "ad_link_url", label: "广告链接", hint: HTTPS},
  {name: "remark", label: "备注", type: "textarea"},
];
const WECHAT_FIELDS = [
  {name: "wechat_pay.app_id", label: "公众号 AppID", hint: "wx 开头的 18 位"},
  {name: "wechat_pay.app_secret", label: "公众号 AppSecret", secret: true, hint: "32 位"},
  {name: "wechat_pay.api_v3_key", label: "API v3 密钥", secret: true, hint: "32 个字符"},
  {name: "wechat_pay.private_key_pem", label: "商户 API 私钥", type: "pem", secret: true, hint: "apiclient_key.pem 的内容（RSA 2048 位以上）"},
  {name: "wechat_pay.serial_no", label: "商户 API 证书序列号"},
  {name: "wechat_pay.platform_public_key_id", label: "微信支付公钥 ID", hint: "PUB_KEY_ID_ 开头"},
  {name: "wechat_pay.platform_public_key_pem", label: "微信支付公钥", type: "pem", hint: "PEM 格式"},
  {name: "wechat_pay.platform_certificate_pem", label: "微信支付平台证书（未使用微信支付公钥时填写）", type: "pem"},
  {name: "wechat_pay.rebate_ratio_bp", label: "返佣比例", type: "number", hint: REBATE},
];
const ALIPAY_FIELDS = [
  {name: "alipay.app_id", label: "支付宝应用 ID（第三方应用）", hint: "16 位数字"},
  {name: "alipay.private_key", label: "应用私钥", type: "pem", secret: true, hint: "PEM 或 base64（RSA 2048 位）"},
  {name: "alipay.alipay_public_key", label: "支付宝公钥", type: "pem", hint: "PEM 或 base64"},
  {name: "alipay.partner_id", label: "合作伙伴 ID（PID）", hint: "2088 开头的 16 位数字"},
  {name: "alipay.rebate_ratio_bp", label: "返佣比例", type: "number", hint: REBATE},
];

export const PAY_LIMIT_HINT = "元，最多两位小数，不超过 1,000,000 元；留空表示不单独限额";
const SLOT_TITLE = "不超过 20 个字；标题和链接都留空表示不显示";
const PAYMENT_FIELDS = [
  {name: "pay_limit_fen", label: "单笔限额（元）", inputmode: "decimal", hint: "顾客单笔付款的上限，" + PAY_LIMIT_HINT + "（商户也可单独设置，取较小者）"},
  {name: "result_slots.review.title", label: "支付结果页 · 评价入口标题", hint: SLOT_TITLE},
  {name: "result_slots.review.url", label: "评价入口链接", hint: HTTPS},
  {name: "result_slots.coupon.title", label: "支付结果页 · 优惠券入口标题", hint: SLOT_TITLE},
  {name: "result_slots.coupon.url", label: "优惠券入口链接", hint: HTTPS},
];
const SLOT_LABEL = {review: "评价入口", coupon: "优惠券入口"};

/**
 * The 收款设置 part of a provider body: the limit from yuan to fen (null when emptied) and
 * each touched slot sent whole ({title, url}, or null when both are empty), since the API
 * replaces a slot as a whole.
 */
function paymentSettings(body, everything) {
  if ("pay_limit_fen" in body) body.pay_limit_fen = parseYuan(body.pay_limit_fen, "pay_limit_fen");
  for (const slot of Object.keys(body.result_slots || {})) {
    const typed = everything.result_slots?.[slot] || {};
    body.result_slots[slot] = typed.title || typed.url ? {title: typed.title || "", url: typed.url || ""} : null;
  }
  return body;
}

const CHECK_NAME = {wechat_pay: "微信支付（商户私钥、证书序列号、平台公钥）", official_account: "公众号（AppID / AppSecret）",
                    alipay: "支付宝（应用私钥、支付宝公钥）"};
const PROBLEM_TEXT = [
  [/^WeChat Pay is not fully configured/, () => "微信支付尚未配置完整：需要公众号 AppID、API v3 密钥、商户 API 私钥、证书序列号和微信支付公钥（或平台证书）"],
  [/^Alipay is not configured/, () => "支付宝尚未配置：需要应用 ID、应用私钥和支付宝公钥"],
  [/^WeChat Pay refused our signature/, () => "微信支付拒绝了签名：请检查商户 API 私钥和证书序列号"],
  [/^WeChat Pay's answer did not verify/, () => "微信支付的应答验签失败：请检查微信支付公钥或平台证书"],
  [/^WeChat Pay found an order/, () => "配置指向了一个意外的商户：请检查服务商商户号和密钥是否对应"],
  [/^WeChat Pay answered (\S+)/, (m) => `微信支付返回错误 ${m[1]}：请检查配置`],
  [/^WeChat refused the AppID\/AppSecret \((\S+)/, (m) => `微信拒绝了公众号 AppID / AppSecret（错误 ${m[1]}）`],
  [/^Alipay refused our signature/, () => "支付宝拒绝了签名：请检查应用私钥，并确认对应的应用公钥已上传到支付宝"],
  [/^Alipay's answer did not verify/, () => "支付宝的应答验签失败：请检查支付宝公钥"],
  [/^Alipay accepted an authorization code/, () => "支付宝接受了一个不存在的授权码，配置异常，请联系技术支持"],
  [/^Alipay answered (\S+) (\S+)/, (m) => `支付宝返回错误 ${m[1]} ${m[2]}：请检查配置`],
  [/did not answer/, () => "对方系统没有响应，请稍后再检查"],
];

function problemText(problem) {
  for (const [pattern, text] of PROBLEM_TEXT) {
    const match = pattern.exec(problem || "");
    if (match) return text(match);
  }
  return "检查时出现意外错误，请稍后重试";
}

function configured(yes) { return statusBadge(yes ? "已配置" : "未配置", yes ? "ok" : "mute"); }

function assistantCell(provider, reload) {
  if (provider.maidan_assistant?.bound) return statusBadge("已绑定", "ok");
  if (readOnly()) return statusBadge("未绑定", "mute");
  return h("button", {class: "link", type: "button", onclick: () => bindAssistant(provider.sp_mchid, reload)}, "立即绑定");
}

async function bindAssistant(spMchid, done) {
  try {
    const answer = await api("POST", `/v1/providers/${spMchid}/maidan-assistant-binding`);
    if (answer.outcome === "scan_code") { qrDialog("assistant", answer.code, {onDone: () => { toast("已绑定买单服务商助手", "ok"); done(); }}); return; }
    toast("已绑定买单服务商助手", "ok");
    done();
  } catch (error) { toastError(error); }
}

export async function syncProviders(done) {
  try {
    qrDialog("sync", await api("POST", "/v1/provider-sync-codes"), {onDone: done});
  } catch (error) { toastError(error); }
}

async function listView(ctx) {
  const owner = !readOnly();
  const columns = [
    {label: "服务商商户号", render: (p) => h("a", {href: "#/providers/" + p.sp_mchid}, p.sp_mchid)},
    {label: "名称", render: (p) => p.name},
    {label: "来源", render: (p) => SOURCE[p.source] || p.source},
    {label: "买单助手", render: (p) => assistantCell(p, () => table.reload())},
    ...(owner ? [{label: "微信支付", render: (p) => configured(p.wechat_pay?.configured)},
                 {label: "支付宝", render: (p) => configured(p.alipay?.configured)},
                 {label: "状态", render: (p) => p.claim?.state === "lost" ? statusBadge("已被其他账号同步", "warn") : statusBadge("正常", "ok")}]
              : [{label: "简称", render: (p) => p.short_name}]),
  ];
  const table = pagedTable({id: "providers", columns, rowHref: (p) => "#/providers/" + p.sp_mchid,
    fetchPage: (cursor, signal) => api("GET", "/v1/providers?" + asRole(new URLSearchParams({limit: "20", ...(cursor ? {cursor} : {})})), {signal}),
    empty: owner ? "还没有服务商。点击“从买单同步服务商”，用买单服务商助手管理员的微信扫码确认；或手动新建。"
                 : "您还不是任何服务商的子服务商。"});
  append(ctx.view, 
    pageHead(owner ? "服务商" : "我所属的服务商",
      owner ? button("从买单同步服务商", () => syncProviders(() => table.reload()), {id: "sync-providers"}) : null,
      owner ? h("a", {href: "#/providers/new", class: "button ghost", id: "new-provider"}, "新建服务商") : null),
    card(null, owner ? null : h("p", {class: "note", text: "您作为子服务商可以查看这些服务商，不能修改。"}), table.element));
  ctx.onLeave(table.abort);
  await table.reload();
}

function providerForm(provider, {creating, onSaved, onCancel}) {
  const basic = creating ? [{name: "sp_mchid", label: "服务商商户号", required: true, hint: "8–10 位数字（微信支付服务商商户号）"}, ...BASIC_FIELDS]
                         : [{name: "sp_mchid", label: "服务商商户号", readonly: true}, ...BASIC_FIELDS];
  const values = {...provider, pay_limit_fen: yuanText(provider.pay_limit_fen)};
  return form({id: "provider-form", values, submitText: creating ? "创建服务商" : "保存修改", onCancel,
    sections: [{title: "基本信息", fields: basic},
               {title: "收款设置", note: "支付结果页可放一个评价入口和一个优惠券入口，顾客付款成功后看到。", fields: PAYMENT_FIELDS},
               {title: "微信支付", note: "密钥类字段只写不读：保存后只显示“已设置”，需要时点“更换”重新填写。", fields: WECHAT_FIELDS},
               {title: "支付宝", fields: ALIPAY_FIELDS}],
    onSubmit: async ({collect}) => {
      const body = paymentSettings(collect({changedOnly: !creating}), collect());
      if (!creating) {
        if (!Object.keys(body).length) { toast("没有需要保存的修改"); return; }
        body.version = provider.version;
      }
      const saved = creating ? await api("POST", "/v1/providers", {body})
                             : await api("PATCH", `/v1/providers/${provider.sp_mchid}`, {body});
      onSaved(saved);
    }});
}

async function createView(ctx) {
  const view = providerForm({}, {creating: true, onCancel: () => navigate("#/providers"),
    onSaved: (saved) => { toast("服务商已创建", "ok"); navigate("#/providers/" + saved.sp_mchid); }});
  append(ctx.view, pageHead("新建服务商"), card(null, view.element));
}

async function editView(ctx) {
  const provider = await api("GET", "/v1/providers/" + encodeURIComponent(ctx.params.sp), {signal: ctx.signal});
  const view = providerForm(provider, {creating: false, onCancel: () => navigate("#/providers/" + provider.sp_mchid),
    onSaved: () => { toast("已保存", "ok"); navigate("#/providers/" + provider.sp_mchid); }});
  append(ctx.view, pageHead("编辑服务商 · " + provider.name), card(null, view.element));
}

function secretSetText(setAt) {
  return setAt ? `已设置于 ${time(setAt)}` : "未设置";
}

/**
 * 交易完成回调 (B5): the URL (edited in the form) and the signing secret, made or rotated
 * here and shown once; afterwards the page says only when it was set.
 */
function callbackCard(provider) {
  const sp = provider.sp_mchid;
  const state = h("span", {id: "callback-secret-state"}, secretSetText(provider.callback_secret_set_at));
  let setAt = provider.callback_secret_set_at;
  const action = button(setAt ? "轮换密钥" : "生成密钥", async () => {
    if (setAt && !await confirm({title: "轮换回调密钥", confirmText: "轮换",
      message: "轮换后旧密钥立即失效：接收方需要改用新密钥验签，否则会拒收之后的回调。"})) return;
    action.disabled = true;
    try {
      const made = await api("POST", `/v1/providers/${encodeURIComponent(sp)}/callback-secret`, {idempotencyKey: false});
      setAt = made.set_at;
      state.textContent = secretSetText(setAt);
      action.textContent = "轮换密钥";
      secretsOnceDialog({title: "回调密钥", filename: `callback-secret-${sp}.txt`,
        intro: "接收方用它验证每次回调的 Cloudpay-Signature 头（t=时间戳,v1=HMAC-SHA256(密钥, \"时间戳.请求体\")）。",
        secrets: [{name: "callback_secret", label: "回调密钥", value: made.callback_secret, filename: `callback-secret-${sp}.txt`}]});
    } catch (error) { toastError(error); } finally { action.disabled = false; }
  }, {kind: "ghost small", id: "callback-secret"});
  return card("交易完成回调", h("div", {id: "provider-callback"}, facts([
    ["回调地址", provider.callback_url || "未设置（点“编辑”填写）"],
    ["回调密钥", h("span", {class: "with-action"}, state, action)]]),
    h("p", {class: "note", text: "付款成功和退款成功时推送；未收到 2xx 应答时按指数退避重试至少 24 小时。每次推送的投递记录在订单详情的“回调记录”中。"})));
}

function secretFact(state) {
  return state?.set ? `已设置 · ${time(state.set_at)}` : "未设置";
}

async function detailView(ctx) {
  const sp = ctx.params.sp;
  const provider = await api("GET", "/v1/providers/" + encodeURIComponent(sp), {signal: ctx.signal});
  const reload = () => navigate(location.hash);
  if (provider.access === "read_only") {
    append(ctx.view, pageHead(provider.name, h("a", {href: "#/merchants", class: "button ghost"}, "查看商户")),
      card("基本信息", facts([["服务商商户号", provider.sp_mchid], ["名称", provider.name], ["简称", provider.short_name],
                             ["来源", SOURCE[provider.source] || provider.source],
                             ["买单服务商助手", provider.maidan_assistant?.bound ? "已绑定" : "未绑定"]]),
           h("p", {class: "note", text: "您是该服务商的子服务商，只能查看。"})));
    return;
  }
  const checkResults = h("div", {id: "check-results"});
  const runCheck = async (event) => {
    event.target.disabled = true;
    checkResults.replaceChildren(h("p", {class: "loading", text: "正在向微信支付、微信和支付宝检查配置…"}));
    try {
      const result = await api("POST", `/v1/providers/${sp}/configuration-checks`);
      checkResults.replaceChildren(
        h("p", {class: result.ok ? "ok-text" : "warn", text: result.ok ? "全部检查通过。" : "有检查未通过，请按提示修改配置。"}),
        h("ul", {class: "checks"}, (result.checks || []).map((r) => h("li", {class: r.ok ? "pass" : "fail", dataset: {check: r.check}},
          h("b", {text: CHECK_NAME[r.check] || r.check}), "：", r.ok ? "通过" : problemText(r.problem)))));
    } catch (error) {
      checkResults.replaceChildren();
      toastError(error);
    } finally { event.target.disabled = false; }
  };
  const w = provider.wechat_pay || {}, a = provider.alipay || {};
  append(ctx.view, 
    pageHead(provider.name,
      h("a", {href: `#/providers/${sp}/edit`, class: "button primary", id: "edit-provider"}, "编辑"),
      button("配置检查", runCheck, {kind: "ghost", id: "check-provider"}),
      provider.maidan_assistant?.bound ? null : button("绑定买单服务商助手", () => bindAssistant(sp, reload), {kind: "ghost"})),
    provider.claim?.state === "lost" ? h("div", {class: "card warn", text: "该服务商已由买单中的管理员同步到其他账号，本账号不能再同步它的商户。"}) : null,
    checkResults,
    card("基本信息", facts([["服务商商户号", provider.sp_mchid], ["名称", provider.name], ["简称", provider.short_name],
      ["来源", SOURCE[provider.source] || provider.source],
      ["买单服务商助手", provider.maidan_assistant?.bound ? `已绑定 · ${time(provider.maidan_assistant.bound_at)}` : "未绑定"],
      ["归属确认", provider.claim?.proven ? "已确认（买单管理员扫码或绑定助手）" : "未确认（手动添加，需用买单管理员扫码同步或绑定助手确认）"],
      ["Logo", provider.logo_url], ["广告图片", provider.ad_image_url],
      ["广告链接", provider.ad_link_url], ["备注", provider.remark], ["创建时间", time(provider.created_at)],
      ["更新时间", time(provider.updated_at)]])),
    callbackCard(provider),
    card("收款设置", h("div", {id: "payment-settings"}, facts([
      ["单笔限额", provider.pay_limit_fen != null ? yuan(provider.pay_limit_fen) : "未单独设置（使用平台默认限额）"],
      ...["review", "coupon"].map((slot) => {
        const value = provider.result_slots?.[slot];
        return [SLOT_LABEL[slot], value ? h("span", {}, value.title, " · ", h("a", {href: value.url, target: "_blank", rel: "noopener noreferrer"}, value.url)) : "未设置"];
      })]))),
    card("微信支付", facts([["状态", w.configured ? "已配置" : "未配置"], ["公众号 AppID", w.app_id],
      ["公众号 AppSecret", secretFact(w.app_secret)], ["API v3 密钥", secretFact(w.api_v3_key)],
      ["商户 API 私钥", secretFact(w.private_key_pem)], ["商户 API 证书序列号", w.serial_no],
      ["微信支付公钥 ID", w.platform_public_key_id], ["微信支付公钥", w.platform_public_key_pem ? "已填写" : "未填写"],
      ["返佣比例", w.rebate_ratio_bp != null ? `${w.rebate_ratio_bp / 100}%` : null]])),
    card("支付宝", facts([["状态", a.configured ? "已配置" : "未配置"], ["应用 ID", a.app_id], ["应用私钥", secretFact(a.private_key)],
      ["支付宝公钥", a.alipay_public_key ? "已填写" : "未填写"], ["合作伙伴 ID（PID）", a.partner_id],
      ["返佣比例", a.rebate_ratio_bp != null ? `${a.rebate_ratio_bp / 100}%` : null]])),
    card("相关", h("div", {class: "links"},
      h("a", {href: `#/sub-service-providers/${sp}`}, "子服务商"),
      h("a", {href: `#/merchants?sp_mchid=${sp}`}, "商户"),
      h("a", {href: `#/audit?entity=${encodeURIComponent("provider#" + sp)}`}, "审计日志"))));
}

/** Every provider the signed-in role can see (for filters and pickers). */
export function allProviders(signal) {
  return all("/v1/providers?" + asRole(), {signal});
}

export function register(route) {
  route("/providers", listView, {section: "providers"});
  route("/providers/new", createView, {section: "providers"});
  route("/providers/:sp", detailView, {section: "providers"});
  route("/providers/:sp/edit", editView, {section: "providers"});
}
