// P7 / C8 订单: a merchant's orders as a card on its detail (newest first, cursor pages) and
// one order's page (#/orders/<out_trade_no>). Read-only: the API scopes both to the owner
// or to the sub-service-provider the order counts for. Imported by merchants.js.
import {api} from "./api.js";
import {append, card, facts, h, pageHead, time} from "./dom.js";
import {yuan} from "./money.js";
import {pagedTable} from "./table.js";
import {statusBadge} from "./ui.js";

export const ORDER_STATE = {SUCCESS: ["已支付", "ok"], NOTPAY: ["待支付", "mute"], CLOSED: ["已关闭", "mute"],
                            PAYERROR: ["支付失败", "error"]};
export const ORDER_CHANNEL = {official_direct: "微信支付（官方直连）", maidan: "微信买单", alipay: "支付宝"};
const WALLET = {wechat: "微信", alipay: "支付宝"};
const SOURCE = {store_code: "门店收款码", clerk_code: "店员收款码"};

export function stateBadge(state) {
  const [label, tone] = ORDER_STATE[state] || [state || "未知", "mute"];
  return statusBadge(label, tone);
}

function orderHref(order) {
  return "#/orders/" + encodeURIComponent(order.out_trade_no);
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

async function detailView(ctx) {
  const order = await api("GET", "/v1/orders/" + encodeURIComponent(ctx.params.no), {signal: ctx.signal});
  append(ctx.view,
    pageHead("订单 " + order.out_trade_no,
      h("a", {href: "#/sub-merchants/" + encodeURIComponent(order.merchant_id), class: "button ghost", id: "order-merchant"}, "返回商户")),
    card("订单信息", h("div", {id: "order-detail"}, facts([
      ["订单号", h("span", {class: "mono"}, order.out_trade_no)],
      ["状态", stateBadge(order.state)],
      ["金额", yuan(order.total)],
      ["已退款", order.refunded ? yuan(order.refunded) : "无"],
      ["渠道", ORDER_CHANNEL[order.channel] || order.channel],
      ["付款方式", WALLET[order.wallet] || order.wallet],
      ["渠道交易号", order.upstream_trade_no],
      ["创建时间", time(order.created_at)],
      ["支付时间", time(order.paid_at)],
      ["关闭时间", time(order.closed_at)],
      ["支付截止", time(order.time_expire)],
      ["备注", order.remark]]))),
    card("归属", facts([
      ["商户", h("a", {href: "#/sub-merchants/" + encodeURIComponent(order.merchant_id)}, order.merchant_id)],
      ["服务商商户号", order.sp_mchid],
      ["微信支付子商户号", order.sub_mchid],
      ["子服务商", order.sub_service_provider || "无"],
      ["门店", order.store_id ? h("a", {href: "#/stores/" + encodeURIComponent(order.store_id)}, order.store_id) : null],
      ["店员", order.clerk_id],
      ["来源", SOURCE[order.source] || order.source]])));
}

export function register(route) {
  route("/orders/:no", detailView, {section: "merchants"});
}
