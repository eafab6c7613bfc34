// Try a change: the policy's YAML in a textarea with line numbers. Diagnostics
// and the policy's tests follow the text as you type; the what-if decides
// generated cases under both versions. Nothing is written on the server.
import { el, clear, api, debounce, download, diagnosticText } from "./util.js";
import { onTab } from "./tabs.js";

const $ = (id) => document.getElementById(id);
const ed = { vendor: null, original: "", file: "policy.yaml", seq: 0, cases: null };

function gutterLines(count) {
  const gutter = $("gutter");
  while (gutter.children.length < count) gutter.append(el("div", { text: gutter.children.length + 1 }));
  while (gutter.children.length > count) gutter.lastChild.remove();
}

function syncScroll() { $("gutter").scrollTop = $("policy-text").scrollTop; }

function goToLine(line, column) {
  const area = $("policy-text");
  const lines = area.value.split("\n");
  let at = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
  at += Math.max((column || 1) - 1, 0);
  area.focus();
  area.setSelectionRange(at, at);
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
  area.scrollTop = Math.max(0, (line - 5) * lineHeight);
  syncScroll();
}

function isPolicyFile(d) {
  return d.file && (d.file === ed.path || d.file.endsWith(`/${ed.file}`) || d.file === ed.file);
}

function showDiagnostics(list) {
  const ul = $("diagnostics");
  clear(ul);
  for (const row of $("gutter").children) { row.className = ""; row.removeAttribute("title"); }
  if (!list.length) ul.append(el("li", { class: "ok", text: "No problems." }));
  for (const d of list) {
    const here = isPolicyFile(d) && d.line;
    ul.append(el("li", { class: `diag ${d.severity}`, "data-line": here ? d.line : null,
      onclick: here ? () => goToLine(d.line, d.column) : null }, diagnosticText(d)));
    if (here) {
      const row = $("gutter").children[d.line - 1];
      if (row) {
        row.className = d.severity === "error" ? "err" : row.className || "warn";
        row.title = [row.title, `${d.code}: ${d.message}`].filter(Boolean).join("\n");
      }
    }
  }
}

function showTests(tests) {
  const ul = $("tests");
  clear(ul);
  if (!tests) { $("tests-summary").textContent = "Not run: the edited policy has errors."; return; }
  const failed = tests.filter((t) => !t.passed);
  $("tests-summary").textContent = `${tests.length - failed.length} passed, ${failed.length} failed`;
  $("tests-summary").className = failed.length ? "bad" : "good";
  for (const t of [...failed, ...tests.filter((x) => x.passed)]) {
    ul.append(el("li", { class: t.passed ? "pass" : "fail", "data-test": t.name },
      el("span", { class: "mark", text: t.passed ? "✓" : "✗" }), ` ${t.name}`,
      t.file ? el("span", { class: "muted small", text: ` (${t.file}:${t.line})` }) : null,
      t.error ? el("div", { class: "why", text: t.error }) : null,
      t.diffs.map((d) => el("div", { class: "why", text: `${d.field}: want ${JSON.stringify(d.want)}, got ${JSON.stringify(d.got)}` }))));
  }
}

function showWhatIf(w) {
  const box = $("what-if-result");
  clear(box);
  box.classList.remove("muted");
  const moved = Object.entries(w.moved).map(([c, v]) => `${v} ${c}`).join(", ") || "none";
  box.append(el("p", { "data-testid": "what-if-summary", text: `${w.cases} ${w.generated ? "generated" : "uploaded"} cases, ${w.changed} change; money moved (vendor pays): ${moved}` }));
  const table = el("table", { class: "table" }, el("thead", {}, el("tr", {},
    ["cases", "change", "vendor pays Δ", "customer pays Δ", "e.g."].map((h) => el("th", { text: h })))));
  const body = el("tbody");
  for (const g of w.groups) {
    const fmt = (m) => Object.entries(m).map(([c, v]) => `${v} ${c}`).join(", ") || "—";
    body.append(el("tr", {}, el("td", { text: g.count }), el("td", { text: g.change }),
      el("td", { text: fmt(g.amount_delta) }), el("td", { text: fmt(g.customer_delta) }), el("td", { text: g.examples.join(", ") })));
  }
  table.append(body);
  if (w.groups.length) box.append(table);
}

async function check(withWhatIf) {
  const text = $("policy-text").value;
  const seq = ++ed.seq;
  $("editor-status").textContent = withWhatIf ? "Deciding cases under both versions…" : "Checking…";
  try {
    const url = `/workbench/api/policies/${encodeURIComponent(ed.vendor)}/try${withWhatIf ? "?what_if=1" : ""}`;
    const result = withWhatIf && ed.cases
      ? await api("POST", url, { text, cases: ed.cases })
      : await api("POST", url, text, "text/plain");
    if (text !== $("policy-text").value) return;  // the text changed meanwhile: a newer check follows
    showDiagnostics(result.diagnostics);
    showTests(result.tests);
    if (result.what_if) showWhatIf(result.what_if);
    else if (withWhatIf) $("what-if-result").textContent = "Fix the errors first.";
    if (seq === ed.seq) $("editor-status").textContent = result.ok ? "Checked." : "The edited policy has errors.";
    document.body.dataset.checked = String(seq);
  } catch (err) {
    if (text === $("policy-text").value) $("editor-status").textContent = `Check failed: ${err.message}`;
  }
}

const checkSoon = debounce(() => check(false), 400);

// Cases from a JSON Lines file, or a JSON array (or one case) in a .json file.
function parseCases(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) return JSON.parse(trimmed);
  if (trimmed.startsWith("{") && !trimmed.includes("\n{")) return [JSON.parse(trimmed)];
  return trimmed.split("\n").filter((l) => l.trim()).map((line, i) => {
    try { return JSON.parse(line); } catch { throw new Error(`line ${i + 1} is not JSON`); }
  });
}

function wire() {
  const area = $("policy-text");
  area.addEventListener("input", () => { gutterLines(area.value.split("\n").length); checkSoon(); });
  area.addEventListener("scroll", syncScroll);
  area.addEventListener("keydown", (e) => {
    if (e.key === "Tab") {  // YAML indents with spaces
      e.preventDefault();
      area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
      area.dispatchEvent(new Event("input"));
    }
  });
  $("what-if").addEventListener("click", () => check(true));
  $("what-if-cases").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    try {
      ed.cases = parseCases(await file.text());
    } catch (err) {
      $("editor-status").textContent = `${file.name}: ${err.message}`;
      return;
    }
    $("what-if").textContent = `Run what-if on ${ed.cases.length} uploaded cases`;
    $("what-if-generated").hidden = false;
  });
  $("what-if-generated").addEventListener("click", () => {
    ed.cases = null;
    $("what-if").textContent = "Run what-if";
    $("what-if-generated").hidden = true;
  });
  $("download-policy").addEventListener("click", () => download(ed.file, area.value, "application/yaml"));
  $("reset-policy").addEventListener("click", () => { area.value = ed.original; area.dispatchEvent(new Event("input")); });
}
wire();

onTab("editor", async (state) => {
  const vendor = state.outline.vendor;
  if (ed.vendor === vendor) return;
  const data = await api("GET", `/workbench/api/policies/${encodeURIComponent(vendor)}/text`);
  ed.vendor = vendor;
  ed.original = data.text;
  ed.file = data.file;
  ed.path = data.path;
  $("editor-file").textContent = data.file;
  $("policy-text").value = data.text;
  gutterLines(data.text.split("\n").length);
  clear($("what-if-result"));
  check(false);
});
