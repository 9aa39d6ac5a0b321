// C5.7 一码付 in the console: on a sub-merchant's detail the provider's two codes (商户管理员激活码,
// 商户管理码) with re-issue, the merchant's admins and its stores; a store view (staff and devices,
// read-only) and a print view of the store's collection-code poster.
import {api, session} from "./api.js";
import {append, button, card, dash, facts, h, pageHead, time} from "./dom.js";
import {pagedTable} from "./table.js";
import {confirm, statusBadge, toast, toastError} from "./ui.js";

const CODE_STATE = {pending: ["待使用", "ok"], used: ["已使用", "mute"], expired: ["已过期", "warn"],
                    revoked: ["已撤销", "error"], active: ["有效", "ok"], unknown: ["未知", "mute"]};
const PERSON_STATE = {active: ["已激活", "ok"], pending: ["待激活", "warn"]};
const ROLE = {manager: "店长", clerk: "店员"};
const DEVICE_TYPE = {mobile_terminal: "移动收款机具", cashier_desk: "收银台", smart_pos: "智能 POS", other: "其他"};
const COLLECTION_TYPE = {wechat_alipay: "微信和支付宝", wechat: "仅微信支付", alipay: "仅支付宝"};
const MIME = {png: "image/png", svg: "image/svg+xml"};

function badge(map, state) {
  const [text, tone] = map[state] || [state, "mute"];
  return statusBadge(text, tone);
}

/** A code image through the session (the image routes need the token and an Accept header), as a blob URL. */
async function imageUrl(path, format, signal) {
  const headers = {Accept: MIME[format]};
  if (session.token) headers.Authorization = "Bearer " + session.token;
  const response = await fetch(path, {headers, signal});
  if (!response.ok) throw Object.assign(new Error("image"), {status: response.status, code: `http_${response.status}`});
  return URL.createObjectURL(await response.blob());
}

/** An <img> of a code, filled once fetched; its blob URL is released when the page is left. */
function codeImage(code, ctx, {alt, className = "thumb", id} = {}) {
  const image = h("img", {alt: alt || "二维码", class: className, id});
  if (!code?.images) return image;
  imageUrl(code.images.png, "png", ctx.signal).then((url) => {
    image.src = url;
    ctx.onLeave(() => URL.revokeObjectURL(url));
  }).catch((error) => { if (error?.name !== "AbortError") image.alt = "二维码加载失败"; });
  return image;
}

