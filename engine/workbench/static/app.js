// The workbench page: pickers, tabs, the Decide form and card, and Why.
import { el, clear, api, shellQuote, ApiError } from "./util.js";
import { CaseForm } from "./form.js";
import { renderCard, renderError } from "./card.js";
import { renderWhy } from "./why.js";
import { loaders, currentTab } from "./tabs.js";
import "./policy.js";
import "./editor.js";
import "./batch.js";

const $ = (id) => document.getElementById(id);
const state = { vendors: {}, outline: null, kind: null, decision: null, caseData: null };
const form = new CaseForm($("facts"), () => {});

function banner(message) {
  const b = $("banner");
  b.textContent = message || "";
  b.hidden = !message;
}

function showTab(name) {
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${name}`;
  const load = loaders[name];
  if (load) load(state);
  history.replaceState(null, "", `#${name}`);
}


async function loadVendors() {
  const data = await api("GET", "/v1/policies");
  state.vendors = data.vendors;
  const select = $("vendor");
  clear(select);
  for (const vendor of Object.keys(data.vendors).sort()) select.append(el("option", { value: vendor, text: vendor }));
}

async function selectVendor(vendor, kind) {
  const [outline, schema] = await Promise.all([
    api("GET", `/workbench/api/policies/${encodeURIComponent(vendor)}`),
    api("GET", `/v1/policies/${encodeURIComponent(vendor)}/facts`)]);
  outline.schema = schema;  // the public facts schema, as apps see it
  state.outline = outline;
  $("vendor").value = vendor;
  $("policy-info").textContent = `${outline.name} · version ${outline.version} · ${outline.currency}`;
  const kinds = $("kind");
  clear(kinds);
  for (const [name, k] of Object.entries(outline.kinds)) kinds.append(el("option", { value: name, text: `${name} — ${k.title}` }));
  const lang = $("lang");
  clear(lang);
  for (const l of outline.languages) lang.append(el("option", { value: l, text: l }));
  selectKind(kind && outline.kinds[kind] ? kind : Object.keys(outline.kinds)[0]);
}

function selectKind(kind) {
  state.kind = kind;
  $("kind").value = kind;
  form.build(state.outline, kind);
  const load = loaders[currentTab()];
  if (load && currentTab() !== "decide") load(state);
}

function currentCase() {
  const c = { vendor: state.outline.vendor, kind: state.kind };
  const id = $("case-id").value.trim();
  if (id) c.id = id;
  if ($("as-of").value) c.as_of = $("as-of").value;
  c.facts = form.read();
  return c;
}

async function decide(event) {
  if (event) event.preventDefault();
  form.clearErrors();
  const c = currentCase();
  const lang = $("lang").value || "en";
  state.caseData = c;
  $("card").classList.add("busy");
  try {
    // The explanation carries the decision exactly as /v1/decide and `clause decide` give it.
    const why = await api("POST", `/workbench/api/explain?lang=${encodeURIComponent(lang)}`, c);
    state.decision = why.decision;
    state.why = why;
    renderCard($("card"), why.decision, state.outline.facts, (fact) => form.focus(fact));
    renderWhy($("steps"), $("why-source"), $("source-title"), why);
    document.body.dataset.decided = "1";
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const unplaced = err.diagnostics.filter((d) => !form.showError(d));
    renderError($("card"), err, unplaced);
  } finally {
    $("card").classList.remove("busy");
  }
}

async function loadCaseText(text) {
  try {
    const c = await api("POST", "/workbench/api/case", text, "text/plain");
    if (c.vendor && c.vendor !== state.outline.vendor) await selectVendor(c.vendor, c.kind);
    else if (c.kind && c.kind !== state.kind) selectKind(c.kind);
    $("case-id").value = c.id || "";
    $("as-of").value = c.as_of ? String(c.as_of).slice(0, 10) : "";
    const unused = form.fill(c.facts || {});
    banner(unused.length ? `Not facts of ${state.kind}, left out: ${unused.join(", ")}` : "");
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    banner(`Cannot read that case: ${err.message}`);
  }
}

function copy(text) {
  const out = $("copy-out");
  out.value = text;
  out.select();
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).catch(() => {});
}

function wire() {
  $("vendor").addEventListener("change", (e) => selectVendor(e.target.value));
  $("kind").addEventListener("change", (e) => selectKind(e.target.value));
  $("case-form").addEventListener("submit", decide);
  $("clear-form").addEventListener("click", () => { form.build(state.outline, state.kind); $("case-id").value = ""; $("as-of").value = ""; });
  for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("load-case").addEventListener("click", () => loadCaseText($("case-text").value));
  $("case-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    if (file.size > 1 << 20) { banner("That file is over 1 MiB; a case is much smaller."); return; }
    const text = await file.text();
    $("case-text").value = text;
    await loadCaseText(text);
    e.target.value = "";
  });
  $("copy-case").addEventListener("click", () => copy(JSON.stringify(currentCase(), null, 2)));
  $("copy-command").addEventListener("click", () => {
    const json = JSON.stringify(currentCase());
    copy(`printf '%s\\n' ${shellQuote(json)} | clause decide - --format json --lang ${shellQuote($("lang").value || "en")}`);
  });
  $("copy-decision").addEventListener("click", () => copy(state.decision ? JSON.stringify(state.decision, null, 2) : ""));
}

async function start() {
  wire();
  try {
    await loadVendors();
    const first = Object.keys(state.vendors).sort()[0];
    if (first) await selectVendor(first);
    const tab = location.hash.slice(1);
    if (tab && document.getElementById(`tab-${tab}`)) showTab(tab);
    document.body.dataset.ready = "1";
  } catch (err) {
    banner(`The workbench could not load the policies: ${err.message}`);
  }
}

start();
