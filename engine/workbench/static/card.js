// The answer card: outcome, money, deadlines, actions and the questions to ask.
import { el, clear, money } from "./util.js";

function deadlineStatus(d, asOf) {
  if (d.status) return d.status;  // given by the engine (docs/design.md §2.4)
  if (!d.date) return "unknown";
  return d.date >= asOf ? "open" : "passed";
}

function section(title, ...body) {
  return el("div", { class: "card-section" }, el("h3", { text: title }), ...body);
}

function rangeText(range) {
  if (!range || typeof range !== "object") return "";
  const parts = [];
  if ("at_least" in range) parts.push(`at least ${range.at_least}`);
  if ("at_most" in range) parts.push(`at most ${range.at_most}`);
  if ("one_of" in range) parts.push(`one of ${range.one_of.join(", ")}`);
  return parts.join(" and ");
}

// Render `d` (a decision) into `card`; `ask(fact)` focuses a missing fact's field.
export function renderCard(card, d, facts, ask) {
  clear(card);
  card.append(el("div", { class: "outcome-line" },
    el("span", { class: `outcome outcome-${d.outcome}`, "data-testid": "outcome", text: d.outcome.replace(/_/g, " ") }),
    el("span", { class: "muted", text: `${d.vendor} · ${d.kind} · as of ${d.as_of}${d.case_id ? " · " + d.case_id : ""}` })));
  if (d.reasons.length) card.append(el("p", { class: "lead", "data-testid": "reason", text: d.reasons[0].text }));
  card.append(el("dl", { class: "money-grid" },
    el("dt", { text: "Vendor pays" }), el("dd", { "data-testid": "amount", text: money(d.amount) }),
    el("dt", { text: "Customer pays" }), el("dd", { "data-testid": "customer-pays", text: money(d.customer_pays) })));
  if (d.fees.length) {
    card.append(section("Fees", el("ul", { "data-testid": "fees" },
      d.fees.map((f) => el("li", {}, `${f.name}: ${f.value} ${f.currency}`, el("span", { class: "rule", text: f.rule }))))));
  }
  if (d.deadlines.length) {
    card.append(section("Deadlines", el("ul", { "data-testid": "deadlines" }, d.deadlines.map((x) => {
      const status = deadlineStatus(x, d.as_of);
      return el("li", {}, el("span", { class: `status status-${status}`, text: status }),
        ` ${x.name}: ${x.date || "date unknown"}`, x.text ? el("div", { class: "muted", text: x.text }) : null,
        x.rule ? el("span", { class: "rule", text: x.rule }) : null);
    }))));
  }
  for (const party of ["customer", "vendor"]) {
    const items = d.actions.filter((a) => a.party === party);
    if (items.length) {
      card.append(section(party === "customer" ? "The customer must" : "The vendor must",
        el("ul", { "data-testid": `actions-${party}` }, items.map((a) => el("li", { text: a.text })))));
    }
  }
  if (d.alternatives && d.alternatives.length) {
    card.append(section("Alternatives", el("ul", { "data-testid": "alternatives" }, d.alternatives.map((a) =>
      el("li", {}, `${a.outcome.replace(/_/g, " ")}`, a.amount ? ` · vendor pays ${money(a.amount)}` : "",
        a.customer_pays ? ` · customer pays ${money(a.customer_pays)}` : "", a.text ? ` — ${a.text}` : "")))));
  }
  if (d.missing_facts.length) {
    const meta = (facts || {});
    card.append(section(d.outcome === "needs_info" ? "Ask the customer" : "Would change the answer",
      el("ul", { class: "questions", "data-testid": "missing" }, d.missing_facts.map((m) => {
        const question = m.question || `${(meta[m.fact] && meta[m.fact].meaning) || m.fact}?`;
        return el("li", {}, el("button", { type: "button", class: "question", "data-missing": m.fact,
          onclick: () => ask(m.fact), text: question }),
        el("div", { class: "muted", text: [m.fact, m.why, rangeText(m.range) && `decides: ${rangeText(m.range)}`].filter(Boolean).join(" · ") }));
      }))));
  }
  card.append(section("Reasons", el("ol", { class: "reasons" }, d.reasons.map((r) => el("li", {},
    el("div", { text: r.text }), r.clause ? el("blockquote", { text: r.clause }) : null,
    el("span", { class: "rule", text: r.rule }))))));
  card.append(el("p", { class: "muted small", text: `Policy ${d.policy.vendor} ${d.policy.version}, effective ${d.policy.effective_from}, sha256 ${d.policy.digest.slice(0, 12)}` }));
  card.append(el("details", { class: "raw" }, el("summary", { text: "Decision JSON" }),
    el("pre", { id: "decision-json", text: JSON.stringify(d, null, 2) })));
}

export function renderError(card, err, unplaced) {
  clear(card);
  card.append(el("div", { class: "error-box", "data-testid": "error" },
    el("strong", { text: err.message }),
    el("ul", {}, (unplaced || []).map((d) => el("li", { text: `${d.path || ""} ${d.code}: ${d.message}` })))));
}
