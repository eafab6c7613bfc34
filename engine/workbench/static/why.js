// The explanation: every rule of the kind in decision order, and the vendor's
// text with the deciding clauses highlighted in place.
import { el, clear, shortLocation } from "./util.js";

// Render `text` into `pre` with `marks` ([{start, end, cls, title, attrs}]) as <mark>s.
export function markedText(pre, text, marks) {
  clear(pre);
  const sorted = marks.filter((m) => m.start < m.end).sort((a, b) => a.start - b.start || b.end - a.end);
  let at = 0;
  for (const m of sorted) {
    if (m.start < at) continue;  // overlapping: the earlier mark wins
    if (m.start > at) pre.append(text.slice(at, m.start));
    pre.append(el("mark", { class: m.cls, title: m.title || null, ...(m.attrs || {}) }, text.slice(m.start, m.end)));
    at = m.end;
  }
  if (at < text.length) pre.append(text.slice(at));
}

const MARK = { decided: "⇒", matched: "+", failed: "✗", unknown: "?" };

export function renderWhy(stepsList, sourcePre, sourceTitle, result) {
  clear(stepsList);
  const { steps, reasons, source } = result;
  sourceTitle.textContent = `Vendor's terms (${source.file})`;
  const reasonRules = new Set(reasons.map((r) => r.rule));
  // Several rules may quote one clause: one mark per clause, naming all of them.
  const bySpan = new Map();
  for (const s of steps) {
    if (!s.span) continue;
    const key = s.span.join(":");
    if (!bySpan.has(key)) bySpan.set(key, { start: s.span[0], end: s.span[1], steps: [] });
    bySpan.get(key).steps.push(s);
  }
  const marks = [...bySpan.values()].map((m) => {
    const reason = m.steps.some((s) => reasonRules.has(s.rule));
    return { start: m.start, end: m.end, cls: reason ? "reason" : `clause-${m.steps[0].status}`,
      title: m.steps.map((s) => `${s.rule} (${s.status})`).join("\n"),
      attrs: { "data-rules": m.steps.map((s) => s.rule).join(" ") } };
  });
  markedText(sourcePre, source.text, marks);
  for (const s of steps) {
    const detail = s.status === "failed" ? `${s.condition} is false` : s.status === "unknown" ? s.detail
      : s.status === "matched" ? s.detail : "decides this case";
    const item = el("li", { class: `step step-${s.status}`, "data-step": s.rule, tabindex: 0 },
      el("div", { class: "step-head" }, el("span", { class: "mark", text: MARK[s.status] || "·" }),
        el("strong", { text: s.rule }), el("span", { class: "outcome-tag", text: s.outcome }),
        el("span", { class: `status status-${s.status}`, text: s.status })),
      el("div", { class: "step-detail", text: detail || "" }),
      s.status === "failed" && s.detail ? el("div", { class: "values", text: `compared: ${s.detail}` }) : null,
      el("div", { class: "muted small", text: shortLocation(s.location), title: s.location }));
    item.addEventListener("click", () => focusClause(sourcePre, s.rule, stepsList, item));
    item.addEventListener("keydown", (e) => { if (e.key === "Enter") focusClause(sourcePre, s.rule, stepsList, item); });
    stepsList.append(item);
  }
  const first = sourcePre.querySelector("mark.reason");
  if (first) first.scrollIntoView({ block: "nearest" });
}

function focusClause(sourcePre, rule, stepsList, item) {
  for (const m of sourcePre.querySelectorAll("mark.focus")) m.classList.remove("focus");
  for (const i of stepsList.querySelectorAll(".selected")) i.classList.remove("selected");
  item.classList.add("selected");
  const mark = sourcePre.querySelector(`mark[data-rules~="${CSS.escape(rule)}"]`);
  if (mark) { mark.classList.add("focus"); mark.scrollIntoView({ block: "center", behavior: "smooth" }); }
}
