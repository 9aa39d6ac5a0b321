// The console app: sign-in, the WeChat binding gate, then the sections. Each section is one
// module exporting `section` ({id, label, home, roles}) and `register(route)`; adding a
// section is adding it to SECTIONS (see docs/console.md).
import {api, onSession, session} from "./api.js";
import {button, h} from "./dom.js";
import {errorText} from "./errors.js";
import * as router from "./router.js";
import {account} from "./state.js";
import {qrPanel, toast} from "./ui.js";
import * as providers from "./providers.js";
import * as merchants from "./merchants.js";
import * as transactions from "./transactions.js";
import * as subServiceProviders from "./sub-service-providers.js";
import * as jobs from "./jobs.js";
import * as audit from "./audit.js";
import * as accountSection from "./account.js";

const SECTIONS = [providers, merchants, transactions, subServiceProviders, jobs, audit, accountSection];
const ROLE_KEY = "cloudpay_role";
const $ = (id) => document.getElementById(id);
let gate = null;

for (const module of SECTIONS) module.register(router.route);

function visibleSections() {
  return SECTIONS.filter((module) => module.section.roles.includes(account.role));
}

function renderNav() {
  const nav = $("nav");
  nav.replaceChildren(...visibleSections().map((module) =>
    h("a", {href: "#" + module.section.home, dataset: {section: module.section.id}}, module.section.label)));
  nav.classList.remove("hidden");
}

function markSection(id) {
  for (const link of $("nav").querySelectorAll("a")) link.classList.toggle("active", link.dataset.section === id);
  if (id && !visibleSections().some((module) => module.section.id === id)) router.navigate("#" + visibleSections()[0].section.home);
}

function renderRoleSwitch() {
  const holder = $("role");
  holder.replaceChildren();
  if (account.owns && account.belongsTo) {
    const select = h("select", {id: "role-switch", "aria-label": "身份"},
      h("option", {value: "owner"}, "我的服务商"), h("option", {value: "sub_service_provider"}, "我所属的服务商（只读）"));
    select.value = account.role;
    select.addEventListener("change", () => { sessionStorage.setItem(ROLE_KEY, select.value); boot(); });
    holder.appendChild(select);
  } else if (account.role === "sub_service_provider") {
    holder.appendChild(h("span", {class: "badge mute", text: "子服务商 · 只读"}));
  }
}

function signedOutView() {
  router.stop();
  gate?.stop();
  gate = null;
  $("nav").classList.add("hidden");
  $("sign-out").classList.add("hidden");
  $("who").textContent = "";
  $("role").replaceChildren();
  account.me = null;
}

export function signOutLocally() {
  session.clear();
  sessionStorage.removeItem(ROLE_KEY);
  signedOutView();
  if (location.hash) history.replaceState(null, "", location.pathname);
  showAuth();
}

export async function signOut() {
  try { await api("DELETE", "/v1/sessions/current"); } catch { /* the session is forgotten here either way */ }
  signOutLocally();
  toast("已退出登录");
}

