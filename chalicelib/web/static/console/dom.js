// Plain DOM helpers: h() builds elements; texts are always set as text, never parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  append(node, children);
  return node;
}

export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Every time the console shows is Beijing time, whatever the browser's zone (the days of the
 * transaction summary are Beijing dates too). */
export const BEIJING = "Asia/Shanghai";

export function time(seconds) {
  if (!seconds) return "—";
  return new Date(seconds * 1000).toLocaleString("zh-CN", {hour12: false, timeZone: BEIJING});
}

export function duration(seconds) {
  if (seconds == null) return "—";
  if (seconds < 60) return `${seconds} 秒`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} 分钟`;
  return `${(seconds / 3600).toFixed(1)} 小时`;
}

export function dash(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

/** A read-only list of label / value pairs (a detail page's facts). */
export function facts(pairs) {
  return h("dl", {class: "facts"}, pairs.filter(Boolean).map(([label, value]) =>
    [h("dt", {text: label}), h("dd", {}, value instanceof Node ? value : dash(value))]));
}

export function card(title, ...children) {
  return h("section", {class: "card"}, title ? h("h2", {text: title}) : null, children);
}

export function pageHead(title, ...actions) {
  return h("div", {class: "page-head"}, h("h1", {text: title}), h("div", {class: "actions"}, actions));
}

export function button(text, onclick, {kind = "primary", id, type = "button", disabled} = {}) {
  return h("button", {class: kind, type, id, disabled, onclick}, text);
}

export function link(text, href, attrs = {}) {
  return h("a", {href, ...attrs}, text);
}

/** Save `content` (a text, a Blob, or a list of them: the chunks of an export) as a file. */
export function download(filename, content, type = "text/plain;charset=utf-8") {
  const url = URL.createObjectURL(new Blob([content].flat(), {type}));
  const anchor = h("a", {href: url, download: filename});
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
