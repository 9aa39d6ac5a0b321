// 审计日志: who changed what and when, newest first, cursor paged; `?entity=` narrows it to
// one provider or sub-merchant (their detail pages link here).
import {api} from "./api.js";
import {append, card, h, pageHead, time} from "./dom.js";
import {pagedTable} from "./table.js";

export const section = {id: "audit", label: "审计日志", home: "/audit", roles: ["owner"]};

const ACTION = {
  "provider.created": "创建服务商", "provider.updated": "修改服务商", "provider.synced": "从买单同步服务商",
  "provider.maidan_assistant_bound": "绑定买单服务商助手", "provider.claim_lost": "服务商被其他账号同步",
  "provider.claim_taken_over": "从其他账号接管服务商",
  "sub_service_provider.attached": "添加子服务商", "sub_service_provider.updated": "修改子服务商",
  "sub_service_provider.detached": "移除子服务商",
  "sub_merchant.created": "创建商户", "sub_merchant.updated": "修改商户", "sub_merchant.keys_reset": "重置商户密钥",
  "sub_merchant.channel_switched": "切换微信支付通道", "sub_merchant.reattributed": "迁移历史交易到新的子服务商",
  "sub_merchant.alipay_authorized": "商户完成支付宝授权", "sub_merchant.alipay_authorization_cleared": "清除支付宝授权",
};

function actorText(actor) {
  if (!actor) return "—";
  if (actor === "platform") return "云支付平台";
  if (actor.startsWith("wechat:")) return `微信用户 ${actor.slice(7)}（手机确认）`;
  if (actor.startsWith("alipay:")) return `支付宝账号 ${actor.slice(7)}`;
  return actor;
}

function entityLink(entity) {
  const [kind, id] = (entity || "").split("#");
  if (kind === "provider") return h("a", {href: "#/providers/" + id}, `服务商 ${id}`);
  if (kind === "sub_merchant") return h("a", {href: "#/sub-merchants/" + id}, `商户 ${id}`);
  return entity;
}

function valueText(value) {
  if (value === null || value === undefined || value === "") return "空";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function changesList(changes) {
  const entries = Object.entries(changes || {});
  if (!entries.length) return null;
  return h("ul", {class: "changes"}, entries.map(([field, change]) => h("li", {},
    h("code", {text: field}), "：",
    change === "changed" || change?.changed ? "已更换（密钥不记录内容）"
      : (change && typeof change === "object" && ("from" in change || "to" in change)) ? `${valueText(change.from)} → ${valueText(change.to)}`
      : valueText(change))));
}

async function listView(ctx) {
  const entity = ctx.query.get("entity");
  const table = pagedTable({id: "audit-log",
    columns: [
      {label: "时间", render: (e) => time(e.at)},
      {label: "操作人", render: (e) => actorText(e.actor)},
      {label: "操作", render: (e) => ACTION[e.action] || e.action},
      {label: "对象", render: (e) => entityLink(e.entity)},
      {label: "变更", render: (e) => changesList(e.changes), className: "wide"},
    ],
    fetchPage: (cursor, signal) => {
      const params = new URLSearchParams({limit: "20"});
      if (entity) params.set("entity", entity);
      if (cursor) params.set("cursor", cursor);
      return api("GET", "/v1/audit-log?" + params, {signal});
    },
    empty: "还没有记录。"});
  append(ctx.view, pageHead("审计日志"), card(null,
    entity ? h("p", {class: "note"}, "只显示 ", entityLink(entity), " 的记录 · ", h("a", {href: "#/audit"}, "显示全部")) : null,
    table.element));
  ctx.onLeave(table.abort);
  await table.reload();
}

export function register(route) {
  route("/audit", listView, {section: "audit"});
}
