// C5 商户: list with filters (provider, sub-service-provider, channel, name prefix), detail,
// create and version-guarded edit, key reset (shown once), Alipay authorization, channel
// switch, change of sub-service-provider (with its re-attribution job), sync from 买单;
// the 一码付 cards (codes, admins, stores) and store pages come from onecode.js.
import {all, api} from "./api.js";
import {append, button, card, copy, facts, h, pageHead, time} from "./dom.js";
import {form} from "./form.js";
import {jobBox, followJob, LIVE} from "./jobs.js";
import {parseYuan, yuan, yuanText} from "./money.js";
import {ordersCard, register as registerOrders} from "./orders.js";
import {allProviders, PAY_LIMIT_HINT, SOURCE} from "./providers.js";
import {navigate, replaceQuery} from "./router.js";
import {asRole, readOnly} from "./state.js";
import {pagedTable} from "./table.js";
import {onecodeCards, register as registerOnecode} from "./onecode.js";
import {confirm, dialog, secretsOnceDialog, statusBadge, toast, toastError} from "./ui.js";

export const section = {id: "merchants", label: "商户", home: "/merchants", roles: ["owner", "sub_service_provider"]};

export const CHANNEL = {maidan: "微信买单", official_direct: "官方直连"};
const ALIPAY_STATUS = {not_authorized: ["未授权", "mute"], authorized: ["已授权", "ok"],
                       refresh_failed: ["刷新失败（授权仍有效至到期）", "warn"], expired: ["已过期", "error"]};
const HTTPS = "以 https:// 开头的网址";

function ssps(spMchid, signal) {
  return spMchid ? all(`/v1/providers/${encodeURIComponent(spMchid)}/sub-service-providers`, {signal}) : Promise.resolve([]);
}

function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, label]) => h("option", {value: v}, label)));
  select.value = options.some(([v]) => v === value) ? value : "";
}

async function runningSync(signal) {
  const page = await api("GET", "/v1/jobs?limit=5", {signal});
  return (page.data || []).find((job) => job.kind === "sub_merchant_sync" && LIVE.has(job.status)) || null;
}