function showAuth() {
  let signingUp = false;
  const title = h("h2", {id: "auth-title"}, "登录");
  const email = h("input", {id: "email", type: "email", autocomplete: "username", required: true});
  const password = h("input", {id: "password", type: "password", autocomplete: "current-password", required: true});
  const displayName = h("input", {id: "display-name", autocomplete: "name"});
  const nameField = h("div", {class: "field hidden"}, h("label", {for: "display-name"}, "名称（选填）"), displayName,
    h("div", {class: "field-error", dataset: {for: "display_name"}}));
  const fieldErrors = {email: h("div", {class: "field-error", dataset: {for: "email"}}),
                       password: h("div", {class: "field-error", dataset: {for: "password"}}),
                       display_name: nameField.querySelector(".field-error")};
  const formError = h("div", {class: "error", id: "auth-error", role: "alert"});
  const submit = h("button", {class: "primary", type: "submit", id: "auth-submit"}, "登录");
  const switcher = h("button", {class: "link", type: "button", id: "auth-switch"}, "没有账号？注册");
  const passwordHint = h("div", {class: "hint hidden", text: "至少 12 个字符"});
  const form = h("form", {id: "auth-form", novalidate: true},
    h("div", {class: "field"}, h("label", {for: "email"}, "邮箱"), email, fieldErrors.email),
    h("div", {class: "field"}, h("label", {for: "password"}, "密码"), password, passwordHint, fieldErrors.password),
    nameField, formError, h("div", {class: "form-actions"}, submit, switcher));
  switcher.addEventListener("click", () => {
    signingUp = !signingUp;
    title.textContent = signingUp ? "注册" : "登录";
    submit.textContent = signingUp ? "注册并登录" : "登录";
    switcher.textContent = signingUp ? "已有账号？登录" : "没有账号？注册";
    password.autocomplete = signingUp ? "new-password" : "current-password";
    nameField.classList.toggle("hidden", !signingUp);
    passwordHint.classList.toggle("hidden", !signingUp);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    for (const node of Object.values(fieldErrors)) node.textContent = "";
    const credentials = {email: email.value.trim(), password: password.value};
    submit.disabled = true;
    try {
      if (signingUp) await api("POST", "/v1/accounts", {body: {...credentials, ...(displayName.value.trim() ? {display_name: displayName.value.trim()} : {})}});
      const issued = await api("POST", "/v1/sessions", {body: credentials});
      session.set(issued.token);
      await boot();
    } catch (error) {
      (fieldErrors[error.param] || formError).textContent = errorText(error);
    } finally {
      submit.disabled = false;
    }
  });
  $("view").replaceChildren(h("div", {class: "auth-page"},
    h("section", {class: "card auth", id: "auth"}, title,
      h("p", {class: "note", text: "云支付服务商控制台：管理服务商、商户、子服务商与同步任务。"}), form)));
  email.focus();
}

async function showGate() {
  const me = account.me;
  signedOutView();
  account.me = me;
  $("sign-out").classList.remove("hidden");
  $("who").textContent = me.display_name || me.email;
  const holder = h("div", {});
  $("view").replaceChildren(h("div", {class: "gate-page"},
    h("section", {class: "card gate", id: "gate"},
      h("h2", {id: "qr-title"}, "绑定微信号"),
      h("p", {class: "note", text: "未绑定前无法进行其他操作。绑定后，可在“账号”中再绑定其他管理员的微信号。"}),
      holder,
      h("div", {class: "form-actions centered"}, button("退出登录", signOut, {kind: "ghost", id: "gate-sign-out"})))));
  try {
    gate = qrPanel("binding", await api("POST", "/v1/wechat-binding-codes"), {onDone: () => { gate = null; boot(); }});
    holder.appendChild(gate.element);
  } catch (error) {
    holder.appendChild(h("div", {class: "error", text: errorText(error)}));
  }
}

async function chooseRole() {
  const [own, member] = await Promise.all([api("GET", "/v1/providers?limit=1"),
                                           api("GET", "/v1/providers?as=sub_service_provider&limit=1")]);
  account.owns = own.data.length > 0;
  account.belongsTo = member.data.length > 0;
  const preferred = sessionStorage.getItem(ROLE_KEY);
  if (account.owns && account.belongsTo) account.role = preferred === "sub_service_provider" ? preferred : "owner";
  else account.role = account.belongsTo ? "sub_service_provider" : "owner";
}

async function boot() {
  if (!session.token) { signOutLocally(); return; }
  let me;
  try {
    me = await api("GET", "/v1/me");
  } catch (error) {
    if (error.status !== 401) $("view").replaceChildren(h("div", {class: "card error", text: errorText(error)}));
    return;
  }
  account.me = me;
  if (!me.wechat_bound) { await showGate(); return; }
  gate?.stop();
  gate = null;
  await chooseRole();
  $("who").textContent = me.display_name || me.email;
  $("sign-out").classList.remove("hidden");
  renderRoleSwitch();
  renderNav();
  router.stop();
  router.start({container: $("view"), home: visibleSections()[0].section.home, onNavigate: markSection,
                onViewError: (error, ctx) => ctx.view.appendChild(h("div", {class: "card error", text: errorText(error)}))});
}

onSession({
  signedOut: () => { signOutLocally(); toast("登录已失效，请重新登录"); },
  bindingRequired: () => { if (account.me) { account.me.wechat_bound = false; showGate(); } },
});
$("sign-out").addEventListener("click", signOut);
boot();
