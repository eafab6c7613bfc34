// The policy at a glance: a kind as a decision table with test coverage, and
// the source map (every sentence of source.txt coloured by what covers it).
import { el, clear, api, shortLocation } from "./util.js";
import { onTab } from "./tabs.js";
import { markedText } from "./why.js";

const $ = (id) => document.getElementById(id);
let shown = "";

function cell(texts) {
  return el("td", {}, (texts || []).map((t) => el("code", { class: "cond", text: t })));
}

function renderTable(table, data, cov) {
  clear(table);
  const head = el("tr", {}, el("th", { text: "#" }), el("th", { text: "rule" }),
    data.columns.map((c) => el("th", { class: "fact-col", text: c })),
    el("th", { text: "outcome" }), el("th", { text: "amount" }), el("th", { text: "customer pays" }),
    el("th", { text: "fees · deadlines" }), el("th", { text: "rank" }), el("th", { text: "tests" }));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  for (const r of data.rows) {
    const tested = cov ? cov.rules[r.rule] : undefined;
    const extras = [...Object.entries(r.fees).map(([n, e]) => `fee ${n} = ${e}`),
      ...Object.entries(r.deadlines).map(([n, e]) => `deadline ${n} = ${e}`)];
    body.append(el("tr", { "data-rule": r.rule, class: r.override ? "override" : "", title: `${r.clause}\n\nwhen: ${r.when}` },
      el("td", { text: r.rank }), el("td", {}, el("strong", { text: r.rule }), el("div", { class: "muted small", text: shortLocation(r.location), title: r.location })),
      data.columns.map((c) => cell(r.cells[c])),
      el("td", {}, el("span", { class: `outcome outcome-${r.outcome}`, text: r.outcome.replace(/_/g, " ") })),
      el("td", {}, r.amount ? el("code", { text: r.amount }) : "—"),
      el("td", {}, r.customer_pays ? el("code", { text: r.customer_pays }) : "—"),
      el("td", {}, extras.map((x) => el("div", {}, el("code", { text: x })))),
      el("td", { text: r.override ? "override" : (data.combine === "priority" ? `priority ${r.priority}` : "first match") }),
      el("td", { class: tested === undefined ? "" : tested ? "covered" : "uncovered",
        text: tested === undefined ? "…" : tested ? "✓ decided a test" : "✗ no test" })));
    if (!r.plain_and) body.lastChild.classList.add("disjunction");
  }
  body.append(el("tr", { class: "otherwise" }, el("td", { text: "—" }), el("td", { text: "otherwise" }),
    data.columns.map(() => el("td")), el("td", {}, el("span", { class: `outcome outcome-${data.otherwise}`, text: data.otherwise.replace(/_/g, " ") })),
    el("td"), el("td"), el("td"), el("td"), el("td")));
  table.append(body);
}

const LABEL = { rule: "rule", fact: "fact definition", out_of_scope: "out of scope" };

function renderSourceMap(pre, detail, map) {
  const marks = map.sentences.map((s, i) => ({
    start: s.start, end: s.end, cls: `sentence cover-${s.cover}${s.deciding ? " deciding" : ""}`,
    title: s.by.length ? s.by.map((b) => `${LABEL[b.type]} ${b.type === "out_of_scope" ? "— " + b.reason : b.name}`).join("\n")
      : (s.deciding ? "decides something, but nothing covers it" : "not covered (does not decide anything)"),
    attrs: { "data-sentence": i, "data-cover": s.cover, tabindex: 0 } }));
  markedText(pre, map.text, marks);
  for (const mark of pre.querySelectorAll("mark.sentence")) {
    const show = () => {
      const s = map.sentences[Number(mark.dataset.sentence)];
      clear(detail);
      detail.classList.remove("muted");
      detail.append(el("blockquote", { text: s.text }));
      if (!s.by.length) detail.append(el("p", { text: s.deciding ? "Decides something, but no rule, fact or out_of_scope entry covers it." : "Nothing covers it; it does not decide anything." }));
      for (const b of s.by) {
        detail.append(el("p", {}, el("span", { class: `chip cover-${b.type}`, text: LABEL[b.type] }), " ",
          b.type === "out_of_scope" ? el("span", { text: b.reason }) : el("strong", { text: `${b.name}${b.kind ? " (" + b.kind + ")" : ""}` })));
      }
    };
    mark.addEventListener("click", show);
    mark.addEventListener("keydown", (e) => { if (e.key === "Enter") show(); });
  }
}

onTab("policy", async (state) => {
  const vendor = state.outline.vendor;
  const key = `${vendor}/${state.kind}`;
  if (shown === key) return;
  shown = key;
  const base = `/workbench/api/policies/${encodeURIComponent(vendor)}`;
  $("table-title").textContent = `Decision table: ${state.kind}`;
  $("coverage-summary").textContent = "Running the policy's tests for coverage…";
  const [table, map] = await Promise.all([
    api("GET", `${base}/kinds/${encodeURIComponent(state.kind)}/table`), api("GET", `${base}/source-map`)]);
  renderTable($("decision-table"), table, null);
  renderSourceMap($("source-map"), $("sentence-detail"), map);
  document.body.dataset.policyShown = key;
  try {
    const cov = await api("GET", `${base}/coverage`);
    renderTable($("decision-table"), table, cov);
    const [rc, rt] = cov.totals.rules;
    const [bc, bt] = cov.totals.branches;
    $("coverage-summary").textContent = `${table.combine === "priority" ? "Priority" : "First match"} in this order. `
      + `Tests: ${cov.tests} (${cov.failed} failing); rules decided by a test: ${rc}/${rt}; branches seen both ways: ${bc}/${bt} (whole policy).`;
  } catch (err) {
    $("coverage-summary").textContent = `Coverage unavailable: ${err.message}`;
  }
});
