// C6 / C8 交易: orders and refunds across the account, filtered by provider, sub-service-provider,
// sub-merchant, store, clerk, device, code, channel, state and a range of Beijing days; the
// summary of that range (kept per day by the API, never summed here over orders), a chart of
// the daily amounts (inline SVG, no library), cursor pages, and the CSV export fetched chunk
// by chunk into one download. A sub-service-provider sees what is attributed to it: its
// calls name itself as `sub_service_provider` (the transactions API takes no `as=`, and
// refuses query parameters it does not know).
import {all, api, textChunk} from "./api.js";
import {append, button, card, download, h, pageHead, time} from "./dom.js";
import {errorText} from "./errors.js";
import {yuan} from "./money.js";
import {ORDER_CHANNEL, ORDER_STATE, REFUND_STATE, orderHref, refundStateBadge, stateBadge} from "./orders.js";
import {allProviders} from "./providers.js";
import {MAX_SUMMARY_DAYS, PRESETS, beijingDay, dayCount, everyDay, presetRange, rangeSeconds} from "./days.js";
import {headerOf, withoutRepeatedHeader} from "./csv.js";
import {replaceQuery} from "./router.js";
import {account, asRole, readOnly} from "./state.js";
import {pagedTable} from "./table.js";
import {toast} from "./ui.js";

export const section = {id: "transactions", label: "交易", home: "/transactions", roles: ["owner", "sub_service_provider"]};

// --- the chart: inline SVG built with DOM calls (the page's CSP allows no inline script or style) ---

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) if (value != null) node.setAttribute(name, String(value));
  for (const child of children.flat()) if (child != null) node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function dayLabel(day) {
  return day.slice(5).replace("-", "/");
}

