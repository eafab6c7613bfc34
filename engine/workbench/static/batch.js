// A batch at a glance: upload JSON Lines or CSV, watch progress, read the
// summary and its charts, download the decisions.
import { el, clear, download } from "./util.js";
import { barChart, stackedChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const MAX_BYTES = 8 << 20;
let decisions = [];

function status(text) { $("batch-status").textContent = text; }

function renderSummary(s) {
  const box = $("batch-summary");
  clear(box);
  box.append(el("p", { "data-testid": "batch-counts", text: `${s.decided} decided, ${s.invalid_count} invalid` }));
  const charts = el("div", { class: "charts" });
  const groups = Object.entries(s.outcomes).map(([label, parts]) => ({ label, parts }));
  if (groups.length) charts.append(stackedChart("Outcomes per kind", groups));
  if (s.rules.length) charts.append(barChart("Rules that decided most often", s.rules.map(([label, value]) => ({ label, value }))));
  const money = [];
  for (const [c, v] of Object.entries(s.amounts)) money.push({ label: `vendor pays (${c})`, value: Number(v), display: `${v} ${c}`, colour: "#3a9d5d" });
  for (const [c, v] of Object.entries(s.customer_pays)) money.push({ label: `customer pays (${c})`, value: Number(v), display: `${v} ${c}`, colour: "#d08a2e" });
  if (money.length) {
    // Currencies do not compare: each bar is scaled within its own currency.
    const byCur = {};
    for (const m of money) { const c = m.display.slice(-3); byCur[c] = Math.max(byCur[c] || 0, m.value); }
    charts.append(barChart("Money per currency (each currency to its own scale)",
      money.map((m) => ({ ...m, value: byCur[m.display.slice(-3)] ? m.value / byCur[m.display.slice(-3)] : 0 }))));
  }
  box.append(charts);
  if (s.invalid_count) {
    box.append(el("h3", { text: `Invalid lines (${s.invalid_count})` }));
    const table = el("table", { class: "table", "data-testid": "invalid" },
      el("thead", {}, el("tr", {}, el("th", { text: "line" }), el("th", { text: "error" }))));
    const body = el("tbody");
    for (const bad of s.invalid) body.append(el("tr", {}, el("td", { text: bad.line }), el("td", { text: bad.error })));
    table.append(body);
    box.append(table);
    if (s.invalid_count > s.invalid.length) box.append(el("p", { class: "muted", text: `… and ${s.invalid_count - s.invalid.length} more` }));
  }
}

async function run(file) {
  clear($("batch-summary"));
  decisions = [];
  $("batch-download").disabled = true;
  if (file.size > MAX_BYTES) { status(`${file.name} is over 8 MiB; use clause batch for large files.`); return; }
  const fmt = /\.csv$/i.test(file.name) ? "csv" : "jsonl";
  const progress = $("batch-progress");
  progress.hidden = false;
  progress.value = 0;
  status(`Uploading ${file.name}…`);
  const lang = $("lang").value || "en";
  let response;
  try {
    response = await fetch(`/workbench/api/batch?format=${fmt}&lang=${encodeURIComponent(lang)}`,
      { method: "POST", body: await file.text(), headers: { "Content-Type": "text/plain" } });
  } catch (err) { status(`Cannot reach the server: ${err.message}`); return; }
  if (!response.ok) {
    let body = {};
    try { body = await response.json(); } catch { /* not JSON */ }
    status(`The batch was refused: ${body.detail || body.error || response.status}`);
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const msg = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      if ("total" in msg) { total = msg.total; progress.max = Math.max(total, 1); }
      if ("done" in msg) {
        progress.value = msg.done;
        status(`${msg.done} of ${total} cases decided…`);
        for (const r of msg.results) if (r.decision) decisions.push(r.decision);
      }
      if ("summary" in msg) {
        status(`Done: ${total} cases from ${file.name}.`);
        renderSummary(msg.summary);
        $("batch-download").disabled = decisions.length === 0;
        document.body.dataset.batchDone = "1";
      }
    }
  }
}

$("batch-file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) run(file);
  e.target.value = "";
});
$("batch-download").addEventListener("click", () =>
  download("decisions.jsonl", decisions.map((d) => JSON.stringify(d)).join("\n") + "\n", "application/x-ndjson"));
