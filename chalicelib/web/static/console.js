const STATE_TEXT = {pending: "等待扫码", scanned: "已扫码，等待确认", bound: "绑定成功", syncing: "正在同步…", synced: "同步完成",
                    expired: "二维码已失效", replaced: "已被新二维码取代"};
let token = sessionStorage.getItem("cloudpay_token");
let signingUp = false, pollTimer = null, currentCode = null, qrObjectUrl = null, currentFlow = null;

// The three console QR flows differ only in words, where to poll, and what "done" means.
const FLOWS = {
  binding: {title: "绑定微信号", lead: "请使用 <b>微信买单服务商助手管理员</b> 的微信扫描二维码完成绑定。未绑定前无法进行其他操作。",
            poll: (id) => "/v1/wechat-binding-codes/" + id, done: "bound",
            renew: (code) => api("POST", "/v1/wechat-binding-codes/" + code.id + "/refresh")},
  sync: {title: "从买单同步服务商", lead: "请使用 <b>微信买单服务商助手管理员</b> 的微信扫码，在手机上确认要同步的服务商。请勿分享此二维码。",
         poll: (id) => "/v1/provider-sync-codes/" + id, done: "synced",
         renew: () => api("POST", "/v1/provider-sync-codes")},
  assistant: {title: "绑定买单服务商助手", lead: "请使用 <b>该服务商在买单服务商助手中的管理员</b> 的微信扫码确认。",
              poll: (id) => "/v1/maidan-assistant-binding-codes/" + id, done: "bound",
              renew: async (code) => (await api("POST", "/v1/providers/" + code.target + "/maidan-assistant-binding")).code},
};
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  if (method !== "GET") headers["Idempotency-Key"] = crypto.randomUUID();
  const response = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined});
  const data = response.headers.get("Content-Type")?.startsWith("application/json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error(data?.error?.message || response.statusText);
    error.code = data?.error?.code; error.status = response.status; throw error;
  }
  return data;
}

function show(id, visible) { $(id).classList.toggle("hidden", !visible); }

async function start() {
  if (!token) { show("auth", true); show("account", false); $("who").textContent = ""; return; }
  try {
    const me = await api("GET", "/v1/me");
    $("who").textContent = me.display_name + " · " + me.email;
    show("auth", false);
    if (!me.wechat_bound) { await openGate(false); return; }
    for (const card of ["account", "providers-card", "merchants-card", "jobs-card"]) show(card, true);
    await Promise.all([loadBindings(), loadProviders(), loadMerchants(true), loadJobs()]);
  } catch (error) {
    if (error.status === 401) { signOutLocally(); return; }
    $("account-error").textContent = error.message;
  }
}

async function loadBindings() {
  const page = await api("GET", "/v1/wechat-bindings?limit=100");
  $("bindings").innerHTML = "";
  for (const b of page.data) {
    const row = document.createElement("tr");
    for (const text of [b.openid, b.unionid || "—", new Date(b.bound_at * 1000).toLocaleString()]) {
      const cell = document.createElement("td"); cell.textContent = text; row.appendChild(cell);
    }
    const action = document.createElement("td");
    const button = document.createElement("button"); button.className = "link"; button.textContent = "解绑";
    button.onclick = async () => {
      try { await api("DELETE", "/v1/wechat-bindings/" + encodeURIComponent(b.openid)); await loadBindings(); }
      catch (error) { $("account-error").textContent = error.message; }
    };
    action.appendChild(button); row.appendChild(action); $("bindings").appendChild(row);
  }
}

const MARK = (yes) => yes ? "✓ 已配置" : "未配置";

async function loadProviders() {
  const page = await api("GET", "/v1/providers?limit=100");
  $("providers").innerHTML = "";
  show("providers-empty", page.data.length === 0);
  for (const p of page.data) {
    const row = document.createElement("tr");
    for (const text of [p.sp_mchid, p.name, p.source === "maidan" ? "买单同步" : "手动添加"]) {
      const cell = document.createElement("td"); cell.textContent = text; row.appendChild(cell);
    }
    const assistant = document.createElement("td");
    if (p.maidan_assistant.bound) { assistant.textContent = "✓ 已绑定"; }
    else {
      const bind = document.createElement("button"); bind.className = "link"; bind.textContent = "立即绑定";
      bind.onclick = () => bindAssistant(p.sp_mchid);
      assistant.appendChild(bind);
    }
    row.appendChild(assistant);
    for (const configured of [p.wechat_pay.configured, p.alipay.configured]) {
      const cell = document.createElement("td"); cell.textContent = MARK(configured); row.appendChild(cell);
    }
    $("providers").appendChild(row);
  }
}

const CHANNEL = {maidan: "微信买单", official_direct: "官方直连"};
let merchantsCursor = null;

