// Forms over the API: fields named like the API's body ("wechat_pay.api_v3_key" for nested
// objects), the error shown next to the field named by the error's `param`, write-only
// secrets ("已设置 · <time>" and a "更换" button), and only changed fields sent on edit.
import {h, time} from "./dom.js";
import {errorText} from "./errors.js";

export function valueAt(object, name) {
  return name.split(".").reduce((value, part) => (value == null ? undefined : value[part]), object);
}

function setAt(object, name, value) {
  const parts = name.split(".");
  let node = object;
  for (const part of parts.slice(0, -1)) node = node[part] ??= {};
  node[parts.at(-1)] = value;
}

function inputFor(field, value) {
  const id = "f-" + field.name.replace(/\./g, "-");
  const common = {id, name: field.name, placeholder: field.placeholder, required: field.required, autocomplete: field.autocomplete || "off"};
  if (field.type === "textarea" || field.type === "pem") {
    return h("textarea", {...common, rows: field.type === "pem" ? 5 : 3, class: field.type === "pem" ? "mono" : null}, value ?? "");
  }
  if (field.type === "select") {
    const select = h("select", common, field.options.map(([optionValue, label]) => h("option", {value: optionValue}, label)));
    select.value = value ?? "";
    return select;
  }
  const input = h("input", {...common, type: field.type === "number" ? "number" : (field.type || "text"),
                            inputmode: field.inputmode || (field.type === "number" ? "numeric" : null), min: field.min, max: field.max});
  input.value = value ?? "";
  return input;
}

/**
 * sections: [{title, note, fields: [{name, label, type, hint, required, options, secret, readonly}]}]
 * values: the record being edited (an API view), or {} to create.
 */
export function form({sections, values = {}, submitText = "保存", onSubmit, onCancel, id}) {
  const controls = new Map();
  const errors = new Map();
  const formError = h("div", {class: "error form-error", role: "alert"});
  const submit = h("button", {class: "primary", type: "submit"}, submitText);

  function fieldRow(field) {
    const current = valueAt(values, field.name);
    const error = h("div", {class: "field-error", role: "alert", dataset: {for: field.name}});
    errors.set(field.name, error);
    const label = h("label", {for: "f-" + field.name.replace(/\./g, "-")}, field.label, field.required ? h("span", {class: "req", text: " *"}) : null);
    const hint = field.hint ? h("div", {class: "hint", text: field.hint}) : null;
    if (field.readonly) {
      return h("div", {class: "field", dataset: {field: field.name}}, h("label", {text: field.label}),
        h("div", {class: "readonly"}, current == null || current === "" ? "—" : String(current)), hint, error);
    }
    if (field.secret && current?.set) {
      const control = inputFor(field, "");
      const box = h("div", {class: "secret-field hidden"}, control);
      const state = h("div", {class: "secret-state"}, h("span", {class: "badge ok", text: `已设置 · ${time(current.set_at)}`}),
        h("button", {class: "link", type: "button", dataset: {replace: field.name},
                     onclick: (event) => { box.classList.remove("hidden"); event.target.remove(); control.focus(); }}, "更换"));
      controls.set(field.name, {field, control, original: "", secret: true});
      return h("div", {class: "field", dataset: {field: field.name}}, label, state, box, hint, error);
    }
    const control = inputFor(field, field.secret ? "" : current);
    controls.set(field.name, {field, control, original: field.secret ? "" : (current ?? ""), secret: field.secret});
    return h("div", {class: "field", dataset: {field: field.name}}, label, control, hint, error);
  }

  const element = h("form", {class: "form", novalidate: true, id},
    sections.map((section) => h("fieldset", {},
      section.title ? h("legend", {text: section.title}) : null,
      section.note ? h("p", {class: "note", text: section.note}) : null,
      h("div", {class: "grid"}, section.fields.map(fieldRow)))),
    formError,
    h("div", {class: "form-actions"}, submit, onCancel ? h("button", {class: "ghost", type: "button", onclick: onCancel}, "取消") : null));

  function clearErrors() {
    formError.textContent = "";
    for (const [name, error] of errors) {
      error.textContent = "";
      error.closest(".field")?.classList.remove("invalid");
    }
  }

  /** The field an error's param names: itself, or the nearest field it is part of or contains. */
  function fieldFor(param) {
    if (!param) return null;
    if (errors.has(param)) return param;
    const names = [...errors.keys()];
    return names.find((name) => param.startsWith(name + ".") || param.startsWith(name + "["))
      || names.find((name) => name.startsWith(param + ".")) || null;
  }

  function showError(error) {
    clearErrors();
    const name = fieldFor(error.param);
    const text = errorText(error);
    if (!name) { formError.textContent = text; return; }
    const {field, control} = controls.get(name) || {field: {}};
    const empty = control && !control.value.trim();
    errors.get(name).textContent = error.code !== "invalid_field" ? text
      : empty ? "必填项，请填写" : field.hint ? `${text}：${field.hint}` : text;
    errors.get(name).closest(".field").classList.add("invalid");
    const secretBox = errors.get(name).closest(".field").querySelector(".secret-field.hidden");
    secretBox?.classList.remove("hidden");
    control?.focus();
    control?.scrollIntoView({block: "center"});
  }

  /** The body to send: every filled field (changedOnly: only what differs from the record). */
  function collect({changedOnly = false} = {}) {
    const body = {};
    for (const [name, {field, control, original, secret}] of controls) {
      const raw = control.value.trim ? (field.type === "pem" ? control.value.trim() : control.value.trim()) : control.value;
      if (secret) { if (raw) setAt(body, name, raw); continue; }
      if (changedOnly && raw === String(original ?? "")) continue;
      if (!changedOnly && raw === "") continue;
      if (field.type === "number") {
        if (raw === "") continue;
        setAt(body, name, /^-?\d+$/.test(raw) ? Number(raw) : raw);
      } else if (field.type === "select" && field.nullable && raw === "") {
        setAt(body, name, null);
      } else {
        setAt(body, name, raw);
      }
    }
    return body;
  }

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    submit.disabled = true;
    try {
      await onSubmit({collect, showError});
    } catch (error) {
      if (error.name !== "AbortError") showError(error);
    } finally {
      submit.disabled = false;
    }
  });
  return {element, showError, clearErrors, collect};
}
