// A small explorer of this server's /openapi.json: operations, their schemas
// (with $refs followed), and a form to send a request. Text only, no HTML.
import { el, clear, api } from "./util.js";

let spec = null;

function resolve(schema) {
  let s = schema;
  for (let i = 0; s && s.$ref && i < 20; i++) {
    const parts = s.$ref.replace(/^#\//, "").split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    s = parts.reduce((node, key) => (node ? node[key] : undefined), spec);
  }
  return s || {};
}

function typeOf(schema) {
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.enum) return `enum: ${schema.enum.map((v) => JSON.stringify(v)).join(" | ")}`;
  if (schema.const !== undefined) return `const ${JSON.stringify(schema.const)}`;
  const t = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  return [t, schema.format && `(${schema.format})`, schema.pattern && `/${schema.pattern}/`].filter(Boolean).join(" ") || "any";
}

// A schema as a nested list, `depth` levels deep (refs followed, cycles cut).
function schemaTree(schema, depth = 0, seen = new Set()) {
  const list = el("ul", { class: "schema" });
  const s = resolve(schema);
  if (schema.$ref) {
    if (seen.has(schema.$ref) || depth > 6) { list.append(el("li", { text: `${typeOf(schema)} (see above)` })); return list; }
    seen = new Set([...seen, schema.$ref]);
  }
  const required = new Set(s.required || []);
  for (const [name, prop] of Object.entries(s.properties || {})) {
    const r = resolve(prop);
    const item = el("li", {}, el("span", { class: "pname", text: name }), " ",
      el("span", { class: "ptype", text: typeOf(prop.$ref ? prop : r) }),
      required.has(name) ? el("span", { class: "req", text: " required" }) : null,
      r.description ? el("div", { class: "desc", text: r.description }) : null);
    if (r.properties || (r.items && (resolve(r.items).properties || r.items.$ref)) || r.oneOf || r.anyOf) {
      item.append(schemaTree(r.properties ? prop : r.items || { oneOf: r.oneOf || r.anyOf }, depth + 1, seen));
    }
    list.append(item);
  }
  if (s.type === "array" && s.items) {
    list.append(el("li", {}, el("span", { class: "ptype", text: `array of ${typeOf(s.items)}` }),
      s.maxItems ? ` (at most ${s.maxItems})` : "", schemaTree(s.items, depth + 1, seen)));
  }
  for (const key of ["oneOf", "anyOf"]) {
    for (const [i, alt] of (s[key] || []).entries()) {
      list.append(el("li", {}, el("span", { class: "ptype", text: `${key === "oneOf" ? "one of" : "any of"} #${i + 1}: ${typeOf(alt)}` }),
        schemaTree(alt, depth + 1, seen)));
    }
  }
  return list;
}

const EXAMPLES = {
  decide: { id: "CASE-1", vendor: "itellum", kind: "delivery", as_of: "2025-02-14", facts: { defect_at_delivery: true } },
};

function operation(path, method, op) {
  const params = op.parameters || [];
  const inputs = {};
  const body = op.requestBody && (op.requestBody.content || {})["application/json"];
  const example = EXAMPLES[op.operationId] || (op.operationId === "decideBatch" ? [EXAMPLES.decide] : {});
  const bodyArea = body ? el("textarea", { "data-body": op.operationId, spellcheck: "false", "aria-label": "Request body" }) : null;
  if (bodyArea) bodyArea.value = JSON.stringify(example, null, 2);
  const result = el("div", { class: "response" });
  const send = async () => {
    let url = path;
    for (const p of params) url = url.replace(`{${p.name}}`, encodeURIComponent(inputs[p.name].value));
    clear(result);
    result.append(el("p", { class: "muted", text: `${method.toUpperCase()} ${url} …` }));
    const init = { method: method.toUpperCase(), headers: {} };
    if (bodyArea) { init.body = bodyArea.value; init.headers["Content-Type"] = "application/json"; }
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
      clear(result);
      result.append(el("p", { "data-status": response.status, text: `${response.status} ${response.statusText} · ${response.headers.get("content-type") || ""}` }),
        el("pre", { text: shown }));
    } catch (err) {
      clear(result);
      result.append(el("p", { class: "bad", text: `Cannot reach the server: ${err.message}` }));
    }
  };
  const responses = Object.entries(op.responses || {}).map(([code, r]) => {
    const schema = r.content && r.content["application/json"] && r.content["application/json"].schema;
    return el("li", {}, el("strong", { text: code }), ` ${r.description || ""}`, schema ? schemaTree(schema) : null);
  });
  return el("details", { class: "op", "data-op": op.operationId || `${method} ${path}` },
    el("summary", {}, el("span", { class: `method method-${method}`, text: method.toUpperCase() }),
      el("span", { class: "path", text: path }), el("span", { class: "muted", text: op.summary || "" })),
    el("div", { class: "body" },
      op.description ? el("p", { text: op.description }) : null,
      params.length ? el("h3", { text: "Parameters" }) : null,
      params.map((p) => el("label", { class: "row" }, `${p.name} (${p.in})${p.required ? " *" : ""} `,
        inputs[p.name] = el("input", { type: "text", "data-param": p.name, value: p.name === "vendor" ? "itellum" : "" }))),
      body ? el("h3", { text: "Request body" }) : null,
      body ? schemaTree(body.schema) : null,
      el("h3", { text: "Responses" }), el("ul", {}, responses),
      el("div", { class: "try" }, el("h3", { text: "Try it" }), bodyArea,
        el("div", { class: "buttons" }, el("button", { type: "button", class: "primary", "data-send": op.operationId, onclick: send, text: "Send" }))),
      result));
}

async function start() {
  const box = document.getElementById("operations");
  try {
    spec = await api("GET", "/openapi.json");
  } catch (err) {
    box.append(el("p", { class: "bad", text: `Cannot load /openapi.json: ${err.message}` }));
    return;
  }
  document.getElementById("api-info").textContent = `${spec.info.title} ${spec.info.version} · OpenAPI ${spec.openapi}`;
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (["get", "post", "put", "patch", "delete"].includes(method)) box.append(operation(path, method, op));
    }
  }
  if (spec.components && spec.components.schemas) {
    const schemas = el("details", { class: "op" }, el("summary", {}, el("strong", { text: "Schemas" })),
      el("div", { class: "body" }, Object.entries(spec.components.schemas).map(([name, s]) =>
        el("div", {}, el("h3", { text: name }), s.description ? el("p", { class: "muted", text: s.description }) : null,
          schemaTree({ $ref: `#/components/schemas/${name}` })))));
    box.append(schemas);
  }
  document.body.dataset.ready = "1";
}

start();