async function listView(ctx) {
  const owner = !readOnly();
  const query = ctx.query;
  const provider = h("select", {id: "filter-provider", "aria-label": "服务商"}, h("option", {value: ""}, "全部服务商"));
  const ssp = h("select", {id: "filter-ssp", "aria-label": "子服务商", disabled: true}, h("option", {value: ""}, "全部子服务商"));
  const channel = h("select", {id: "filter-channel", "aria-label": "微信支付通道"},
    h("option", {value: ""}, "全部通道"), h("option", {value: "maidan"}, "微信买单"), h("option", {value: "official_direct"}, "官方直连"));
  const name = h("input", {id: "filter-name", type: "search", placeholder: "按名称开头筛选", "aria-label": "商户名称"});
  channel.value = query.get("channel") || "";
  name.value = query.get("name") || "";
  const syncHolder = h("div", {id: "sync-job"});
  let syncing = false;

  const table = pagedTable({id: "merchants",
    columns: [
      {label: "名称", render: (m) => h("a", {href: "#/sub-merchants/" + m.id}, m.name)},
      {label: "服务商商户号", render: (m) => m.sp_mchid},
      {label: "子商户号", render: (m) => m.sub_mchid},
      {label: "通道", render: (m) => CHANNEL[m.channel] || m.channel},
      {label: "订单前缀", render: (m) => m.order_prefix},
      ...(owner ? [{label: "来源", render: (m) => SOURCE[m.source] || m.source}] : []),
    ],
    rowHref: (m) => "#/sub-merchants/" + m.id,
    fetchPage: (cursor, signal) => {
      const params = asRole(new URLSearchParams({limit: "20"}));
      if (owner && provider.value) params.set("sp_mchid", provider.value);
      if (owner && ssp.value) params.set("sub_service_provider", ssp.value);
      if (channel.value) params.set("channel", channel.value);
      if (name.value.trim()) params.set("name", name.value.trim());
      if (cursor) params.set("cursor", cursor);
      return api("GET", "/v1/sub-merchants?" + params, {signal});
    },
    busy: () => syncing ? h("div", {class: "empty info"}, "正在从买单同步商户，完成后列表会自动刷新…") : null,
    empty: () => owner ? (provider.value || ssp.value || channel.value || name.value ? "没有符合筛选条件的商户。"
                                                                                    : "还没有商户。先从买单同步服务商，再点击“从买单同步商户”；或手动新建。")
                       : "还没有归属于您的商户。"});

  function applyFilters() {
    replaceQuery(new URLSearchParams({sp_mchid: provider.value, sub_service_provider: ssp.value, channel: channel.value, name: name.value.trim()}));
    table.reload();
  }
  let typing = null;
  name.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(applyFilters, 300); });
  channel.addEventListener("change", applyFilters);
  ssp.addEventListener("change", applyFilters);
  provider.addEventListener("change", async () => {
    ssp.disabled = !provider.value;
    fillSelect(ssp, [["", provider.value ? "全部子服务商" : "全部子服务商（先选服务商）"]], "");
    applyFilters();
    if (provider.value) {
      const list = await ssps(provider.value, ctx.signal).catch(() => []);
      fillSelect(ssp, [["", "全部子服务商"], ...list.map((s) => [s.account_id, s.name || s.account_id])], "");
    }
  });

  async function watchSync(job) {
    syncing = true;
    followJob(job.id, syncHolder, ctx, (ended) => {
      syncing = false;
      toast(ended.status === "COMPLETED" ? "商户同步完成" : "商户同步已结束，有失败项，请在任务中查看", ended.status === "COMPLETED" ? "ok" : "info");
      table.reload();
    });
  }

  const syncButton = owner ? button("从买单同步商户", async (event) => {
    event.target.disabled = true;
    try {
      const job = await api("POST", "/v1/sub-merchant-sync-jobs");
      if (job.already_running) toast("已有一个同步任务正在进行，下方显示的是它的进度。");
      syncHolder.replaceChildren(jobBox(job));
      await watchSync(job);
      if (!table.element.querySelector("tbody tr")) table.reload();
    } catch (error) { toastError(error); } finally { event.target.disabled = false; }
  }, {id: "sync-merchants"}) : null;

  append(ctx.view, 
    pageHead(owner ? "商户" : "我的商户", syncButton,
      owner ? h("a", {href: "#/merchants/new", class: "button ghost", id: "new-merchant"}, "新建商户") : null),
    syncHolder,
    card(null, h("form", {class: "filters", onsubmit: (event) => { event.preventDefault(); applyFilters(); }},
      owner ? provider : null, owner ? ssp : null, channel, name), table.element));
  ctx.onLeave(table.abort);
  ctx.onLeave(() => clearTimeout(typing));

  if (owner) {
    const [providers, running] = await Promise.all([allProviders(ctx.signal), runningSync(ctx.signal).catch(() => null)]);
    fillSelect(provider, [["", "全部服务商"], ...providers.map((p) => [p.sp_mchid, `${p.name}（${p.sp_mchid}）`])], query.get("sp_mchid") || "");
    if (provider.value) {
      ssp.disabled = false;
      const list = await ssps(provider.value, ctx.signal).catch(() => []);
      fillSelect(ssp, [["", "全部子服务商"], ...list.map((s) => [s.account_id, s.name || s.account_id])], query.get("sub_service_provider") || "");
    }
    if (running) { syncHolder.replaceChildren(jobBox(running)); watchSync(running); }
  }
  await table.reload();
}

const MERCHANT_FIELDS = [
  {name: "name", label: "名称", required: true},
  {name: "short_name", label: "简称"},
  {name: "admin_name", label: "管理员姓名"},
  {name: "admin_email", label: "管理员邮箱", type: "email"},
  {name: "logo_url", label: "Logo 图片地址", hint: HTTPS},
  {name: "ad_image_url", label: "支付结果页广告图片", hint: HTTPS},
  {name: "ad_link_url", label: "广告链接", hint: HTTPS},
  {name: "remark", label: "备注", type: "textarea"},
  {name: "pay_limit_fen", label: "单笔限额（元）", inputmode: "decimal",
   hint: PAY_LIMIT_HINT + "（与服务商的限额取较小者）"},
];

/** The body with the pay limit typed in yuan turned into fen (null when emptied). */
function inFen(body) {
  if ("pay_limit_fen" in body) body.pay_limit_fen = parseYuan(body.pay_limit_fen, "pay_limit_fen");
  return body;
}

