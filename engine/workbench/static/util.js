// Small helpers shared by the workbench's scripts. Every piece of data reaches
// the page through el()/text nodes (textContent), never as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "value") node.value = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.detail || body.error || body.title)) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.diagnostics = (body && body.diagnostics) || [];
  }
}

// JSON in, JSON out; a problem+json (or the older {error, diagnostics}) answer
// becomes an ApiError carrying its diagnostics.
export async function api(method, url, body, contentType = "application/json") {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = contentType;
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, { detail: `cannot reach the server (${err.message})` });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text.slice(0, 200) }; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// A shell word: single quotes, with each ' written as '\''.
export function shellQuote(text) {
  return "'" + String(text).replace(/'/g, "'\\''") + "'";
}

export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function money(m) {
  return m ? `${m.value} ${m.currency}` : "—";
}

export function diagnosticText(d) {
  const where = d.line ? `${d.file || ""}:${d.line}:${d.column || 1}: ` : (d.path ? `${d.path}: ` : "");
  return `${where}${d.code}: ${d.message}${d.hint ? ` (hint: ${d.hint})` : ""}`;
}

// "/long/path/policies/itellum/policy.yaml:464:9" → "itellum/policy.yaml:464:9".
export function shortLocation(location) {
  return String(location || "").split("/").slice(-2).join("/");
}
