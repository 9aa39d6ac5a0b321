// Shared pieces every section uses: toasts, dialogs, confirmation, the QR panel (binding,
// provider sync, assistant binding) and the show-once secrets dialog.
import {api, qrImage} from "./api.js";
import {button, copy, download, h, time} from "./dom.js";
import {errorText} from "./errors.js";

function toastRoot() {
  return document.getElementById("toasts") || document.body.appendChild(h("div", {id: "toasts", "aria-live": "polite"}));
}

/** A short message; kind "info" (default, never red), "ok" or "error". */
export function toast(text, kind = "info") {
  const node = h("div", {class: "toast " + kind, role: kind === "error" ? "alert" : "status"}, text);
  toastRoot().appendChild(node);
  setTimeout(() => node.remove(), kind === "error" ? 7000 : 4000);
  return node;
}

export function toastError(error) {
  if (error?.name === "AbortError") return null;
  return toast(errorText(error), "error");
}

/** A modal dialog; `close()` removes it and runs onClose once. */
export function dialog({title, body, actions = [], onClose, wide = false, id}) {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    overlay.remove();
    document.removeEventListener("keydown", onKey);
    onClose?.();
  };
  const onKey = (event) => { if (event.key === "Escape") close(); };
  const box = h("div", {class: "dialog" + (wide ? " wide" : ""), role: "dialog", "aria-modal": "true", id},
    h("div", {class: "dialog-head"}, h("h2", {text: title}),
      h("button", {class: "icon", type: "button", "aria-label": "关闭", onclick: close}, "×")),
    h("div", {class: "dialog-body"}, body),
    actions.length ? h("div", {class: "dialog-actions"}, actions) : null);
  const overlay = h("div", {class: "overlay"}, box);
  overlay.addEventListener("click", (event) => { if (event.target === overlay) close(); });
  document.addEventListener("keydown", onKey);
  document.body.appendChild(overlay);
  return {close, element: box};
}

/** Ask before a destructive action; resolves true only on the confirm button. */
export function confirm({title, message, confirmText = "确定", danger = true}) {
  return new Promise((resolve) => {
    let answer = false;
    const cancel = button("取消", () => view.close(), {kind: "ghost"});
    const ok = button(confirmText, () => { answer = true; view.close(); }, {kind: danger ? "danger" : "primary", id: "confirm-ok"});
    const view = dialog({title, body: h("p", {text: message}), actions: [cancel, ok], onClose: () => resolve(answer), id: "confirm-dialog"});
    ok.focus();
  });
}

const STATE_TEXT = {pending: "等待扫码", scanned: "已扫码，等待确认", bound: "绑定成功", syncing: "正在同步…",
                    synced: "同步完成", expired: "二维码已失效", replaced: "已被新二维码取代"};

/** The console's three QR flows differ in words, where to poll, what "done" means and how to renew. */
export const QR_FLOWS = {
  binding: {title: "绑定微信号", done: "bound",
            lead: ["请使用 ", h("b", {text: "微信买单服务商助手管理员"}), " 的微信扫描二维码完成绑定。"],
            poll: (code) => "/v1/wechat-binding-codes/" + code.id,
            renew: (code) => api("POST", "/v1/wechat-binding-codes/" + code.id + "/refresh")},
  sync: {title: "从买单同步服务商", done: "synced",
         lead: ["请使用 ", h("b", {text: "微信买单服务商助手管理员"}), " 的微信扫码，在手机上确认要同步的服务商。请勿分享此二维码。"],
         poll: (code) => "/v1/provider-sync-codes/" + code.id,
         renew: () => api("POST", "/v1/provider-sync-codes")},
  assistant: {title: "绑定买单服务商助手", done: "bound",
              lead: ["请使用 ", h("b", {text: "该服务商在买单服务商助手中的管理员"}), " 的微信扫码确认。"],
              poll: (code) => "/v1/maidan-assistant-binding-codes/" + code.id,
              renew: async (code) => (await api("POST", "/v1/providers/" + code.target + "/maidan-assistant-binding")).code},
};

function syncResultText(result) {
  return `同步完成：新增 ${result.created}，更新 ${result.updated}，无变化 ${result.unchanged}` +
    (result.elsewhere ? `，${result.elsewhere} 个已属于其他账号未同步` : "");
}