function saveImage(code, format, filename) {
  return button(format.toUpperCase(), async () => {
    try {
      const url = await imageUrl(code.images[format], format);
      const anchor = h("a", {href: url, download: `${filename}.${format}`});
      document.body.appendChild(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (error) { toastError(error); }
  }, {kind: "ghost small", id: `${filename}-${format}`});
}

function codeBlock(title, code, ctx, {id, note, action}) {
  return h("div", {class: "onecode-code", id},
    h("h3", {text: title}),
    h("div", {class: "qr small"}, codeImage(code, ctx, {alt: title, className: ""})),
    facts([["状态", badge(CODE_STATE, code.state)],
           ["有效期至", code.expires_at ? time(code.expires_at) : (code.kind === "merchant_management" ? "长期有效（撤销前）" : "—")],
           code.created_at ? ["生成时间", time(code.created_at)] : null, code.used_at ? ["使用时间", time(code.used_at)] : null,
           code.url ? ["链接", h("code", {class: "code-url", id: `${id}-url`, text: code.url})] : null]),
    h("p", {class: "note", text: note}),
    h("div", {class: "actions"}, ...(code.images ? ["下载：", saveImage(code, "png", id), saveImage(code, "svg", id)] : []),
      action));
}

function setupCodesCard(merchant, ctx, onChange) {
  const holder = h("div", {class: "onecode-codes", id: "setup-codes"}, h("p", {class: "loading", text: "加载中…"}));
  const base = `/v1/sub-merchants/${encodeURIComponent(merchant.id)}/setup-codes`;

  function show(setup) {
    onChange();
    // A used or expired activation code is deleted 30 days after its expiry: then only its
    // re-issue is left to show.
    const activation = setup.admin_activation || {state: "expired", url: "", images: null};
    const management = setup.management;
    holder.replaceChildren(
      codeBlock("商户管理员激活码", activation, ctx, {id: "admin-activation-code",
        note: "商户管理员用微信扫码后成为该商户的管理员。一次性使用，7 天内有效。",
        action: button("重新生成", async (event) => {
          event.target.disabled = true;
          try { show(await api("POST", base + "/admin-activation")); toast("已重新生成商户管理员激活码", "ok"); }
          catch (error) { toastError(error); event.target.disabled = false; }
        }, {kind: "ghost small", id: "reissue-admin-activation"})}),
      codeBlock("商户管理码", management, ctx, {id: "management-code",
        note: "已激活的商户管理员扫码进入商户管理页。长期有效，泄露时请撤销并重新生成。",
        action: button("撤销并重新生成", async () => {
          if (!await confirm({title: "撤销并重新生成商户管理码", confirmText: "撤销并重新生成",
                              message: "旧的商户管理码将立即失效（已打印或已发出的也不能再用），并生成一个新的管理码。"})) return;
          try { show(await api("POST", base + "/management")); toast("已撤销旧管理码并生成新的管理码", "ok"); }
          catch (error) { toastError(error); }
        }, {kind: "danger-ghost small", id: "reissue-management"})}));
  }

  api("GET", base, {signal: ctx.signal}).then(show).catch((error) => {
    onChange();
    if (error?.name !== "AbortError") holder.replaceChildren(h("p", {class: "error", text: "二维码加载失败，请刷新重试"}));
  });
  return card("一码付 · 商户二维码", h("p", {class: "warn", text: "请只把这两个二维码交给商户本人：扫码即可成为商户管理员或进入商户管理页。"}), holder);
}

/** The admins table; `reload()` fetches it (the owner's after its codes are issued, so the provider's invite shows). */
function adminsCard(merchant, ctx, owner) {
  const body = h("tbody");
  const table = h("table", {class: "list", id: "merchant-admins"},
    h("thead", {}, h("tr", {}, ["姓名", "状态", "退款权限", "激活时间", ...(owner ? ["激活码"] : [])].map((text) => h("th", {text})))), body);
  const element = card("商户管理员", table);
  const empty = h("p", {class: "empty hidden", text: "还没有商户管理员。把商户管理员激活码交给商户，扫码后即成为管理员。"});
  element.appendChild(empty);
  const reload = () => api("GET", `/v1/sub-merchants/${encodeURIComponent(merchant.id)}/admins`, {signal: ctx.signal}).then((answer) => {
    const rows = answer.data.map((admin) => h("tr", {},
      h("td", {dataset: {label: "姓名"}}, admin.name || (admin.invited_by === "provider" ? "（服务商激活码，待扫码）" : "—")),
      h("td", {dataset: {label: "状态"}}, badge(PERSON_STATE, admin.state)),
      h("td", {dataset: {label: "退款权限"}}, admin.can_refund ? "可退款" : "不可退款"),
      h("td", {dataset: {label: "激活时间"}}, time(admin.activated_at)),
      owner ? h("td", {dataset: {label: "激活码"}}, admin.activation_code
        ? [badge(CODE_STATE, admin.activation_code.state), " 至 ", time(admin.activation_code.expires_at)] : "—") : null));
    body.replaceChildren(...rows);
    empty.classList.toggle("hidden", rows.length > 0);
  }).catch(toastError);
  return {element, reload};
}

function storesCard(merchant, ctx) {
  const table = pagedTable({id: "merchant-stores",
    columns: [
      {label: "收款码", render: (s) => codeImage(s.collection_code, ctx, {alt: `${s.name}收款码`})},
      {label: "门店", render: (s) => h("a", {href: "#/stores/" + s.id}, s.name)},
      {label: "地址", render: (s) => [s.province, s.city, s.district, s.address].filter(Boolean).join(" ")},
      {label: "", render: (s) => h("a", {href: `#/stores/${s.id}/poster`}, "打印收款码海报")},
    ],
    rowHref: (s) => "#/stores/" + s.id,
    fetchPage: (cursor, signal) => api("GET", `/v1/sub-merchants/${encodeURIComponent(merchant.id)}/stores?limit=20` +
                                              (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), {signal}),
    empty: "还没有门店。商户管理员在微信中扫商户管理码后即可添加门店。"});
  ctx.onLeave(table.abort);
  table.reload();
  return card("门店", table.element);
}

/** The 一码付 cards of a sub-merchant's detail: the two codes for its owner, admins and stores for both. */
export function onecodeCards(merchant, ctx, {owner}) {
  const admins = adminsCard(merchant, ctx, owner);
  if (!owner) admins.reload();
  return [owner ? setupCodesCard(merchant, ctx, admins.reload) : null, admins.element, storesCard(merchant, ctx)];
}

function staffTable(store) {
  const owner = store.access === "full";
  return h("table", {class: "list", id: "store-staff"},
    h("thead", {}, h("tr", {}, ["姓名", "角色", "状态", "电话", "备注", "退款", "消息", "当班", ...(owner ? ["激活码"] : [])]
      .map((text) => h("th", {text})))),
    h("tbody", {}, store.staff.map((person) => h("tr", {},
      h("td", {dataset: {label: "姓名"}}, person.name),
      h("td", {dataset: {label: "角色"}}, ROLE[person.role] || person.role),
      h("td", {dataset: {label: "状态"}}, badge(PERSON_STATE, person.state)),
      h("td", {dataset: {label: "电话"}}, dash(person.phone)),
      h("td", {dataset: {label: "备注"}}, dash(person.remark)),
      h("td", {dataset: {label: "退款"}}, person.can_refund ? "可退款" : "—"),
      h("td", {dataset: {label: "消息"}}, person.messages_on ? "接收" : "不接收"),
      h("td", {dataset: {label: "当班"}}, person.on_shift ? "当班中" : "—"),
      owner ? h("td", {dataset: {label: "激活码"}}, person.activation_code
        ? [badge(CODE_STATE, person.activation_code.state), " 至 ", time(person.activation_code.expires_at),
           h("div", {class: "code-url", text: person.activation_code.url})] : "—") : null))));
}

function devicesTable(store) {
  if (!store.devices.length) return h("p", {class: "empty", text: "还没有设备。店长可在微信门店页中添加。"});
  return h("table", {class: "list", id: "store-devices"},
    h("thead", {}, h("tr", {}, ["设备编号", "名称", "类型", "备注"].map((text) => h("th", {text})))),
    h("tbody", {}, store.devices.map((device) => h("tr", {},
      h("td", {dataset: {label: "设备编号"}}, device.id), h("td", {dataset: {label: "名称"}}, device.name),
      h("td", {dataset: {label: "类型"}}, DEVICE_TYPE[device.device_type] || device.device_type),
      h("td", {dataset: {label: "备注"}}, dash(device.remark))))));
}

async function storeView(ctx) {
  const store = await api("GET", "/v1/stores/" + encodeURIComponent(ctx.params.id), {signal: ctx.signal});
  append(ctx.view,
    pageHead(store.name,
      h("a", {href: `#/stores/${store.id}/poster`, class: "button primary", id: "print-poster"}, "打印收款码海报"),
      h("a", {href: "#/sub-merchants/" + store.merchant_id, class: "button ghost"}, "返回商户")),
    card("门店信息", facts([["门店名称", store.name], ["商户", store.merchant_name],
      ["地区", [store.province, store.city, store.district].filter(Boolean).join(" ")], ["详细地址", store.address],
      ["门店电话", store.phone], ["经纬度", store.longitude && store.latitude ? `${store.longitude}, ${store.latitude}` : null],
      ["币种", store.currency], ["收款类型", COLLECTION_TYPE[store.collection_type] || store.collection_type],
      ["非当班店员接收收款消息", store.notify_off_shift ? "是" : "否"], ["创建时间", time(store.created_at)]]),
      h("p", {class: "note", text: "门店、店员和设备由商户在微信中管理，控制台只能查看。"})),
    card("门店收款码", h("div", {class: "qr small"}, codeImage(store.collection_code, ctx, {alt: "门店收款码", className: "", id: "store-collection-code"})),
      facts([["状态", badge(CODE_STATE, store.collection_code?.state)]])),
    card("店长和店员", staffTable(store)),
    card("设备", devicesTable(store)));
}

async function posterView(ctx) {
  const store = await api("GET", "/v1/stores/" + encodeURIComponent(ctx.params.id), {signal: ctx.signal});
  append(ctx.view,
    h("div", {class: "page-head no-print"}, h("h1", {text: "收款码海报 · " + store.name}),
      h("div", {class: "actions"}, button("打印", () => window.print(), {id: "print-button"}),
        h("a", {href: "#/stores/" + store.id, class: "button ghost"}, "返回门店"))),
    h("p", {class: "note no-print", text: "打印时只打印下方海报。建议用 A5 或更大的纸张，打印后张贴在收银台。"}),
    h("article", {class: "poster", id: "store-poster"},
      h("p", {class: "poster-merchant", text: store.merchant_name}),
      h("h2", {class: "poster-store", text: store.name}),
      h("div", {class: "poster-qr"}, codeImage(store.collection_code, ctx, {alt: "门店收款码", className: "", id: "poster-qr"})),
      h("p", {class: "poster-call", text: "微信 / 支付宝 扫码付款"})));
}

export function register(route) {
  route("/stores/:id", storeView, {section: "merchants"});
  route("/stores/:id/poster", posterView, {section: "merchants"});
}
