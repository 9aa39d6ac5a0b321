// The console's one way to call the JSON API: session token, Idempotency-Key on every
// mutating call, and errors as ApiError (the API's {"error": {type, code, message, param}}
// plus the X-Request-Id), so that every screen reports them the same way.

const TOKEN_KEY = "cloudpay_token";

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

export class ApiError extends Error {
  constructor(status, error, requestId) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.type = error?.type || null;
    this.code = error?.code || (status ? `http_${status}` : "network_error");
    this.param = error?.param || null;
    this.requestId = requestId || null;
    this.detail = error || {};
  }
}

const listeners = {signedOut: () => {}, bindingRequired: () => {}};

/** What the app does when a call says the session is gone (401) or the gate is shut (403). */
export function onSession(handlers) { Object.assign(listeners, handlers); }

function headers(extra = {}) {
  const all = {...extra};
  if (session.token) all.Authorization = "Bearer " + session.token;
  return all;
}

export async function api(method, path, {body, signal, idempotencyKey = method !== "GET"} = {}) {
  const sent = headers({"Content-Type": "application/json"});
  if (idempotencyKey) sent["Idempotency-Key"] = crypto.randomUUID();
  const hadToken = Boolean(session.token);
  let response;
  try {
    response = await fetch(path, {method, headers: sent, signal, body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, {code: "network_error"}, null);
  }
  const isJson = response.headers.get("Content-Type")?.startsWith("application/json");
  const data = isJson ? await response.json() : null;
  if (response.ok) return data;
  const error = new ApiError(response.status, data?.error, response.headers.get("X-Request-Id"));
  if (response.status === 401 && hadToken) listeners.signedOut(error);
  if (error.code === "wechat_binding_required") listeners.bindingRequired(error);
  throw error;
}

/** A QR image route answers PNG only to `Accept: image/png`, and needs the session: fetched, then shown from a blob URL. */
export async function qrImage(pngPath, signal) {
  const response = await fetch(pngPath, {headers: headers({Accept: "image/png"}), signal});
  if (!response.ok) throw new ApiError(response.status, null, response.headers.get("X-Request-Id"));
  return URL.createObjectURL(await response.blob());
}

/**
 * A text answer (a CSV chunk) with the session: its text and the `X-Next-Cursor` header
 * (null on the last chunk). Errors are ApiError, as for api().
 */
export async function textChunk(path, signal) {
  let response;
  try {
    response = await fetch(path, {headers: headers({Accept: "text/csv"}), signal});
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, {code: "network_error"}, null);
  }
  if (!response.ok) {
    const isJson = response.headers.get("Content-Type")?.startsWith("application/json");
    const error = new ApiError(response.status, isJson ? (await response.json())?.error : null, response.headers.get("X-Request-Id"));
    if (response.status === 401) listeners.signedOut(error);
    throw error;
  }
  return {text: await response.text(), nextCursor: response.headers.get("X-Next-Cursor") || null};
}

/** Every item of a list (following next_cursor), for small lists such as filter choices. */
export async function all(path, {signal, max = 500} = {}) {
  const items = [];
  let cursor = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page = await api("GET", path + separator + "limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), {signal});
    items.push(...(page.data || []));
    cursor = page.has_more ? page.next_cursor : null;
  } while (cursor && items.length < max);
  return items;
}
