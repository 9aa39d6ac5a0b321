// P7 / P6 / B4 / B5 / C8 订单: a merchant's orders as a card on its detail (newest first, cursor
// pages) and one order's page (#/orders/<out_trade_no>): its facts, its refunds and the 退款
// form, the provider callbacks with every attempt and 重新推送, and the clerks' messages.
// The API scopes all of it to the owner or the sub-service-provider the order counts for; a
// sub-service-provider reads only (no refund, no re-send). Imported by merchants.js and
// transactions.js.
import {api} from "./api.js";
import {append, button, card, facts, h, pageHead, time} from "./dom.js";
import {form} from "./form.js";
import {AmountError, parseRefundYuan, yuan, yuanText} from "./money.js";
import {navigate} from "./router.js";
import {readOnly} from "./state.js";
import {pagedTable} from "./table.js";
import {confirm, statusBadge, toast, toastError} from "./ui.js";

export const ORDER_STATE = {SUCCESS: ["已支付", "ok"], NOTPAY: ["待支付", "mute"], CLOSED: ["已关闭", "mute"],
                            PAYERROR: ["支付失败", "error"]};
export const REFUND_STATE = {PROCESSING: ["退款中", "warn"], ABNORMAL: ["退款异常", "error"], SUCCESS: ["退款成功", "ok"],
                             FAILED: ["退款失败", "error"]};
export const ORDER_CHANNEL = {official_direct: "微信支付（官方直连）", maidan: "微信买单", alipay: "支付宝"};
const WALLET = {wechat: "微信", alipay: "支付宝"};
const SOURCE = {store_code: "门店收款码", clerk_code: "店员收款码"};
const DELIVERY_STATE = {pending: ["等待推送", "warn"], delivered: ["已送达", "ok"], failed: ["已失败", "error"],
                        skipped: ["未发送", "mute"]};
const CALLBACK_EVENT = {"order.paid": "支付成功通知", "refund.succeeded": "退款成功通知"};
const REASON_MAX = 80;

function badgeOf(table, state) {
  const [label, tone] = table[state] || [state || "未知", "mute"];
  return statusBadge(label, tone);
}

export function stateBadge(state) { return badgeOf(ORDER_STATE, state); }

export function refundStateBadge(state) { return badgeOf(REFUND_STATE, state); }

/** The console page of the order an order or refund view names. */
export function orderHref(item) {
  return "#/orders/" + encodeURIComponent(item.out_trade_no);
}

/** The 订单 card of a sub-merchant's detail. */
export function ordersCard(merchant, ctx) {
  const table = pagedTable({id: "merchant-orders",
    columns: [
      {label: "时间", render: (o) => time(o.created_at)},
      {label: "订单号", render: (o) => h("a", {href: orderHref(o), class: "mono"}, o.out_trade_no)},
      {label: "金额", render: (o) => yuan(o.total)},
      {label: "渠道", render: (o) => ORDER_CHANNEL[o.channel] || o.channel},
      {label: "状态", render: (o) => stateBadge(o.state)},
      {label: "门店", render: (o) => o.store_id ? h("a", {href: "#/stores/" + encodeURIComponent(o.store_id)}, o.store_id) : null},
      {label: "店员", render: (o) => o.clerk_id},
    ],
    rowHref: orderHref,
    fetchPage: (cursor, signal) => {
      const params = new URLSearchParams({limit: "20", ...(cursor ? {cursor} : {})});
      return api("GET", `/v1/sub-merchants/${encodeURIComponent(merchant.id)}/orders?${params}`, {signal});
    },
    empty: "还没有订单。顾客扫该商户的门店或店员收款码付款后，订单会显示在这里。"});
  ctx.onLeave(table.abort);
  table.reload();
  return card("订单", table.element);
}

function refundsTable(refunds) {
  if (!refunds.length) return h("p", {class: "note", id: "order-refunds-empty", text: "该订单还没有退款。"});
  return h("table", {class: "list", id: "order-refunds"},
    h("thead", {}, h("tr", {}, ["申请时间", "退款单号", "金额", "状态", "原因", "发起人", "完成时间"].map((text) => h("th", {text})))),
    h("tbody", {}, refunds.map((r) => h("tr", {dataset: {refund: r.out_refund_no}},
      h("td", {dataset: {label: "申请时间"}}, time(r.created_at)),
      h("td", {dataset: {label: "退款单号"}}, h("span", {class: "mono"}, r.out_refund_no)),
      h("td", {dataset: {label: "金额"}}, yuan(r.amount)),
      h("td", {dataset: {label: "状态"}}, refundStateBadge(r.state), r.failure ? h("div", {class: "hint"}, h("code", {}, r.failure)) : null),
      h("td", {dataset: {label: "原因"}}, r.reason || "—"),
      h("td", {dataset: {label: "发起人"}}, r.requested_by_name || r.requested_by || "—"),
      h("td", {dataset: {label: "完成时间"}}, time(r.succeeded_at || r.failed_at))))));
}