/** Bars of each day's trade (blue) and refund (red) amounts, with a table as its text alternative. */
export function dailyChart(fromDay, toDay, apiDays) {
  const days = everyDay(fromDay, toDay, apiDays);
  const width = 720, height = 220, left = 8, right = 8, top = 22, bottom = 28;
  const plotHeight = height - top - bottom;
  const slot = (width - left - right) / Math.max(days.length, 1);
  const peak = Math.max(0, ...days.map((d) => Math.max(d.trade_amount, d.refund_amount)));
  const highest = Math.max(peak, 1);
  const barWidth = Math.max(1, Math.min(24, slot * 0.42));
  const barHeight = (fen) => (fen > 0 ? Math.max(1, (fen / highest) * plotHeight) : 0);
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  const tradeTotal = days.reduce((sum, d) => sum + d.trade_amount, 0);
  const bars = days.map((d, i) => {
    const x = left + i * slot + slot / 2;
    const trade = barHeight(d.trade_amount), refund = barHeight(d.refund_amount);
    return svg("g", {class: "day", "data-day": d.day},
      svg("title", {}, `${d.day}：交易 ${yuan(d.trade_amount)}（${d.trade_count} 笔），退款 ${yuan(d.refund_amount)}（${d.refund_count} 笔）`),
      svg("rect", {class: "hit", x: left + i * slot, y: top, width: slot, height: plotHeight}),
      svg("rect", {class: "trade", x: (x - barWidth).toFixed(1), y: (top + plotHeight - trade).toFixed(1), width: barWidth.toFixed(1), height: trade.toFixed(1)}),
      svg("rect", {class: "refund", x: x.toFixed(1), y: (top + plotHeight - refund).toFixed(1), width: barWidth.toFixed(1), height: refund.toFixed(1)}),
      i % labelEvery === 0 || i === days.length - 1
        ? svg("text", {class: "axis", x: x.toFixed(1), y: height - 8, "text-anchor": "middle"}, dayLabel(d.day)) : null);
  });
  const picture = svg("svg", {class: "chart", id: "daily-chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                              "aria-label": `${fromDay} 至 ${toDay} 每日交易金额（蓝）与退款金额（红），合计交易 ${yuan(tradeTotal)}`},
    svg("line", {class: "baseline", x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight}),
    svg("text", {class: "axis", x: left, y: 14}, "最高 " + yuan(peak)),
    bars);
  const legend = h("div", {class: "chart-legend"}, h("span", {class: "key trade"}, "交易金额"), h("span", {class: "key refund"}, "退款金额"));
  const table = h("table", {class: "list", id: "daily-table"},
    h("thead", {}, h("tr", {}, ["日期", "交易金额", "交易笔数", "退款金额", "退款笔数"].map((text) => h("th", {text})))),
    h("tbody", {}, [...days].reverse().map((d) => h("tr", {},
      h("td", {dataset: {label: "日期"}}, d.day), h("td", {dataset: {label: "交易金额"}}, yuan(d.trade_amount)),
      h("td", {dataset: {label: "交易笔数"}}, String(d.trade_count)), h("td", {dataset: {label: "退款金额"}}, yuan(d.refund_amount)),
      h("td", {dataset: {label: "退款笔数"}}, String(d.refund_count))))));
  return h("div", {class: "chart-box"}, legend, picture,
    h("details", {class: "chart-text"}, h("summary", {}, "按日明细（图表的文字版）"), table));
}

// --- the view ---

const FILTERS = ["sp_mchid", "sub_service_provider", "merchant_id", "store_id", "clerk_id", "device_id", "code_id", "channel", "state"];
/** What the daily totals are kept by: the summary takes these and no others (no state). */
const SUMMARY_SCOPES = ["sp_mchid", "sub_service_provider", "merchant_id", "store_id", "clerk_id", "device_id", "code_id", "channel"];
const PAGE_CALLS = 5;

function choice(value, label) { return h("option", {value}, label); }

function fill(select, options, value) {
  select.replaceChildren(...options.map(([v, label]) => choice(v, label)));
  select.value = options.some(([v]) => v === value) ? value : "";
}

function filterSelect(id, label, allText) {
  return h("select", {id: "filter-" + id, "aria-label": label, title: label}, choice("", allText));
}

/**
 * A page of a filtered list: a filtered page may come back short or empty with more after
 * its cursor (the API reads a bounded slice per call), so follow it a few calls for rows.
 */
async function filledPage(path, params, cursor, signal) {
  let page, next = cursor, calls = 0;
  do {
    const query = new URLSearchParams(params);
    query.set("limit", "20");
    if (next) query.set("cursor", next);
    page = await api("GET", `${path}?${query}`, {signal});
    next = page.has_more ? page.next_cursor : null;
  } while (!(page.data || []).length && next && ++calls < PAGE_CALLS);
  return page;
}

function summaryCards(summary) {
  const cell = (id, label, value, tone) => h("div", {class: "stat" + (tone ? " " + tone : ""), id: "summary-" + id},
    h("div", {class: "stat-label", text: label}), h("div", {class: "stat-value", text: value}));
  return h("div", {class: "stats"},
    cell("trade-amount", "交易金额", yuan(summary.trade_amount)),
    cell("refund-amount", "退款金额", yuan(summary.refund_amount), "refund"),
    cell("net-amount", "净额", yuan(summary.net_amount ?? summary.trade_amount - summary.refund_amount), "net"),
    cell("trade-count", "交易笔数", `${summary.trade_count} 笔`),
    cell("refund-count", "退款笔数", `${summary.refund_count} 笔`));
}

async function listView(ctx) {
  const owner = !readOnly();
  const query = ctx.query;
  const provider = filterSelect("provider", "服务商", "全部服务商");
  const ssp = filterSelect("ssp", "子服务商", "全部子服务商");
  const merchant = filterSelect("merchant", "子商户", "全部子商户");
  const store = filterSelect("store", "门店", "全部门店（先选子商户）");
  const clerk = filterSelect("clerk", "店员", "全部店员（先选门店）");
  const device = filterSelect("device", "设备", "全部设备（先选门店）");
  const code = filterSelect("code", "收款码", "全部收款码（先选门店）");
  const channel = filterSelect("channel", "渠道", "全部渠道");
  fill(channel, [["", "全部渠道"], ...Object.entries(ORDER_CHANNEL)], query.get("channel") || "");
  const state = filterSelect("state", "状态", "全部状态");
  const fromDay = h("input", {id: "filter-from-day", type: "date", "aria-label": "开始日期", title: "开始日期"});
  const toDay = h("input", {id: "filter-to-day", type: "date", "aria-label": "结束日期", title: "结束日期"});
  const rangeError = h("div", {class: "field-error", role: "alert", id: "range-error"});
  const presetButtons = PRESETS.map(([id, label]) => h("button", {class: "ghost small", type: "button", dataset: {preset: id}}, label));
  const bySelect = {sp_mchid: provider, sub_service_provider: ssp, merchant_id: merchant, store_id: store, clerk_id: clerk,
                    device_id: device, code_id: code, channel, state};
  let tab = query.get("tab") === "refunds" ? "refunds" : "orders";
  let preset = query.get("range") || (query.get("from_day") ? "" : "7d");

  const initial = preset ? presetRange(preset, Date.now() / 1000) : {from_day: query.get("from_day"), to_day: query.get("to_day") || beijingDay(Date.now() / 1000)};
  fromDay.value = initial.from_day;
  toDay.value = initial.to_day;

  function stateOptions(value) {
    const states = tab === "refunds" ? REFUND_STATE : ORDER_STATE;
    fill(state, [["", "全部状态"], ...Object.entries(states).map(([key, [label]]) => [key, label])], value);
  }
  stateOptions(query.get("state") || "");

  function markPreset() {
    for (const node of presetButtons) node.className = (node.dataset.preset === preset ? "primary" : "ghost") + " small";
  }
  markPreset();

  /** The chosen filters of `names` (a sub-service-provider always names itself). */
  function chosen(names) {
    const params = {};
    for (const name of names) if (bySelect[name].value) params[name] = bySelect[name].value;
    if (!owner) params.sub_service_provider = account.me.id;
    return params;
  }

  function rangeProblem() {
    if (!fromDay.value || !toDay.value) return "请选择开始和结束日期";
    if (fromDay.value > toDay.value) return "开始日期不能晚于结束日期";
    if (dayCount(fromDay.value, toDay.value) > MAX_SUMMARY_DAYS) return `时间范围最长 ${MAX_SUMMARY_DAYS} 天`;
    return null;
  }

  /** The list's query: refunds are not recorded per device, so their list takes no device. */
  function listParams(list = tab) {
    const names = list === "refunds" ? FILTERS.filter((name) => name !== "device_id") : FILTERS;
    return new URLSearchParams({...chosen(names), ...rangeSeconds(fromDay.value, toDay.value)});
  }

  const summaryHolder = h("div", {id: "transaction-summary"}, h("p", {class: "loading", text: "加载中…"}));
  const summaryNote = h("p", {class: "note hidden", id: "summary-note",
    text: "汇总和图表只计已支付的交易和成功的退款，不按状态筛选；下方列表按全部条件筛选。"});
  let summaryController = null;

  async function loadSummary() {
    summaryController?.abort();
    const mine = summaryController = new AbortController();
    summaryHolder.replaceChildren(h("p", {class: "loading", text: "加载中…"}));
    const params = new URLSearchParams({from_day: fromDay.value, to_day: toDay.value, ...chosen(SUMMARY_SCOPES)});
    summaryNote.classList.toggle("hidden", !state.value);
    try {
      const summary = await api("GET", "/v1/transactions/summary?" + params, {signal: mine.signal});
      if (mine !== summaryController) return;
      summaryHolder.replaceChildren(summaryCards(summary), dailyChart(summary.from_day || fromDay.value, summary.to_day || toDay.value, summary.days));
    } catch (error) {
      if (error.name === "AbortError" || mine !== summaryController) return;
      summaryHolder.replaceChildren(h("div", {class: "error", text: errorText(error)}));
    }
  }
  ctx.onLeave(() => summaryController?.abort());

  // The list answers each row's merchant_name and store_name (null for one removed since: the id then).
  const merchantCell = (o) => o.merchant_id ? h("a", {href: "#/sub-merchants/" + encodeURIComponent(o.merchant_id)}, o.merchant_name || o.merchant_id) : null;
  const storeCell = (o) => o.store_id ? h("a", {href: "#/stores/" + encodeURIComponent(o.store_id)}, o.store_name || o.store_id) : null;
  const orders = pagedTable({id: "transaction-orders",
    columns: [
      {label: "时间", render: (o) => time(o.paid_at || o.created_at)},
      {label: "订单号", render: (o) => h("a", {href: orderHref(o), class: "mono"}, o.out_trade_no)},
      {label: "金额", render: (o) => yuan(o.total)},
      {label: "已退款", render: (o) => (o.refunded ? yuan(o.refunded) : null)},
      {label: "渠道", render: (o) => ORDER_CHANNEL[o.channel] || o.channel},
      {label: "状态", render: (o) => stateBadge(o.state)},
      {label: "子商户", render: merchantCell},
      {label: "门店", render: storeCell},
      {label: "店员", render: (o) => o.clerk_name || o.clerk_id},
    ],
    rowHref: orderHref,
    fetchPage: (cursor, signal) => filledPage("/v1/transactions/orders", listParams("orders"), cursor, signal),
    empty: "该时间范围内没有符合条件的订单。"});
  const refunds = pagedTable({id: "transaction-refunds",
    columns: [
      {label: "申请时间", render: (r) => time(r.created_at)},
      {label: "退款单号", render: (r) => h("span", {class: "mono"}, r.out_refund_no)},
      {label: "订单号", render: (r) => h("a", {href: orderHref(r), class: "mono"}, r.out_trade_no)},
      {label: "退款金额", render: (r) => yuan(r.amount)},
      {label: "状态", render: (r) => refundStateBadge(r.state)},
      {label: "渠道", render: (r) => ORDER_CHANNEL[r.channel] || r.channel},
      {label: "子商户", render: merchantCell},
      {label: "门店", render: storeCell},
      {label: "原因", render: (r) => r.reason},
      {label: "发起人", render: (r) => r.requested_by_name || r.requested_by},
      {label: "完成时间", render: (r) => (r.succeeded_at ? time(r.succeeded_at) : null)},
    ],
    rowHref: orderHref,
    fetchPage: (cursor, signal) => filledPage("/v1/transactions/refunds", listParams("refunds"), cursor, signal),
    empty: "该时间范围内没有符合条件的退款。"});
  ctx.onLeave(orders.abort);
  ctx.onLeave(refunds.abort);

  const ordersTab = h("button", {type: "button", role: "tab", id: "tab-orders"}, "订单");
  const refundsTab = h("button", {type: "button", role: "tab", id: "tab-refunds"}, "退款");
  const ordersPane = h("div", {role: "tabpanel", "aria-labelledby": "tab-orders"}, orders.element);
  const refundsPane = h("div", {role: "tabpanel", "aria-labelledby": "tab-refunds"}, refunds.element);

  function showTab() {
    for (const [node, id] of [[ordersTab, "orders"], [refundsTab, "refunds"]]) {
      node.className = "tab" + (tab === id ? " on" : "");
      node.setAttribute("aria-selected", String(tab === id));
    }
    ordersPane.classList.toggle("hidden", tab !== "orders");
    device.classList.toggle("hidden", tab === "refunds");
    refundsPane.classList.toggle("hidden", tab !== "refunds");
  }

  function keepInUrl() {
    replaceQuery(new URLSearchParams({...Object.fromEntries(FILTERS.map((name) => [name, bySelect[name].value])),
      range: preset, from_day: preset ? "" : fromDay.value, to_day: preset ? "" : toDay.value, tab: tab === "orders" ? "" : tab}));
  }

  function apply() {
    const problem = rangeProblem();
    rangeError.textContent = problem || "";
    if (problem) return;
    keepInUrl();
    loadSummary();
    (tab === "orders" ? orders : refunds).reload();
    (tab === "orders" ? refunds : orders).abort();
  }

  for (const node of presetButtons) {
    node.addEventListener("click", () => {
      preset = node.dataset.preset;
      const range = presetRange(preset, Date.now() / 1000);
      fromDay.value = range.from_day;
      toDay.value = range.to_day;
      markPreset();
      apply();
    });
  }
  for (const input of [fromDay, toDay]) input.addEventListener("change", () => { preset = ""; markPreset(); apply(); });
  for (const [node, id] of [[ordersTab, "orders"], [refundsTab, "refunds"]]) {
    node.addEventListener("click", () => {
      if (tab === id) return;
      tab = id;
      stateOptions("");
      showTab();
      apply();
    });
  }

  // Choices cascade: a provider narrows sub-service-providers and sub-merchants, a
  // sub-merchant its stores, a store its clerks, devices and codes.
  async function loadSubMerchants(value) {
    const params = asRole(new URLSearchParams());
    if (provider.value) params.set("sp_mchid", provider.value);
    if (owner && ssp.value) params.set("sub_service_provider", ssp.value);
    const list = await all("/v1/sub-merchants?" + params, {signal: ctx.signal}).catch(() => []);
    fill(merchant, [["", "全部子商户"], ...list.map((m) => [m.id, m.name])], value);
  }

  async function loadStores(value) {
    if (!merchant.value) { fill(store, [["", "全部门店（先选子商户）"]], ""); store.disabled = true; return; }
    const list = await all(`/v1/sub-merchants/${encodeURIComponent(merchant.value)}/stores`, {signal: ctx.signal}).catch(() => []);
    fill(store, [["", "全部门店"], ...list.map((s) => [s.id, s.name])], value);
    store.disabled = false;
  }

  async function loadStoreParts(values = {}) {
    const blank = [[clerk, "全部店员（先选门店）"], [device, "全部设备（先选门店）"], [code, "全部收款码（先选门店）"]];
    if (!store.value) {
      for (const [select, text] of blank) { fill(select, [["", text]], ""); select.disabled = true; }
      return;
    }
    const detail = await api("GET", "/v1/stores/" + encodeURIComponent(store.value), {signal: ctx.signal}).catch(() => null);
    const staff = detail?.staff || [];
    fill(clerk, [["", "全部店员"], ...staff.map((s) => [s.id, s.name || s.id])], values.clerk_id || "");
    fill(device, [["", "全部设备"], ...(detail?.devices || []).map((d) => [d.id, d.name || d.id])], values.device_id || "");
    const codes = [detail?.collection_code ? [detail.collection_code.id, "门店收款码"] : null,
                   ...staff.filter((s) => s.collection_code).map((s) => [s.collection_code.id, `${s.name || s.id} 的收款码`])].filter(Boolean);
    fill(code, [["", "全部收款码"], ...codes], values.code_id || "");
    for (const [select] of blank) select.disabled = false;
  }

  async function loadSsps(value) {
    if (!owner || !provider.value) { fill(ssp, [["", provider.value ? "全部子服务商" : "全部子服务商（先选服务商）"]], ""); ssp.disabled = true; return; }
    const list = await all(`/v1/providers/${encodeURIComponent(provider.value)}/sub-service-providers`, {signal: ctx.signal}).catch(() => []);
    fill(ssp, [["", "全部子服务商"], ...list.map((s) => [s.account_id, s.name || s.account_id])], value);
    ssp.disabled = false;
  }

  // A reload keeps a choice the new list still holds (one made while it loaded, too).
  const storeParts = () => ({clerk_id: clerk.value, device_id: device.value, code_id: code.value});
  provider.addEventListener("change", async () => {
    await loadSsps(ssp.value);
    await loadSubMerchants(merchant.value);
    await loadStores(store.value);
    await loadStoreParts(storeParts());
    apply();
  });
  ssp.addEventListener("change", async () => {
    await loadSubMerchants(merchant.value); await loadStores(store.value); await loadStoreParts(storeParts()); apply();
  });
  merchant.addEventListener("change", async () => { await loadStores(store.value); await loadStoreParts(storeParts()); apply(); });
  store.addEventListener("change", async () => { await loadStoreParts(storeParts()); apply(); });
  for (const select of [clerk, device, code, channel, state]) select.addEventListener("change", apply);

  // 导出 CSV: the API answers a bounded chunk per request with X-Next-Cursor while more rows
  // remain (a Lambda answer is at most 6 MB); the chunks become one Blob and one download.
  const exportStatus = h("span", {class: "list-count", id: "export-status", "aria-live": "polite"});
  let exporting = null;
  const exportButton = button("导出 CSV", async () => {
    if (exporting) { exporting.abort(); return; }
    const problem = rangeProblem();
    if (problem) { rangeError.textContent = problem; return; }
    exporting = new AbortController();
    exportButton.textContent = "取消导出";
    const params = listParams("orders");
    const parts = [];
    let header = null, cursor = null, rows = 0;
    try {
      do {
        const chunkParams = new URLSearchParams(params);
        if (cursor) chunkParams.set("cursor", cursor);
        const chunk = await textChunk("/v1/transactions/orders.csv?" + chunkParams, exporting.signal);
        const text = header === null ? chunk.text : withoutRepeatedHeader(chunk.text, header);
        if (header === null) header = headerOf(chunk.text);
        parts.push(new Blob([text]));
        rows += text.split("\n").filter((line) => line.trim()).length - (parts.length === 1 ? 1 : 0);
        exportStatus.textContent = `已导出 ${rows} 条…`;
        cursor = chunk.nextCursor;
      } while (cursor);
      download(`交易订单-${fromDay.value}-${toDay.value}.csv`, parts, "text/csv;charset=utf-8");
      exportStatus.textContent = `已导出 ${rows} 条`;
      toast(`已导出 ${rows} 条订单`, "ok");
    } catch (error) {
      exportStatus.textContent = error.name === "AbortError" ? "已取消导出" : "";
      if (error.name !== "AbortError") toast(errorText(error), "error");
    } finally {
      exporting = null;
      exportButton.textContent = "导出 CSV";
    }
  }, {kind: "ghost", id: "export-csv"});
  ctx.onLeave(() => exporting?.abort());

  append(ctx.view,
    pageHead(owner ? "交易" : "交易（子服务商）", exportStatus, exportButton),
    card(null, h("form", {class: "filters", id: "transaction-filters", onsubmit: (event) => { event.preventDefault(); apply(); }},
        provider, owner ? ssp : null, merchant, store, clerk, device, code, channel, state),
      h("div", {class: "range", id: "transaction-range"},
        h("div", {class: "presets", role: "group", "aria-label": "时间范围"}, presetButtons),
        h("span", {class: "dates"}, fromDay, h("span", {class: "to", text: "至"}), toDay)), rangeError,
      h("p", {class: "note", text: "日期按北京时间计；汇总和图表最长 90 天。"})),
    card("汇总", summaryNote, summaryHolder),
    card(null, h("div", {class: "tabs", role: "tablist"}, ordersTab, refundsTab), ordersPane, refundsPane));
  showTab();

  const providers = await allProviders(ctx.signal).catch(() => []);
  fill(provider, [["", "全部服务商"], ...providers.map((p) => [p.sp_mchid, `${p.name}（${p.sp_mchid}）`])], query.get("sp_mchid") || "");
  await loadSsps(query.get("sub_service_provider") || "");
  await loadSubMerchants(query.get("merchant_id") || "");
  await loadStores(query.get("store_id") || "");
  await loadStoreParts(Object.fromEntries(["clerk_id", "device_id", "code_id"].map((name) => [name, query.get(name)])));
  apply();
}

export function register(route) {
  route("/transactions", listView, {section: "transactions"});
}
