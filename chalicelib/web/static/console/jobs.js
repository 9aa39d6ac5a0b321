// C7 任务: sub-merchant syncs and re-attributions with progress, failures and retry. Also
// `jobBox` and `followJob`, which the 商户 section uses to show a job where it started.
import {api} from "./api.js";
import {append, card, duration, facts, h, pageHead, time} from "./dom.js";
import {errorText} from "./errors.js";
import {progressBar, toast, toastError} from "./ui.js";

export const section = {id: "jobs", label: "任务", home: "/jobs", roles: ["owner"]};

export const JOB_KIND = {sub_merchant_sync: "从买单同步商户", reattribution: "变更子服务商：迁移历史交易"};
export const JOB_STATUS = {RUNNING: "进行中", QUEUED: "排队中", COMPLETED: "已完成",
                           COMPLETED_WITH_FAILURES: "已完成（有失败）", FAILED: "失败"};
export const LIVE = new Set(["RUNNING", "QUEUED"]);
const STEP_STATUS = {RUNNING: "进行中", QUEUED: "排队中", DONE: "已完成", COMPLETED: "已完成", FAILED: "失败",
                     NOT_ADMINISTERED: "未同步：已绑定的微信号不是它的买单管理员", NOT_IN_MAIDAN: "买单中没有该服务商"};
const REPORT_TEXT = {
  provider_not_synced: (r) => `服务商 ${r.name || ""}（${r.sp_mchid}）尚未同步到本账号，它的商户没有同步：请先从买单同步服务商。`,
  no_providers: () => "本账号还没有可同步的服务商：请先从买单同步服务商，并绑定其管理员的微信号。",
  provider_not_administered: (r) => `服务商 ${r.name || ""}（${r.sp_mchid}）：已绑定的微信号都不是它在买单中的管理员，未读取它的商户。`,
  provider_claim_lost: (r) => `服务商 ${r.name || ""}（${r.sp_mchid}）已由买单管理员同步到其他账号，不再同步。`,
  provider_check_failed: () => "暂时无法向买单确认部分服务商的管理员，这些服务商会在同步每一页前再确认。",
  providers_not_started: (r) => `${r.count} 个服务商没有开始同步。`,
};
const PHASE = {orders: "迁移订单", refunds: "迁移退款", done: "已完成"};

function statusText(status) { return JOB_STATUS[status] || status; }

export function jobFacts(job) {
  const p = job.progress;
  const eta = p.eta_seconds != null ? `，预计还需 ${duration(p.eta_seconds)}` : "";
  if (job.kind === "sub_merchant_sync") {
    const m = p.merchants;
    return `服务商 ${p.providers.done}/${p.providers.total}，已处理 ${p.pages.done} 页` +
      (p.pages.failed ? `（失败 ${p.pages.failed} 页）` : "") +
      `；新增 ${m.created}，更新 ${m.updated}，无变化 ${m.unchanged}，失败 ${m.failed}` +
      (m.expected != null ? `，共 ${m.expected}` : "") + `；每秒 ${p.merchants_per_second} 个${eta}`;
  }
  const t = p.transactions;
  return `已迁移 ${t.moved}${t.to_move != null ? " / " + t.to_move : ""} 笔交易` +
    (p.phase ? `（${PHASE[p.phase] || p.phase}）` : "") + `；每秒 ${p.transactions_per_second} 笔${eta}`;
}

function reportText(report) {
  return (REPORT_TEXT[report.type] || (() => `提示（${report.type}）`))(report);
}

/** One job as a box: kind, status, progress bar, counts, times, reports. */
export function jobBox(job, {link = true} = {}) {
  const head = h("div", {class: "head"},
    link ? h("a", {href: "#/jobs/" + job.id, class: "kind"}, JOB_KIND[job.kind] || job.kind) : h("b", {text: JOB_KIND[job.kind] || job.kind}),
    h("span", {class: "status " + job.status, text: statusText(job.status)}));
  return h("div", {class: "job", dataset: {job: job.id}}, head, progressBar(job.progress.percent),
    h("div", {class: "facts-line", text: `${job.progress.percent}% · ` + jobFacts(job)}),
    h("div", {class: "note", text: `开始于 ${time(job.created_at)}` + (job.ended_at ? `，结束于 ${time(job.ended_at)}` : "")}),
    (job.reports || []).map((report) => h("div", {class: "note info", text: reportText(report)})));
}

/** Keep a job's box up to date in `holder` while it runs; `onEnd(job)` once it has ended. */
export function followJob(jobId, holder, ctx, onEnd) {
  let timer = null;
  async function tick() {
    try {
      const job = await api("GET", "/v1/jobs/" + jobId, {signal: ctx.signal});
      holder.replaceChildren(jobBox(job));
      if (LIVE.has(job.status)) timer = setTimeout(tick, 2000); else onEnd?.(job);
    } catch (error) {
      if (error.name !== "AbortError") holder.replaceChildren(h("div", {class: "error", text: errorText(error)}));
    }
  }
  ctx.onLeave(() => clearTimeout(timer));
  tick();
}