/** Why no refund can start now, or null when one can. */
function refundBlocked(order, refundable) {
  if (readOnly()) return "子服务商只能查看订单，不能退款。";
  if (order.state !== "SUCCESS") return "只有已支付的订单可以退款。";
  if ((order.refunds || []).some((r) => r.state === "ABNORMAL")) return "退款异常，请在微信支付商户平台处理；处理完成后才能再次退款。";
  const inProgress = order.refunding_no || (order.refunds || []).find((r) => r.state === "PROCESSING")?.out_refund_no;
  if (inProgress) return `退款 ${inProgress} 正在处理，完成后才能再次退款。`;
  if (refundable <= 0) return "该订单已全部退款。";
  return null;
}

function refundForm(order, refundable) {
  const view = form({id: "refund-form", submitText: "退款", values: {mode: "full"},
    sections: [{fields: [
      {name: "mode", label: "退款方式", type: "select", options: [["full", `全额退款（${yuan(refundable)}）`], ["partial", "部分退款"]]},
      {name: "amount", label: "退款金额（元）", inputmode: "decimal", placeholder: yuanText(refundable),
       hint: `可退 ${yuan(refundable)}，最多两位小数`},
      {name: "reason", label: "退款原因（选填）", hint: `不超过 ${REASON_MAX} 个字`},
    ]}],
    onSubmit: async ({collect}) => {
      const typed = collect();
      const amount = typed.mode === "partial" ? parseRefundYuan(typed.amount, "amount", refundable) : refundable;
      const reason = typed.reason || "";
      if ([...reason].length > REASON_MAX) throw new AmountError("refund_reason_too_long", "reason");
      const sure = await confirm({title: "确认退款", confirmText: "确认退款",
        message: `将向顾客原路退回 ${yuan(amount)}${reason ? `（原因：${reason}）` : ""}。退款提交后不能撤销。`});
      if (!sure) return;
      let refund;
      try {
        refund = await api("POST", `/v1/orders/${encodeURIComponent(order.out_trade_no)}/refunds`,
                           {body: {amount, ...(reason ? {reason} : {})}});
      } catch (error) {
        if (error.param === "amount" && typed.mode !== "partial") error.param = null;  // its input is hidden: say it above the button
        throw error;
      }
      toast(refund.state === "SUCCESS" ? `已退款 ${yuan(refund.amount)}` : refund.state === "FAILED" ? "退款失败，请查看退款记录"
            : refund.state === "ABNORMAL" ? "退款异常，请在微信支付商户平台处理"
            : `退款 ${yuan(refund.amount)} 已提交，正在处理`, ["FAILED", "ABNORMAL"].includes(refund.state) ? "error" : "ok");
      navigate(location.hash);
    }});
  const mode = view.element.querySelector("#f-mode");
  const amountField = view.element.querySelector('[data-field="amount"]');
  const showAmount = () => amountField.classList.toggle("hidden", mode.value !== "partial");
  mode.addEventListener("change", () => { showAmount(); if (mode.value === "partial") amountField.querySelector("input").focus(); });
  showAmount();
  return view.element;
}

function attemptsTable(log) {
  if (!log?.length) return h("p", {class: "note", text: "还没有推送尝试。"});
  return h("table", {class: "list attempts"},
    h("thead", {}, h("tr", {}, ["次序", "时间", "HTTP 状态", "耗时", "应答（前 200 字）", "错误"].map((text) => h("th", {text})))),
    h("tbody", {}, log.map((attempt, i) => h("tr", {dataset: {attempt: String(i + 1)}},
      h("td", {dataset: {label: "次序"}}, `第 ${i + 1} 次`),
      h("td", {dataset: {label: "时间"}}, time(attempt.at)),
      h("td", {dataset: {label: "HTTP 状态"}, class: "http-status"}, attempt.status != null ? String(attempt.status) : "无应答"),
      h("td", {dataset: {label: "耗时"}}, attempt.latency_ms != null ? `${attempt.latency_ms} 毫秒` : "—"),
      h("td", {dataset: {label: "应答（前 200 字）"}}, attempt.answer ? h("code", {class: "answer"}, attempt.answer) : "—"),
      h("td", {dataset: {label: "错误"}}, attempt.error ? h("code", {}, attempt.error) : "—")))));
}

function callbackBlock(delivery) {
  const next = delivery.state === "pending" && delivery.next_attempt_at ? `，下次尝试 ${time(delivery.next_attempt_at)}` : "";
  return h("div", {class: "delivery", dataset: {delivery: delivery.delivery_id, state: delivery.state}},
    h("div", {class: "delivery-head"},
      h("b", {text: CALLBACK_EVENT[delivery.event] || delivery.event}), badgeOf(DELIVERY_STATE, delivery.state),
      h("span", {class: "note", text: `共尝试 ${delivery.attempts ?? (delivery.log || []).length} 次` +
        (delivery.delivered_at ? `，送达于 ${time(delivery.delivered_at)}` : "") + next})),
    attemptsTable(delivery.log));
}

function callbacksBody(callbacks) {
  if (!callbacks.length) {
    return h("p", {class: "note", id: "order-callbacks-empty",
      text: "还没有回调。服务商设置了交易完成回调地址和回调密钥后，付款成功和退款成功时平台会推送通知。"});
  }
  return callbacks.map(callbackBlock);
}