function sspField(list, {nullable}) {
  return {name: "sub_service_provider", label: "子服务商", type: "select", nullable,
          options: [["", "无"], ...list.map((s) => [s.account_id, `${s.name || "未命名"}（${s.account_id}）`])],
          hint: nullable ? "更换后会启动一个任务，把该商户的历史交易迁移到新的子服务商" : null};
}

async function createView(ctx) {
  const providers = await allProviders(ctx.signal);
  const chosen = ctx.query.get("sp_mchid") || providers[0]?.sp_mchid || "";
  const list = await ssps(chosen, ctx.signal).catch(() => []);
  const view = form({id: "merchant-form", values: {sp_mchid: chosen}, submitText: "创建商户", onCancel: () => navigate("#/merchants"),
    sections: [{title: "所属", fields: [
      {name: "sp_mchid", label: "服务商", type: "select", required: true, options: providers.map((p) => [p.sp_mchid, `${p.name}（${p.sp_mchid}）`])},
      sspField(list, {nullable: false})]},
               {title: "商户信息", fields: [...MERCHANT_FIELDS.slice(0, 4),
                 {name: "sub_mchid", label: "微信支付子商户号", hint: "8–10 位数字；设置后不能修改"}, ...MERCHANT_FIELDS.slice(4)]}],
    onSubmit: async ({collect}) => {
      const merchant = await api("POST", "/v1/sub-merchants", {body: inFen(collect())});
      toast("商户已创建", "ok");
      navigate("#/sub-merchants/" + merchant.id);
    }});
  view.element.querySelector("#f-sp_mchid").addEventListener("change", (event) => navigate("#/merchants/new?sp_mchid=" + event.target.value));
  append(ctx.view, pageHead("新建商户"), providers.length ? card(null, view.element)
    : card(null, h("p", {class: "empty", text: "还没有服务商，请先添加服务商。"})));
}

async function editView(ctx) {
  const merchant = await api("GET", "/v1/sub-merchants/" + encodeURIComponent(ctx.params.id), {signal: ctx.signal});
  const list = await ssps(merchant.sp_mchid, ctx.signal).catch(() => []);
  const values = {...merchant, pay_limit_fen: yuanText(merchant.pay_limit_fen)};
  const view = form({id: "merchant-form", values, submitText: "保存修改", onCancel: () => navigate("#/sub-merchants/" + merchant.id),
    sections: [{title: "商户信息", fields: [{name: "sp_mchid", label: "服务商商户号", readonly: true},
      {name: "order_prefix", label: "订单前缀", readonly: true}, ...MERCHANT_FIELDS.slice(0, 4),
      merchant.sub_mchid ? {name: "sub_mchid", label: "微信支付子商户号", readonly: true}
                         : {name: "sub_mchid", label: "微信支付子商户号", hint: "8–10 位数字；设置后不能修改"},
      ...MERCHANT_FIELDS.slice(4)]},
               {title: "子服务商", fields: [sspField(list, {nullable: true})]}],
    onSubmit: async ({collect}) => {
      const body = inFen(collect({changedOnly: true}));
      if (!Object.keys(body).length) { toast("没有需要保存的修改"); return; }
      body.version = merchant.version;
      const saved = await api("PATCH", "/v1/sub-merchants/" + merchant.id, {body});
      toast(saved.reattribution_job ? "已保存，正在把历史交易迁移到新的子服务商" : "已保存", "ok");
      navigate("#/sub-merchants/" + merchant.id);
    }});
  append(ctx.view, pageHead("编辑商户 · " + merchant.name), card(null, view.element));
}

async function resetKeys(merchant) {
  const ok = await confirm({title: "重置密钥", confirmText: "重置密钥",
    message: "将生成新的通信密钥（auth key）和 RSA 签名密钥对，旧密钥立即失效，商户的系统需要换用新密钥。新密钥只显示一次。"});
  if (!ok) return;
  try {
    const keys = await api("POST", `/v1/sub-merchants/${merchant.id}/keys`, {idempotencyKey: false});
    secretsOnceDialog({title: "新密钥（只显示一次）", filename: `${merchant.order_prefix || merchant.id}-keys.txt`,
      intro: `商户：${merchant.name}。私钥不在云支付保存，丢失后只能再次重置。`,
      secrets: [{name: "auth_key", label: "通信密钥（auth key）", value: keys.auth_key, filename: `${merchant.order_prefix}-auth-key.txt`},
                {name: "private_key_pem", label: "RSA 私钥", value: keys.private_key_pem, filename: `${merchant.order_prefix}-private-key.pem`},
                {name: "public_key_pem", label: "RSA 公钥（之后仍可查看）", value: keys.public_key_pem, filename: `${merchant.order_prefix}-public-key.pem`}]});
    return true;
  } catch (error) { toastError(error); return false; }
}

