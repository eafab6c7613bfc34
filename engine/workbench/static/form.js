// The case form, generated from the kind's facts JSON Schema.
import { el, clear } from "./util.js";

const BOUND_KEYS = ["at_most", "at_least", "one_of"];

// What kind of input a fact's schema asks for.
export function inputKind(schema) {
  if (!schema) return "string";
  if (schema.enum) return "enum";
  const alts = schema.oneOf || schema.anyOf || [];
  const plain = alts.filter((s) => !isBound(s));
  if (plain.some((s) => s.type === "object" && s.properties && "currency" in s.properties)) return "money";
  if (plain.length && plain.length < alts.length) return inputKind(plain.length === 1 ? plain[0] : { oneOf: plain });
  if (schema.type === "array") return "list";
  if (schema.type === "boolean") return "bool";
  if (schema.type === "integer") return "integer";
  if (schema.format === "date") return "date";
  if (schema.format === "date-time") return "datetime";
  if (schema.format === "duration") return "duration";
  if (Array.isArray(schema.type) && schema.type.includes("number")) return "decimal";
  return "string";
}

function isBound(s) {
  return s && s.type === "object" && s.properties && BOUND_KEYS.some((k) => k in s.properties);
}

// Whether the schema offers bounded forms ({"at_most": V} ...) for this fact.
export function offersBounds(schema) {
  return Boolean(schema && (schema.oneOf || schema.anyOf || []).some(isBound));
}

function enumValues(schema) {
  if (schema.enum) return schema.enum;
  for (const s of schema.oneOf || schema.anyOf || []) if (s.enum) return s.enum;
  return [];
}

// One scalar input; `path` names it in data-fact ("name" or "list.0.field").
function scalar(kind, schema, path, currency) {
  const common = { "data-fact": path, id: `fact-${path}`, name: path };
  if (kind === "enum" || kind === "bool") {
    const values = kind === "bool" ? [["true", "yes"], ["false", "no"]] : enumValues(schema).map((v) => [v, v]);
    return el("select", common, el("option", { value: "", text: "(unknown)" }),
      values.map(([v, label]) => el("option", { value: v, text: label })));
  }
  if (kind === "money") {
    return el("span", { class: "money" },
      el("input", { ...common, type: "text", inputmode: "decimal", placeholder: "0.00", pattern: "-?\\d+(\\.\\d+)?" }),
      el("input", { "data-currency": path, type: "text", value: currency, maxlength: 3, size: 4,
        "aria-label": `${path} currency`, class: "currency" }));
  }
  const types = { date: "date", integer: "number" };
  const hints = { datetime: "2025-03-10T14:30:00-06:00", duration: "PT3H30M", decimal: "0.00" };
  return el("input", { ...common, type: types[kind] || "text", step: kind === "integer" ? 1 : null,
    placeholder: hints[kind] || null, inputmode: kind === "decimal" ? "decimal" : null });
}

function boundMode(path, kind) {
  const options = [["", "exactly"], ["at_most", kind === "date" ? "on or before" : "at most"],
    ["at_least", kind === "date" ? "on or after" : "at least"], ["between", "between"]];
  if (kind === "enum") options.splice(1, 3, ["one_of", "one of"]);
  return el("select", { "data-bound": path, "aria-label": `${path} bound`, class: "bound" },
    options.map(([v, label]) => el("option", { value: v, text: label })));
}

function field(name, schema, meta, currency, onFocus) {
  const kind = inputKind(schema);
  const wrap = el("div", { class: `field kind-${kind}`, "data-field": name });
  const label = el("label", { for: `fact-${name}`, class: "name", text: name });
  const help = el("div", { class: "meaning", text: (meta && meta.meaning) || schema.description || "" });
  wrap.append(label);
  if (kind === "list") {
    wrap.append(help, listEditor(name, schema.items || {}, currency));
  } else {
    const input = scalar(kind, schema, name, currency);
    const line = el("div", { class: "inputs" }, input);
    if (offersBounds(schema)) {
      const mode = boundMode(name, kind);
      const upper = scalar(kind, schema, `${name}.upper`, currency);
      upper.hidden = true;
      mode.addEventListener("change", () => { upper.hidden = mode.value !== "between"; });
      line.prepend(mode);
      line.append(upper);
    }
    wrap.append(line, help);
  }
  wrap.append(el("div", { class: "error", "data-error": name }));
  wrap.addEventListener("focusin", () => onFocus && onFocus(name));
  return wrap;
}

