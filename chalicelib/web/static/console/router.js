// Hash routes ("#/sub-merchants/m_1?channel=maidan"): reload and back work without a server
// route per page. A view gets its params, query, an AbortSignal and `onLeave` for timers;
// leaving the page aborts its requests and runs its cleanups.

const routes = [];
let current = null;

/** pattern like "/sub-merchants/:id"; render(ctx) fills ctx.view. */
export function route(pattern, render, {section} = {}) {
  const names = [];
  const regex = new RegExp("^" + pattern.replace(/:([a-z_]+)/g, (_, name) => { names.push(name); return "([^/]+)"; }) + "$");
  routes.push({regex, names, render, section});
}

export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return {path, query: new URLSearchParams(search)};
}

/** Change the query of the current page without a new history entry or a re-render (filters). */
export function replaceQuery(query) {
  const {path} = parseHash();
  const search = [...query.entries()].filter(([, value]) => value !== "").length
    ? "?" + new URLSearchParams([...query.entries()].filter(([, value]) => value !== "")) : "";
  history.replaceState(null, "", "#" + path + search);
}

export function navigate(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

let view = null, onSection = () => {}, onError = () => {}, fallback = "/";

export function start({container, onNavigate, onViewError, home}) {
  view = container;
  onError = onViewError;
  onSection = onNavigate;
  fallback = home;
  window.addEventListener("hashchange", render);
  render();
}

export function stop() {
  window.removeEventListener("hashchange", render);
  leave();
}

function leave() {
  if (!current) return;
  current.controller.abort();
  for (const cleanup of current.cleanups) cleanup();
  current = null;
}

export function render() {
  const {path, query} = parseHash();
  const found = routes.map((r) => ({r, m: r.regex.exec(path)})).find(({m}) => m);
  if (!found) { location.replace("#" + fallback); return; }
  leave();
  const params = Object.fromEntries(found.r.names.map((name, i) => [name, decodeURIComponent(found.m[i + 1])]));
  const controller = new AbortController();
  const ctx = {params, query, signal: controller.signal, view, cleanups: [], onLeave(fn) { ctx.cleanups.push(fn); }};
  current = {controller, cleanups: ctx.cleanups};
  view.replaceChildren();
  onSection(found.r.section);
  window.scrollTo(0, 0);
  Promise.resolve(found.r.render(ctx)).catch((error) => {
    if (error?.name !== "AbortError" && !controller.signal.aborted) onError(error, ctx);
  });
}