async function loadMerchants(fromStart) {
  $("merchants-error").textContent = "";
  const query = new URLSearchParams({limit: "20"});
  if ($("merchant-name").value.trim()) query.set("name", $("merchant-name").value.trim());
  if ($("merchant-channel").value) query.set("channel", $("merchant-channel").value);
  if (!fromStart && merchantsCursor) query.set("cursor", merchantsCursor);
  try {
    const page = await api("GET", "/v1/sub-merchants?" + query);
    if (fromStart) $("merchants").innerHTML = "";
    for (const m of page.data) {
      const row = document.createElement("tr");
      for (const text of [m.name, m.sp_mchid, m.sub_mchid || "—", CHANNEL[m.channel] || m.channel,
                          m.source === "maidan" ? "买单同步" : "手动添加"]) {
        const cell = document.createElement("td"); cell.textContent = text; row.appendChild(cell);
      }
      $("merchants").appendChild(row);
    }
    merchantsCursor = page.next_cursor;
    show("merchants-empty", fromStart && page.data.length === 0);
    show("merchants-more", page.has_more);
  } catch (error) { $("merchants-error").textContent = error.message; }
}

$("merchant-filters").onsubmit = (event) => { event.preventDefault(); loadMerchants(true); };
$("merchants-more").onclick = () => loadMerchants(false);
$("sync-merchants").onclick = async () => {
  $("merchants-error").textContent = "";
  try {
    const job = await api("POST", "/v1/sub-merchant-sync-jobs");
    if (job.already_running) $("merchants-error").textContent = "已有一个同步任务正在进行，下方显示的是它的进度。";
    await loadJobs();
  } catch (error) { $("merchants-error").textContent = error.message; }
};

const JOB_KIND = {sub_merchant_sync: "从买单同步商户", reattribution: "变更子服务商：迁移历史交易"};
const JOB_STATUS = {RUNNING: "进行中", QUEUED: "排队中", COMPLETED: "已完成",
                    COMPLETED_WITH_FAILURES: "已完成（有失败）", FAILED: "失败"};
const LIVE = new Set(["RUNNING", "QUEUED"]);
const REPORT_TEXT = {
  provider_not_synced: (r) => `服务商 ${r.name}（${r.sp_mchid}）尚未同步到本账号，它的商户没有同步：请先从买单同步服务商。`,
  no_providers: () => "本账号还没有服务商：请先从买单同步服务商。",
};
let jobsTimer = null, liveJobs = new Set();

function jobFacts(job) {
  const p = job.progress;
  const eta = p.eta_seconds != null ? `，预计还需 ${p.eta_seconds} 秒` : "";
  if (job.kind === "sub_merchant_sync") {
    const m = p.merchants;
    return `服务商 ${p.providers.done}/${p.providers.total}，已处理 ${p.pages.done} 页` +
      (p.pages.failed ? `（失败 ${p.pages.failed} 页）` : "") +
      `；新增 ${m.created}，更新 ${m.updated}，无变化 ${m.unchanged}，失败 ${m.failed}` +
      (m.expected != null ? `，共 ${m.expected}` : "") + `；每秒 ${p.merchants_per_second} 个${eta}`;
  }
  const t = p.transactions;
  return `已迁移 ${t.moved}${t.to_move != null ? " / " + t.to_move : ""} 笔交易；每秒 ${p.transactions_per_second} 笔${eta}`;
}

function addText(parent, tag, className, text) {
  const node = document.createElement(tag); node.className = className; node.textContent = text;
  parent.appendChild(node); return node;
}

async function renderJob(job) {
  const box = document.createElement("div"); box.className = "job"; box.dataset.job = job.id;
  const head = document.createElement("div"); head.className = "head"; box.appendChild(head);
  addText(head, "b", "", JOB_KIND[job.kind] || job.kind);
  addText(head, "span", "status " + job.status, JOB_STATUS[job.status] || job.status);
  const bar = document.createElement("div"); bar.className = "bar"; bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuenow", job.progress.percent);
  const fill = document.createElement("i"); fill.style.width = job.progress.percent + "%"; bar.appendChild(fill);
  box.appendChild(bar);
  addText(box, "div", "facts", `${job.progress.percent}% · ` + jobFacts(job));
  const times = `开始于 ${new Date(job.created_at * 1000).toLocaleString()}` +
    (job.ended_at ? `，结束于 ${new Date(job.ended_at * 1000).toLocaleString()}` : "");
  addText(box, "div", "note", times);
  for (const report of job.reports) addText(box, "div", "note", "提示：" + (REPORT_TEXT[report.type] || ((r) => r.message))(report));
  if (job.status === "COMPLETED_WITH_FAILURES" || job.status === "FAILED") await renderFailures(box, job);
  return box;
}

const endedJobDetails = new Map();

async function renderFailures(box, job) {
  // An ended job's detail changes only when it is retried and ends again: fetched once per end.
  const key = job.id + "@" + job.ended_at;
  if (!endedJobDetails.has(key)) endedJobDetails.set(key, await api("GET", "/v1/jobs/" + job.id));
  const detail = endedJobDetails.get(key);
  const list = document.createElement("ul");
  if (detail.error) addText(list, "li", "", detail.error);
  for (const step of detail.providers || []) {
    if (step.status === "FAILED") addText(list, "li", "", `服务商 ${step.sp_mchid} 第 ${step.next_page + 1} 页失败：${step.last_error || "原因未知"}`);
    for (const failure of step.failures.slice(0, 5)) addText(list, "li", "", `商户 ${failure.sub_mchid}：${failure.reason}`);
  }
  if (list.children.length) box.appendChild(list);
  if (detail.retryable) {
    const retry = document.createElement("button"); retry.className = "ghost"; retry.textContent = "重试失败的页";
    retry.onclick = async () => {
      try { await api("POST", "/v1/jobs/" + job.id + "/retry"); await loadJobs(); }
      catch (error) { $("jobs-error").textContent = error.message; }
    };
    box.appendChild(retry);
  }
}

