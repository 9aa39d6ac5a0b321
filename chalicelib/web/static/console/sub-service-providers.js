// C4 子服务商: per provider, attach a console account (by its account ID) as a
// sub-service-provider, edit it (version-guarded) and detach it (refused while merchants
// are attributed to it).
import {api} from "./api.js";
import {append, button, card, h, pageHead, time} from "./dom.js";
import {form} from "./form.js";
import {navigate} from "./router.js";
import {allProviders} from "./providers.js";
import {pagedTable} from "./table.js";
import {confirm, dialog, toast, toastError} from "./ui.js";

export const section = {id: "sub-service-providers", label: "子服务商", home: "/sub-service-providers", roles: ["owner"]};

const FIELDS = [
  {name: "name", label: "名称", required: true},
  {name: "admin_name", label: "管理员姓名", required: true},
  {name: "phone", label: "联系电话", required: true, hint: "手机或座机号码"},
  {name: "rebate_ratio_bp", label: "返佣比例", type: "number", hint: "基点，0–10000（1500 即 15%），仅用于统计"},
  {name: "remark", label: "备注", type: "textarea"},
];

async function pickView(ctx) {
  const providers = await allProviders(ctx.signal);
  if (providers.length === 1) { navigate("#/sub-service-providers/" + providers[0].sp_mchid); return; }
  append(ctx.view, pageHead("子服务商"), card(null,
    h("p", {class: "note", text: "子服务商是挂在服务商下的渠道伙伴：他们用自己的控制台账号登录后，可以只读查看所属服务商和归属于他们的商户。请选择服务商："}),
    providers.length ? h("ul", {class: "pick"}, providers.map((p) => h("li", {},
      h("a", {href: "#/sub-service-providers/" + p.sp_mchid}, `${p.name}（${p.sp_mchid}）`))))
      : h("p", {class: "empty", text: "还没有服务商，请先添加服务商。"})));
}

function sspDialog(sp, record, done) {
  const creating = !record;
  let view = null;
  const editor = form({id: "ssp-form", values: record || {}, submitText: creating ? "添加" : "保存",
    onCancel: () => view.close(),
    sections: [{fields: [creating ? {name: "account_id", label: "子服务商的控制台账号 ID", required: true,
                                      hint: "acct_ 开头；对方登录控制台后在“账号”页可以看到并复制"}
                                   : {name: "account_id", label: "账号 ID", readonly: true}, ...FIELDS]}],
    onSubmit: async ({collect}) => {
      if (creating) {
        await api("POST", `/v1/providers/${sp}/sub-service-providers`, {body: collect()});
      } else {
        const body = collect({changedOnly: true});
        if (!Object.keys(body).length) { view.close(); return; }
        body.version = record.version;
        await api("PATCH", `/v1/providers/${sp}/sub-service-providers/${record.account_id}`, {body});
      }
      view.close();
      toast(creating ? "已添加子服务商" : "已保存", "ok");
      done();
    }});
  view = dialog({title: creating ? "添加子服务商" : "编辑子服务商", body: editor.element, wide: true, id: "ssp-dialog"});
}

async function listView(ctx) {
  const sp = ctx.params.sp;
  const provider = await api("GET", "/v1/providers/" + encodeURIComponent(sp), {signal: ctx.signal});
  const table = pagedTable({id: "sub-service-providers",
    columns: [
      {label: "名称", render: (s) => s.name},
      {label: "账号 ID", render: (s) => h("code", {text: s.account_id})},
      {label: "管理员", render: (s) => s.admin_name},
      {label: "电话", render: (s) => s.phone},
      {label: "返佣比例", render: (s) => s.rebate_ratio_bp != null ? `${s.rebate_ratio_bp / 100}%` : null},
      {label: "商户数", render: (s) => h("a", {href: `#/merchants?sp_mchid=${sp}&sub_service_provider=${s.account_id}`}, String(s.merchant_count ?? 0))},
      {label: "添加时间", render: (s) => time(s.created_at)},
      {label: "操作", render: (s) => h("span", {class: "row-actions"},
        h("button", {class: "link", type: "button", onclick: () => sspDialog(sp, s, () => table.reload())}, "编辑"),
        h("button", {class: "link danger", type: "button", dataset: {detach: s.account_id}, onclick: async () => {
          if (!await confirm({title: "移除子服务商", confirmText: "移除",
                              message: `把“${s.name || s.account_id}”从服务商 ${provider.name} 移除？名下还有商户时不能移除。`})) return;
          try { await api("DELETE", `/v1/providers/${sp}/sub-service-providers/${s.account_id}`); toast("已移除子服务商"); table.reload(); }
          catch (error) { toastError(error); }
        }}, "移除"))},
    ],
    fetchPage: (cursor, signal) => api("GET", `/v1/providers/${sp}/sub-service-providers?limit=20` + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), {signal}),
    empty: "还没有子服务商。点击“添加子服务商”，填写对方的控制台账号 ID。"});
  append(ctx.view, 
    pageHead(`子服务商 · ${provider.name}`,
      button("添加子服务商", () => sspDialog(sp, null, () => table.reload()), {id: "attach-ssp"}),
      h("a", {href: "#/sub-service-providers", class: "button ghost"}, "切换服务商")),
    card(null, table.element));
  ctx.onLeave(table.abort);
  await table.reload();
}

export function register(route) {
  route("/sub-service-providers", pickView, {section: "sub-service-providers"});
  route("/sub-service-providers/:sp", listView, {section: "sub-service-providers"});
}
