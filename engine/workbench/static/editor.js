// Try a change: the policy's YAML in a textarea with line numbers. Diagnostics
// and the policy's tests follow the text as you type; the what-if decides
// generated cases under both versions. Nothing is written on the server.
import { el, clear, api, debounce, download, diagnosticText } from "./util.js";
import { onTab } from "./tabs.js";

const $ = (id) => document.getElementById(id);
const ed = { vendor: null, original: "", file: "policy.yaml", seq: 0 };

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
  box.append(el("p", { "data-testid": "what-if-summary", text: `${w.cases} generated cases, ${w.changed} change; money moved (vendor pays): ${moved}` }));
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
  const seq = ++ed.seq;
  $("editor-status").textContent = withWhatIf ? "Deciding generated cases under both versions…" : "Checking…";
  try {
    const url = `/workbench/api/policies/${encodeURIComponent(ed.vendor)}/try${withWhatIf ? "?what_if=1" : ""}`;
    const result = await api("POST", url, $("policy-text").value, "text/plain");
    if (seq !== ed.seq) return;  // a newer edit is being checked
    showDiagnostics(result.diagnostics);
    showTests(result.tests);
    if (result.what_if) showWhatIf(result.what_if);
    else if (withWhatIf) $("what-if-result").textContent = "Fix the errors first.";
    $("editor-status").textContent = result.ok ? "Checked." : "The edited policy has errors.";
    document.body.dataset.checked = String(seq);
  } catch (err) {
    if (seq === ed.seq) $("editor-status").textContent = `Check failed: ${err.message}`;
  }
}

const checkSoon = debounce(() => check(false), 400);

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