async function loadJobs() {
  clearTimeout(jobsTimer);
  if (!token) return;
  try {
    const page = await api("GET", "/v1/jobs?limit=10");
    const boxes = await Promise.all(page.data.map(renderJob));
    $("jobs").replaceChildren(...boxes);
    show("jobs-empty", page.data.length === 0);
    const live = new Set(page.data.filter((job) => LIVE.has(job.status)).map((job) => job.id));
    if ([...liveJobs].some((id) => !live.has(id))) await loadMerchants(true);
    liveJobs = live;
    if (live.size) jobsTimer = setTimeout(loadJobs, 2000);
  } catch (error) { $("jobs-error").textContent = error.message; }
}

async function bindAssistant(spMchid) {
  $("providers-error").textContent = "";
  try {
    const answer = await api("POST", "/v1/providers/" + spMchid + "/maidan-assistant-binding");
    if (answer.outcome === "scan_code") { await openQr("assistant", answer.code); return; }
    await loadProviders();
  } catch (error) { $("providers-error").textContent = error.message; }
}

async function showCode(code) {
  currentCode = code;
  const image = await fetch(code.images.png, {headers: {Authorization: "Bearer " + token, Accept: "image/png"}});
  if (qrObjectUrl) URL.revokeObjectURL(qrObjectUrl);
  qrObjectUrl = URL.createObjectURL(await image.blob());
  $("qr-img").src = qrObjectUrl;
  $("qr-url").textContent = code.url;
  renderState(code.state);
}

function renderState(state) {
  $("qr-state").textContent = STATE_TEXT[state] || state;
  $("qr-state").className = "state " + state;
  show("qr-over", state === "expired" || state === "replaced");
}

async function openQr(flowName, code, closable = true) {
  currentFlow = FLOWS[flowName];
  $("qr-title").textContent = currentFlow.title; $("qr-lead").innerHTML = currentFlow.lead;
  show("gate", true); show("gate-close", closable);
  await showCode(code);
  clearInterval(pollTimer);
  pollTimer = setInterval(poll, 2000);
}

async function openGate(closable) {
  await openQr("binding", await api("POST", "/v1/wechat-binding-codes"), closable);
}

async function poll() {
  if (!currentCode) return;
  const code = await api("GET", currentFlow.poll(currentCode.id));
  renderState(code.state);
  if (code.state === "synced" && code.result) {
    $("qr-state").textContent = `同步完成：新增 ${code.result.created}，更新 ${code.result.updated}，无变化 ${code.result.unchanged}` +
      (code.result.elsewhere ? `，${code.result.elsewhere} 个属于其他账号未同步` : "");
  }
  if (code.state === currentFlow.done) {
    clearInterval(pollTimer);
    setTimeout(() => { show("gate", false); start(); }, code.state === "synced" ? 2500 : 800);
  } else if (code.state === "expired") {
    clearInterval(pollTimer);
  }
}

$("qr-refresh").onclick = async () => {
  await showCode(await currentFlow.renew(currentCode));
  clearInterval(pollTimer); pollTimer = setInterval(poll, 2000);
};
$("sync-providers").onclick = async () => openQr("sync", await api("POST", "/v1/provider-sync-codes"));
$("gate-close").onclick = () => { clearInterval(pollTimer); show("gate", false); };
$("bind-another").onclick = () => openGate(true);

$("auth-switch").onclick = () => {
  signingUp = !signingUp;
  $("auth-title").textContent = signingUp ? "注册" : "登录";
  $("auth-submit").textContent = signingUp ? "注册并登录" : "登录";
  $("auth-switch").textContent = signingUp ? "已有账号？登录" : "没有账号？注册";
};

$("auth-form").onsubmit = async (event) => {
  event.preventDefault();
  $("auth-error").textContent = "";
  const credentials = {email: $("email").value, password: $("password").value};
  try {
    if (signingUp) await api("POST", "/v1/accounts", credentials);
    const session = await api("POST", "/v1/sessions", credentials);
    token = session.token; sessionStorage.setItem("cloudpay_token", token);
    await start();
  } catch (error) { $("auth-error").textContent = error.message; }
};

function signOutLocally() {
  token = null; sessionStorage.removeItem("cloudpay_token"); clearInterval(pollTimer);
  clearTimeout(jobsTimer); liveJobs = new Set();
  show("gate", false);
  for (const card of ["providers-card", "merchants-card", "jobs-card"]) show(card, false);
  start();
}
$("sign-out").onclick = async () => { try { await api("DELETE", "/v1/sessions/current"); } finally { signOutLocally(); } };

start();