function messagesBody(messages) {
  if (!messages.length) return h("p", {class: "note", text: "没有店员收款消息（门店收款码付款通知在岗且开启消息的店员，店员收款码只通知该店员）。"});
  return h("table", {class: "list", id: "order-messages"},
    h("thead", {}, h("tr", {}, ["接收人", "状态", "尝试次数", "送达时间", "说明"].map((text) => h("th", {text})))),
    h("tbody", {}, messages.map((m) => {
      const last = (m.log || []).at(-1);
      return h("tr", {dataset: {delivery: m.delivery_id, state: m.state}},
        h("td", {dataset: {label: "接收人"}}, m.recipient_name || "—"),
        h("td", {dataset: {label: "状态"}}, badgeOf(DELIVERY_STATE, m.state)),
        h("td", {dataset: {label: "尝试次数"}}, String(m.attempts ?? (m.log || []).length)),
        h("td", {dataset: {label: "送达时间"}}, time(m.delivered_at)),
        h("td", {dataset: {label: "说明"}}, last?.error ? h("code", {}, last.error) : "—"));
    })));
}

async function detailView(ctx) {
  const order = await api("GET", "/v1/orders/" + encodeURIComponent(ctx.params.no), {signal: ctx.signal});
  const refundable = Math.max(0, order.total - (order.refunded || 0));
  const blocked = refundBlocked(order, refundable);
  const callbacksHolder = h("div", {id: "order-callbacks"}, callbacksBody(order.callbacks || []));
  const messagesHolder = h("div", {id: "order-messages-card"}, messagesBody(order.messages || []));
  const resend = readOnly() ? null : button("重新推送", async (event) => {
    event.target.disabled = true;
    try {
      const views = await api("POST", `/v1/orders/${encodeURIComponent(order.out_trade_no)}/callbacks/resend`);
      callbacksHolder.replaceChildren(...[callbacksBody(views.callbacks || [])].flat());
      messagesHolder.replaceChildren(messagesBody(views.messages || []));
      const delivered = (views.callbacks || []).filter((c) => c.state === "delivered").length;
      toast(views.callbacks?.length ? `已重新推送：${delivered} / ${views.callbacks.length} 条已送达` : "该订单没有可推送的回调",
            views.callbacks?.length && delivered === views.callbacks.length ? "ok" : "info");
    } catch (error) { toastError(error); } finally { event.target.disabled = false; }
  }, {kind: "ghost small", id: "resend-callbacks"});
  append(ctx.view,
    pageHead("订单 " + order.out_trade_no,
      h("a", {href: "#/transactions", class: "button ghost", id: "order-transactions"}, "交易列表"),
      h("a", {href: "#/sub-merchants/" + encodeURIComponent(order.merchant_id), class: "button ghost", id: "order-merchant"}, "返回商户")),
    card("订单信息", h("div", {id: "order-detail"}, facts([
      ["订单号", h("span", {class: "mono"}, order.out_trade_no)],
      ["状态", stateBadge(order.state)],
      ["金额", yuan(order.total)],
      ["已退款", h("span", {id: "order-refunded"}, order.refunded ? yuan(order.refunded) : "无")],
      ["退款中", order.refunding_no ? h("span", {class: "mono", id: "order-refunding"}, order.refunding_no) : "无"],
      ["可退金额", order.state === "SUCCESS" ? yuan(refundable) : "—"],
      ["渠道", ORDER_CHANNEL[order.channel] || order.channel],
      ["付款方式", WALLET[order.wallet] || order.wallet],
      ["渠道交易号", order.upstream_trade_no],
      ["创建时间", time(order.created_at)],
      ["支付时间", time(order.paid_at)],
      ["关闭时间", time(order.closed_at)],
      ["支付截止", time(order.time_expire)],
      ["备注", order.remark]]))),
    card("归属", facts([
      ["商户", h("a", {href: "#/sub-merchants/" + encodeURIComponent(order.merchant_id)}, order.merchant_name || order.merchant_id)],
      ["服务商商户号", order.sp_mchid],
      ["微信支付子商户号", order.sub_mchid],
      ["子服务商", order.sub_service_provider || "无"],
      ["门店", order.store_id ? h("a", {href: "#/stores/" + encodeURIComponent(order.store_id)}, order.store_name || order.store_id) : null],
      ["店员", order.clerk_name || order.clerk_id],
      ["来源", SOURCE[order.source] || order.source]])),
    card("退款", h("div", {id: "order-refunds-card"}, refundsTable(order.refunds || []),
      blocked ? h("p", {class: "note", id: "refund-blocked", text: blocked}) : refundForm(order, refundable))),
    h("section", {class: "card"}, h("div", {class: "card-head"}, h("h2", {text: "回调记录"}), resend),
      h("p", {class: "note", text: "推送到服务商的交易完成回调地址；未收到 2xx 应答时按指数退避重试，至少 24 小时。"}),
      callbacksHolder),
    card("店员收款消息", messagesHolder));
}

export function register(route) {
  route("/orders/:no", detailView, {section: "transactions"});
}