async function listView(ctx) {
  const list = h("div", {id: "jobs"});
  const more = h("button", {class: "ghost hidden", type: "button"}, "加载更多");
  append(ctx.view, pageHead("任务"), card(null,
    h("p", {class: "note", text: "从买单同步商户、变更商户的子服务商时，进度显示在这里。点击任务查看失败原因和重试。"}),
    list, h("div", {class: "list-foot"}, more)));
  let timer = null, cursor = null;
  ctx.onLeave(() => clearTimeout(timer));

  async function load(fromStart) {
    clearTimeout(timer);
    if (fromStart && !list.children.length) list.replaceChildren(h("p", {class: "loading", text: "加载中…"}));
    try {
      const page = await api("GET", "/v1/jobs?limit=10" + (!fromStart && cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), {signal: ctx.signal});
      const boxes = page.data.map((job) => jobBox(job));
      if (fromStart) list.replaceChildren(...boxes); else list.append(...boxes);
      if (fromStart && !page.data.length) list.replaceChildren(h("div", {class: "empty", text: "还没有任务。"}));
      cursor = page.has_more ? page.next_cursor : null;
      more.classList.toggle("hidden", !cursor);
      if (fromStart && page.data.some((job) => LIVE.has(job.status))) timer = setTimeout(() => load(true), 2000);
    } catch (error) {
      if (error.name !== "AbortError") list.replaceChildren(h("div", {class: "error", text: errorText(error)}));
    }
  }
  more.addEventListener("click", () => load(false));
  await load(true);
}

const SYNCED_FIELD_NAMES = {name: "商户名称", short_name: "商户简称", admin_name: "管理员姓名", logo_url: "Logo 地址"};

/** A merchant the sync could not take, in words: its failure's `code`, never the English `reason`. */
function merchantFailureText(failure) {
  switch (failure.code) {
    case "missing_name": return "买单中没有商户名称";
    case "too_long": return `${SYNCED_FIELD_NAMES[failure.field] || failure.field}超出长度限制`;
    case "logo_not_https": return "Logo 地址不是 https 地址";
    case "sub_mchid_taken": return "子商户号已属于另一个云支付账号的商户";
    case "under_another_provider": return `本账号中它属于服务商 ${failure.held_under}，买单却列在此服务商下`;
    default: return "无法同步（原因未知）";
  }
}

function failureList(detail) {
  const items = [];
  if (detail.error) items.push(h("li", {}, "任务出错：", h("code", {text: detail.error})));
  for (const step of detail.providers || []) {
    if (step.status === "FAILED" || step.status === "NOT_ADMINISTERED") {
      items.push(h("li", {}, `服务商 ${step.sp_mchid}：${STEP_STATUS[step.status]}，停在第 ${(step.next_page ?? 0) + 1} 页`,
        step.last_error && step.last_error !== "provider_not_administered" ? [" · 原因：", h("code", {text: step.last_error})] : null));
    }
    for (const failure of step.failures || []) {
      items.push(h("li", {}, `服务商 ${step.sp_mchid} 的商户 ${failure.sub_mchid}：${merchantFailureText(failure)}`));
    }
  }
  return items;
}

async function detailView(ctx) {
  const holder = h("div", {id: "job-detail"});
  append(ctx.view, pageHead("任务详情", h("a", {href: "#/jobs", class: "button ghost"}, "返回任务列表")), holder);
  let timer = null;
  ctx.onLeave(() => clearTimeout(timer));

  async function load() {
    const job = await api("GET", "/v1/jobs/" + encodeURIComponent(ctx.params.id), {signal: ctx.signal});
    const steps = job.providers || [];
    const retry = job.retryable ? h("button", {class: "primary", type: "button", id: "job-retry", onclick: async (event) => {
      event.target.disabled = true;
      try { await api("POST", `/v1/jobs/${job.id}/retry`); toast("已重新排队失败的页"); await load(); }
      catch (error) { toastError(error); event.target.disabled = false; }
    }}, job.kind === "sub_merchant_sync" ? "重试失败的页" : "重试") : null;
    const failures = failureList(job);
    holder.replaceChildren(
      card(null, jobBox(job, {link: false}), retry ? h("div", {class: "form-actions"}, retry) : null),
      card("概况", facts([
        ["任务编号", job.id], ["类型", JOB_KIND[job.kind] || job.kind], ["状态", statusText(job.status)],
        ["进度", `${job.progress.percent}%`],
        ["速度", job.kind === "sub_merchant_sync" ? `每秒 ${job.progress.merchants_per_second} 个商户，每分钟 ${job.progress.pages_per_minute} 页`
                                                  : `每秒 ${job.progress.transactions_per_second} 笔`],
        ["预计剩余", job.progress.eta_seconds != null ? duration(job.progress.eta_seconds) : (LIVE.has(job.status) ? "计算中" : "—")],
        ["创建", time(job.created_at)], ["开始", time(job.started_at)], ["结束", time(job.ended_at)],
        job.merchant_id ? ["商户", h("a", {href: "#/sub-merchants/" + job.merchant_id}, job.merchant_id)] : null,
        job.kind === "reattribution" ? ["子服务商", `${job.from_sub_service_provider || "无"} → ${job.to_sub_service_provider || "无"}`] : null,
      ])),
      steps.length ? card("各服务商进度", h("table", {class: "list"},
        h("thead", {}, h("tr", {}, ["服务商商户号", "状态", "已处理页", "新增", "更新", "无变化", "失败"].map((t) => h("th", {text: t})))),
        h("tbody", {}, steps.map((s) => h("tr", {}, [s.sp_mchid, STEP_STATUS[s.status] || s.status, s.pages_done, s.created, s.updated,
                                                       s.unchanged, s.failed].map((v, i) => h("td", {dataset: {label: ["服务商商户号", "状态", "已处理页", "新增", "更新", "无变化", "失败"][i]}}, String(v ?? "—")))))))) : null,
      failures.length ? card("失败原因", h("ul", {class: "failures"}, failures)) : null);
    clearTimeout(timer);
    if (LIVE.has(job.status)) timer = setTimeout(() => load().catch(() => {}), 2000);
  }
  await load();
}

export function register(route) {
  route("/jobs", listView, {section: "jobs"});
  route("/jobs/:id", detailView, {section: "jobs"});
}