/** A QR code with its state, polled every 2 s until done or expired; expired offers refresh. */
export function qrPanel(flowName, firstCode, {onDone} = {}) {
  const flow = QR_FLOWS[flowName];
  let code = firstCode, timer = null, objectUrl = null, stopped = false;
  const image = h("img", {id: "qr-img", alt: "二维码"});
  const state = h("span", {class: "state", id: "qr-state"});
  const url = h("p", {class: "url", id: "qr-url"});
  const refresh = h("button", {class: "link", type: "button", id: "qr-refresh"}, "点击刷新");
  const over = h("div", {class: "over hidden", id: "qr-over"}, h("span", {class: "state expired", text: "二维码已失效"}), refresh);
  const element = h("div", {class: "qr-panel"},
    h("p", {class: "lead", id: "qr-lead"}, flow.lead),
    h("div", {class: "qr"}, image, over),
    h("div", {}, "状态：", state), url);

  function render(current) {
    state.textContent = STATE_TEXT[current.state] || current.state;
    state.className = "state " + current.state;
    if (current.state === "synced" && current.result) state.textContent = syncResultText(current.result);
    over.classList.toggle("hidden", !(current.state === "expired" || current.state === "replaced"));
  }

  async function show(next) {
    code = next;
    url.textContent = code.url;
    render(code);
    const fresh = await qrImage(code.images.png);
    if (stopped) { URL.revokeObjectURL(fresh); return; }
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = fresh;
    image.src = objectUrl;
  }

  async function poll() {
    if (stopped) return;
    try {
      const current = await api("GET", flow.poll(code));
      if (stopped) return;
      render(current);
      if (current.state === flow.done) { stop(); setTimeout(() => onDone?.(current), current.state === "synced" ? 2000 : 600); return; }
      if (current.state === "expired" || current.state === "replaced") return;
    } catch (error) {
      if (error.status === 401) return;
    }
    timer = setTimeout(poll, 2000);
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    if (objectUrl) URL.revokeObjectURL(objectUrl);
  }

  refresh.addEventListener("click", async () => {
    try {
      clearTimeout(timer);
      await show(await flow.renew(code));
      timer = setTimeout(poll, 2000);
    } catch (error) { toastError(error); }
  });
  show(code).catch(toastError);
  timer = setTimeout(poll, 2000);
  return {element, stop, title: flow.title};
}

export function qrDialog(flowName, code, {onDone} = {}) {
  let view = null;
  const panel = qrPanel(flowName, code, {onDone: (result) => { view.close(); onDone?.(result); }});
  view = dialog({title: panel.title, body: panel.element, onClose: panel.stop, id: "qr-dialog"});
  view.element.querySelector("h2").id = "qr-title";
  return view;
}

/** Secrets shown once (key reset): copy and download each, then they are gone for good. */
export function secretsOnceDialog({title, intro, secrets, filename}) {
  const all = secrets.map((s) => `# ${s.label}\n${s.value}\n`).join("\n");
  const body = h("div", {class: "secrets-once"},
    h("p", {class: "warn", id: "secrets-once-warning"}, h("b", {text: "只显示一次："}),
      "关闭此窗口后无法再次查看。请立即复制或下载并妥善保存，不要通过聊天工具发送。"),
    intro ? h("p", {text: intro}) : null,
    secrets.map((secret) => h("div", {class: "secret-block"},
      h("div", {class: "secret-head"}, h("b", {text: secret.label}),
        h("span", {class: "actions"},
          button("复制", async () => toast(await copy(secret.value) ? `已复制${secret.label}` : "复制失败，请手动选中复制"), {kind: "ghost small"}),
          button("下载", () => download(secret.filename, secret.value), {kind: "ghost small"}))),
      h("textarea", {readonly: true, rows: secret.value.length > 120 ? 8 : 2, class: "mono", dataset: {secret: secret.name}}, secret.value))));
  const view = dialog({title, body, wide: true, id: "secrets-dialog",
    actions: [button("全部下载", () => download(filename, all), {kind: "ghost"}),
              button("我已保存，关闭", () => view.close(), {kind: "primary"})]});
  return view;
}

export function statusBadge(text, tone = "mute") {
  return h("span", {class: "badge " + tone, text});
}

export function progressBar(percent) {
  const fill = h("i");
  fill.style.width = Math.max(0, Math.min(100, percent)) + "%";
  return h("div", {class: "bar", role: "progressbar", "aria-valuenow": String(percent), "aria-valuemin": "0", "aria-valuemax": "100"}, fill);
}

export {time};