function listEditor(name, items, currency) {
  const props = items.properties || {};
  const rows = el("tbody", { "data-rows": name });
  const head = el("thead", {}, el("tr", {}, Object.keys(props).map((k) => el("th", { text: k })), el("th")));
  const add = el("button", { type: "button", class: "add-row", "data-add": name, text: "+ add row",
    onclick: () => addRow(rows, name, props, currency) });
  return el("div", { class: "list" }, el("table", { class: "rows" }, head, rows), add);
}

function addRow(rows, name, props, currency) {
  const index = rows.children.length;
  const row = el("tr", { "data-row": index });
  for (const [key, schema] of Object.entries(props)) {
    row.append(el("td", {}, scalar(inputKind(schema), schema, `${name}.${index}.${key}`, currency)));
  }
  row.append(el("td", {}, el("button", { type: "button", class: "remove-row", text: "remove",
    "aria-label": `remove row ${index + 1}`, onclick: () => { row.remove(); renumber(rows, name); } })));
  rows.append(row);
  return row;
}

function renumber(rows, name) {
  [...rows.children].forEach((row, i) => {
    row.dataset.row = i;
    for (const input of row.querySelectorAll("[data-fact]")) {
      const key = input.dataset.fact.split(".").pop();
      input.dataset.fact = input.name = `${name}.${i}.${key}`;
      input.id = `fact-${input.dataset.fact}`;
    }
    for (const cur of row.querySelectorAll("[data-currency]")) {
      cur.dataset.currency = `${name}.${i}.${cur.dataset.currency.split(".").pop()}`;
    }
  });
}

export class CaseForm {
  constructor(container, onFocus) {
    this.container = container;
    this.onFocus = onFocus;
  }

  build(outline, kind) {
    this.outline = outline;
    this.kind = kind;
    clear(this.container);
    const names = outline.kinds[kind].facts;
    if (!names.length) this.container.append(el("p", { class: "muted", text: "This kind reads no facts." }));
    for (const name of names) {
      this.container.append(field(name, outline.schema.properties[name] || {}, outline.facts[name],
        outline.currency, this.onFocus));
    }
  }

  kindOf(name) {
    return inputKind(this.outline.schema.properties[name] || {});
  }

  value(input, kind) {
    const raw = input.value.trim();
    if (raw === "") return undefined;
    if (kind === "bool") return raw === "true";
    if (kind === "integer") return /^-?\d+$/.test(raw) ? Number(raw) : raw;
    if (kind === "money") {
      const cur = this.container.querySelector(`[data-currency="${CSS.escape(input.dataset.fact)}"]`);
      const currency = (cur && cur.value.trim().toUpperCase()) || this.outline.currency;
      return currency === this.outline.currency ? raw : { value: raw, currency };
    }
    return raw;
  }

  // The facts as the case JSON gives them; empty inputs are absent (unknown) facts.
  read() {
    const facts = {};
    for (const name of this.outline.kinds[this.kind].facts) {
      const schema = this.outline.schema.properties[name] || {};
      const kind = inputKind(schema);
      if (kind === "list") {
        const rows = this.container.querySelector(`[data-rows="${CSS.escape(name)}"]`);
        facts[name] = [...rows.children].map((row) => {
          const rec = {};
          for (const input of row.querySelectorAll("[data-fact]")) {
            const key = input.dataset.fact.split(".").pop();
            const v = this.value(input, inputKind((schema.items.properties || {})[key]));
            if (v !== undefined) rec[key] = v;
          }
          return rec;
        });
        continue;
      }
      const input = this.container.querySelector(`[data-fact="${CSS.escape(name)}"]`);
      const v = this.value(input, kind);
      const mode = this.container.querySelector(`[data-bound="${CSS.escape(name)}"]`);
      if (v === undefined) continue;
      if (!mode || !mode.value) facts[name] = v;
      else if (mode.value === "between") {
        const upper = this.value(this.container.querySelector(`[data-fact="${CSS.escape(name + ".upper")}"]`), kind);
        facts[name] = upper === undefined ? { at_least: v } : { at_least: v, at_most: upper };
      } else if (mode.value === "one_of") facts[name] = { one_of: [v] };
      else facts[name] = { [mode.value]: v };
    }
    return facts;
  }