function alipayLinkDialog(link) {
  const url = h("textarea", {readonly: true, rows: 3, class: "mono", id: "alipay-link"}, link.url);
  dialog({title: "支付宝授权链接", id: "alipay-link-dialog", body: h("div", {class: "alipay-link"},
    h("p", {class: "warn", id: "alipay-link-warning"}, h("b", {text: "这是授权凭证，24 小时内有效："}),
      "任何拿到此链接或二维码的人都可以用自己的支付宝账号完成授权。请只发给商户本人；授权后请核对下方显示的授权支付宝账号。"),
    h("div", {class: "qr"}, h("img", {src: link.qr_code.png, alt: "支付宝授权二维码", id: "alipay-qr"})),
    h("p", {class: "note", text: `请商户用支付宝扫码，或在支付宝中打开链接。有效期至 ${time(link.expires_at)}。`}),
    url),
    actions: [button("复制链接", async () => toast(await copy(link.url) ? "已复制授权链接" : "复制失败，请手动选中复制"), {kind: "ghost"})]});
}

function alipayCard(merchant, reload) {
  const auth = merchant.alipay_authorization || {status: "not_authorized"};
  const [label, tone] = ALIPAY_STATUS[auth.status] || [auth.status, "mute"];
  const failure = auth.refresh_failure;
  return card("支付宝授权",
    h("div", {id: "alipay-authorization"}, facts([
      ["状态", statusBadge(label, tone)],
      ["授权的支付宝账号（PID）", auth.user_id],
      ["商户应用 ID", auth.auth_app_id],
      ["授权时间", time(auth.authorized_at)],
      ["令牌到期", time(auth.expires_at)],
      ["下次自动刷新", time(auth.next_refresh_at)],
      failure ? ["刷新失败", `${time(failure.at)}${failure.will_retry ? "，稍后会自动重试" : "，请让商户重新授权"}`] : null])),
    h("p", {class: "note", text: "授权后，云支付以服务商的支付宝第三方应用代商户收款。核对授权账号：不是商户本人的账号时请清除授权后重新授权。"}),
    h("div", {class: "form-actions"},
      button(auth.status === "not_authorized" ? "生成授权链接" : "重新生成授权链接", async () => {
        try { alipayLinkDialog(await api("POST", `/v1/sub-merchants/${merchant.id}/alipay-authorization-links`)); }
        catch (error) { toastError(error); }
      }, {kind: "primary", id: "alipay-link-button"}),
      auth.status !== "not_authorized" ? button("清除授权", async () => {
        if (!await confirm({title: "清除支付宝授权", confirmText: "清除授权",
                            message: "将删除云支付保存的授权令牌和支付宝账号，商户需要重新授权后才能用支付宝收款。"})) return;
        try { await api("DELETE", `/v1/sub-merchants/${merchant.id}/alipay-authorization`); toast("已清除支付宝授权"); reload(); }
        catch (error) { toastError(error); }
      }, {kind: "danger-ghost"}) : null));
}

async function switchChannel(merchant, reload) {
  const target = merchant.channel === "maidan" ? "official_direct" : "maidan";
  if (!await confirm({title: "切换微信支付通道", danger: false, confirmText: "切换",
                      message: `把商户“${merchant.name}”的微信支付通道从${CHANNEL[merchant.channel]}切换为${CHANNEL[target]}？` +
                               (target === "maidan" ? "云支付会先向买单确认商户已开通微信买单。" : "")})) return;
  try {
    await api("PUT", `/v1/sub-merchants/${merchant.id}/channel`, {body: {channel: target, version: merchant.version}});
    toast(`已切换为${CHANNEL[target]}`, "ok");
    reload();
  } catch (error) { toastError(error); }
}

