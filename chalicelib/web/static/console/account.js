// 账号: who is signed in (with the account ID a provider needs to attach it as a
// sub-service-provider), the bound WeChats (bind another, unbind with confirmation, never
// the last one) and sign-out.
import {api} from "./api.js";
import {append, button, card, copy, facts, h, pageHead, time} from "./dom.js";
import {signOut} from "./main.js";
import {account} from "./state.js";
import {pagedTable} from "./table.js";
import {confirm, qrDialog, toast, toastError} from "./ui.js";

export const section = {id: "account", label: "账号", home: "/account", roles: ["owner", "sub_service_provider"]};

async function accountView(ctx) {
  const me = await api("GET", "/v1/me", {signal: ctx.signal});
  account.me = me;
  let count = me.wechat_binding_count;
  const table = pagedTable({id: "bindings",
    columns: [
      {label: "微信昵称", render: (b) => b.nickname || "微信用户"},
      {label: "openid", render: (b) => h("code", {text: b.openid})},
      {label: "unionid", render: (b) => b.unionid ? h("code", {text: b.unionid}) : null},
      {label: "绑定时间", render: (b) => time(b.bound_at)},
      {label: "操作", render: (b) => h("button", {class: "link danger", type: "button", dataset: {unbind: b.openid},
        title: count <= 1 ? "最后一个微信号不能解绑" : null, disabled: count <= 1, onclick: async () => {
          if (!await confirm({title: "解绑微信号", confirmText: "解绑",
                              message: `解绑后，该微信号不能再为本账号确认敏感操作。确定解绑 ${b.nickname || b.openid}？`})) return;
          try {
            await api("DELETE", "/v1/wechat-bindings/" + encodeURIComponent(b.openid));
            toast("已解绑");
            count -= 1;
            table.reload();
          } catch (error) { toastError(error); }
        }}, "解绑")},
    ],
    fetchPage: async (cursor, signal) => {
      const fresh = await api("GET", "/v1/me", {signal});
      count = fresh.wechat_binding_count;
      return api("GET", "/v1/wechat-bindings?limit=20" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), {signal});
    },
    empty: "还没有绑定的微信号。"});
  append(ctx.view, 
    pageHead("账号", button("退出登录", signOut, {kind: "ghost", id: "account-sign-out"})),
    card("账号信息", facts([["邮箱", me.email], ["名称", me.display_name],
      ["账号 ID", h("span", {class: "with-action"}, h("code", {id: "account-id", text: me.id}),
        h("button", {class: "link", type: "button", onclick: async () => toast(await copy(me.id) ? "已复制账号 ID" : "复制失败，请手动选中复制")}, "复制"))],
      ["注册时间", time(me.created_at)]]),
      h("p", {class: "note", text: "服务商要把您添加为子服务商时，请把账号 ID 发给对方。"})),
    card("已绑定的微信号",
      h("p", {class: "note", text: "控制台的敏感操作（绑定、同步服务商）需要微信买单服务商助手管理员扫码确认。至少保留一个微信号。"}),
      table.element,
      h("div", {class: "form-actions"}, button("扫码绑定另一个微信号", async () => {
        try { qrDialog("binding", await api("POST", "/v1/wechat-binding-codes"), {onDone: () => { toast("绑定成功", "ok"); table.reload(); }}); }
        catch (error) { toastError(error); }
      }, {id: "bind-another"}))));
  ctx.onLeave(table.abort);
  await table.reload();
}

export function register(route) {
  route("/account", accountView, {section: "account"});
}
