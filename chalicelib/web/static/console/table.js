// A list over a cursor-paged API route: loading state, "加载更多" while has_more, a total
// when the reply has one, an empty state, and no stale rows: every reload aborts the
// request before it and ignores any answer that is not the latest.
import {h} from "./dom.js";
import {errorText} from "./errors.js";

/**
 * columns: [{label, render(item) -> text|Node, className}]
 * fetchPage(cursor, signal) -> {data, has_more, next_cursor, total?}
 * empty(): Node|text shown when the first page is empty; `busy()` may return a Node shown
 * instead (for example while a sync is filling the list).
 */
export function pagedTable({columns, fetchPage, empty = "暂无数据", busy, rowHref, id}) {
  const body = h("tbody");
  const table = h("table", {class: "list", id}, h("thead", {}, h("tr", {}, columns.map((c) => h("th", {text: c.label})))), body);
  const status = h("div", {class: "list-status"});
  const more = h("button", {class: "ghost hidden", type: "button", id: id ? id + "-more" : null}, "加载更多");
  const count = h("span", {class: "list-count"});
  const element = h("div", {class: "list-wrap"}, table, status, h("div", {class: "list-foot"}, count, more));
  let generation = 0, controller = null, cursor = null, shown = 0;

  function row(item) {
    const tr = h("tr", {}, columns.map((c) => {
      const value = c.render(item);
      return h("td", {class: c.className, dataset: {label: c.label}}, value == null || value === "" ? "—" : value);
    }));
    const href = rowHref?.(item);
    if (href) {
      tr.classList.add("clickable");
      tr.addEventListener("click", (event) => { if (!event.target.closest("a,button,input,select")) location.hash = href; });
    }
    return tr;
  }

  async function load(fromStart) {
    const mine = ++generation;
    controller?.abort();
    controller = new AbortController();
    if (fromStart) { cursor = null; shown = 0; body.replaceChildren(); count.textContent = ""; }
    status.replaceChildren(h("span", {class: "loading"}, "加载中…"));
    more.classList.add("hidden");
    more.disabled = true;
    try {
      const page = await fetchPage(fromStart ? null : cursor, controller.signal);
      if (mine !== generation) return;
      const items = page.data || [];
      body.append(...items.map(row));
      shown += items.length;
      cursor = page.has_more ? page.next_cursor : null;
      status.replaceChildren();
      if (shown === 0) {
        const waiting = busy ? await busy() : null;
        if (mine !== generation) return;
        status.replaceChildren(waiting || h("div", {class: "empty"}, typeof empty === "function" ? empty() : empty));
      }
      const total = typeof page.total === "number" ? page.total : null;
      count.textContent = total !== null ? `共 ${total} 条` : (shown ? `已显示 ${shown} 条${cursor ? "，还有更多" : ""}` : "");
      more.classList.toggle("hidden", !cursor);
      more.disabled = false;
    } catch (error) {
      if (error.name === "AbortError" || mine !== generation) return;
      status.replaceChildren(h("div", {class: "error"}, errorText(error)));
    }
  }

  more.addEventListener("click", () => load(false));
  return {element, reload: () => load(true), abort: () => { generation++; controller?.abort(); }};
}