async function detailView(ctx) {
  const merchant = await api("GET", "/v1/sub-merchants/" + encodeURIComponent(ctx.params.id), {signal: ctx.signal});
  const reload = () => navigate(location.hash);
  if (merchant.access === "read_only") {
    append(ctx.view, pageHead(merchant.name, h("a", {href: "#/merchants", class: "button ghost"}, "返回商户列表")),
      card("基本信息", facts([["名称", merchant.name], ["简称", merchant.short_name], ["服务商商户号", merchant.sp_mchid],
        ["微信支付通道", CHANNEL[merchant.channel] || merchant.channel], ["订单前缀", merchant.order_prefix]]),
        h("p", {class: "note", text: "您是该商户的子服务商，只能查看。"})),
      onecodeCards(merchant, ctx, {owner: false}),
      ordersCard(merchant, ctx));
    return;
  }
  const keys = merchant.keys || {};
  const jobHolder = h("div", {id: "reattribution-job"});
  const lastJob = (merchant.reattribution_jobs || []).at(-1);
  append(ctx.view, 
    pageHead(merchant.name,
      h("a", {href: `#/sub-merchants/${merchant.id}/edit`, class: "button primary", id: "edit-merchant"}, "编辑"),
      h("a", {href: "#/merchants", class: "button ghost"}, "返回商户列表")),
    card("基本信息", facts([["名称", merchant.name], ["简称", merchant.short_name],
      ["服务商", h("a", {href: "#/providers/" + merchant.sp_mchid}, merchant.sp_mchid)],
      ["微信支付子商户号", merchant.sub_mchid], ["订单前缀", merchant.order_prefix],
      ["来源", SOURCE[merchant.source] || merchant.source], ["管理员", merchant.admin_name],
      ["管理员邮箱", merchant.admin_email], ["管理员手机", merchant.admin_phone],
      merchant.source === "maidan" ? ["买单开通", merchant.maidan_opened ? "已开通" : "未开通"] : null,
      ["Logo", merchant.logo_url], ["广告图片", merchant.ad_image_url], ["广告链接", merchant.ad_link_url],
      ["单笔限额", h("span", {id: "merchant-pay-limit"}, merchant.pay_limit_fen != null ? yuan(merchant.pay_limit_fen)
                                                        : "未单独设置（使用服务商或平台的限额）")],
      ["备注", merchant.remark], ["创建时间", time(merchant.created_at)], ["更新时间", time(merchant.updated_at)]])),
    card("微信支付通道", facts([["当前通道", h("span", {id: "merchant-channel"}, CHANNEL[merchant.channel] || merchant.channel)]]),
      h("div", {class: "form-actions"}, button(merchant.channel === "maidan" ? "切换为官方直连" : "切换为微信买单",
        () => switchChannel(merchant, reload), {kind: "ghost", id: "switch-channel"}))),
    card("子服务商", facts([["当前子服务商", merchant.sub_service_provider || "无"]]), jobHolder,
      h("div", {class: "form-actions"}, h("a", {href: `#/sub-merchants/${merchant.id}/edit`, class: "button ghost"}, "更换子服务商"))),
    card("密钥", h("div", {id: "merchant-keys"}, facts([["通信密钥（auth key）", keys.auth_key_set ? "已设置（不再显示）" : "未生成"],
      ["最近重置", time(keys.reset_at)],
      ["RSA 公钥", keys.public_key_pem ? h("textarea", {readonly: true, rows: 4, class: "mono"}, keys.public_key_pem) : "未生成"]])),
      h("div", {class: "form-actions"}, button("重置密钥", async () => { if (await resetKeys(merchant)) reload(); }, {kind: "danger-ghost", id: "reset-keys"}))),
    alipayCard(merchant, reload),
    onecodeCards(merchant, ctx, {owner: true}),
    ordersCard(merchant, ctx),
    card("相关", h("div", {class: "links"}, h("a", {href: `#/audit?entity=${encodeURIComponent("sub_merchant#" + merchant.id)}`}, "审计日志"))));
  if (lastJob) followJob(lastJob, jobHolder, ctx, null);
}

export function register(route) {
  route("/merchants", listView, {section: "merchants"});
  route("/merchants/new", createView, {section: "merchants"});
  route("/sub-merchants/:id", detailView, {section: "merchants"});
  route("/sub-merchants/:id/edit", editView, {section: "merchants"});
  registerOnecode(route);
  registerOrders(route);
}