  setInput(input, value) {
    if (value && typeof value === "object" && "value" in value) {
      input.value = String(value.value);
      const cur = this.container.querySelector(`[data-currency="${CSS.escape(input.dataset.fact)}"]`);
      if (cur) cur.value = value.currency;
    } else if (typeof value === "string" && this.container.querySelector(`[data-currency="${CSS.escape(input.dataset.fact)}"]`)
               && / [A-Z]{3}$/.test(value)) {
      input.value = value.slice(0, -4);
      this.container.querySelector(`[data-currency="${CSS.escape(input.dataset.fact)}"]`).value = value.slice(-3);
    } else {
      input.value = value === null || value === undefined ? "" : String(value);
    }
  }

  // Fill the form from a case's facts; returns the names it had no field for.
  fill(facts) {
    const unused = [];
    for (const [name, value] of Object.entries(facts || {})) {
      const kind = this.outline.kinds[this.kind].facts.includes(name) ? this.kindOf(name) : null;
      if (!kind) { unused.push(name); continue; }
      if (kind === "list") {
        const rows = this.container.querySelector(`[data-rows="${CSS.escape(name)}"]`);
        clear(rows);
        const props = (this.outline.schema.properties[name].items || {}).properties || {};
        for (const record of Array.isArray(value) ? value : []) {
          const row = addRow(rows, name, props, this.outline.currency);
          for (const input of row.querySelectorAll("[data-fact]")) {
            this.setInput(input, record[input.dataset.fact.split(".").pop()]);
          }
        }
        continue;
      }
      const input = this.container.querySelector(`[data-fact="${CSS.escape(name)}"]`);
      const mode = this.container.querySelector(`[data-bound="${CSS.escape(name)}"]`);
      if (value && typeof value === "object" && !("value" in value) && mode) {
        const upper = this.container.querySelector(`[data-fact="${CSS.escape(name + ".upper")}"]`);
        if ("at_least" in value && "at_most" in value) {
          mode.value = "between"; this.setInput(input, value.at_least); this.setInput(upper, value.at_most);
          upper.hidden = false;
        } else {
          const key = Object.keys(value)[0];
          mode.value = key;
          this.setInput(input, key === "one_of" ? value.one_of[0] : value[key]);
        }
      } else {
        this.setInput(input, value);
      }
    }
    return unused;
  }

  addRow(name) {
    const rows = this.container.querySelector(`[data-rows="${CSS.escape(name)}"]`);
    const props = (this.outline.schema.properties[name].items || {}).properties || {};
    return addRow(rows, name, props, this.outline.currency);
  }

  clearErrors() {
    for (const e of this.container.querySelectorAll("[data-error]")) e.textContent = "";
    for (const f of this.container.querySelectorAll(".invalid")) f.classList.remove("invalid");
  }

  // Show a diagnostic at its fact (path /facts/NAME/...); false when it names none.
  showError(diagnostic) {
    const match = /^\/facts\/([^/]+)/.exec(diagnostic.path || "");
    if (!match) return false;
    const name = decodeURIComponent(match[1]);
    const slot = this.container.querySelector(`[data-error="${CSS.escape(name)}"]`);
    if (!slot) return false;
    slot.textContent = diagnostic.message;
    slot.closest(".field").classList.add("invalid");
    return true;
  }

  // Focus a fact's input (from a missing-fact question); false if the form has none.
  focus(name) {
    const input = this.container.querySelector(`[data-fact="${CSS.escape(name)}"]`)
      || this.container.querySelector(`[data-add="${CSS.escape(name)}"]`);
    if (!input) return false;
    input.scrollIntoView({ block: "center" });
    input.focus();
    input.closest(".field").classList.add("asked");
    return true;
  }
}
