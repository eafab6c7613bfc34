"""The workbench in a real headless Chromium (Debian's ``chromium`` through
Playwright's Python API), against a real ``clause serve`` application.

One browser per session, one server per module. Without Playwright or a
Chromium binary every test here is skipped with the reason (``bash .ci/run``
installs both). A screenshot of each step is written to ``$CLAUSE_ARTEFACTS``
or, without it, to a pytest temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from workbench_server import serving

from cli import main as clause
from engine._yaml import parse_yaml
from engine.trace import sentences

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
VENDORS = sorted(p.name for p in POLICIES.iterdir() if (p / "policy.yaml").is_file())
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    """``$CLAUSE_CHROMIUM``, Debian's /usr/bin/chromium, or a chromium on PATH."""
    for candidate in (os.environ.get("CLAUSE_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


# Module scope: Playwright's sync API runs an event loop in this thread while
# it is open; closing it after this module lets later tests use asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set CLAUSE_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("CLAUSE_ARTEFACTS") or tmp_path_factory.mktemp("artefacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def page(browser: Any, artefacts: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; page errors fail the test; a last screenshot is kept on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda err: errors.append(str(err)))
    pg.set_default_timeout(15_000)
    yield pg
    if errors:
        pg.screenshot(path=str(artefacts / f"{request.node.name}-error.png"))
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving(POLICIES) as url:
        yield url


def shoot(page: Any, artefacts: Path, name: str) -> None:
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


def read_case(path: Path) -> dict[str, Any]:
    doc, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    assert doc is not None and not problems
    return json.loads(json.dumps(doc.data, default=str))


def open_workbench(page: Any, base_url: str, vendor: str, kind: str | None = None) -> None:
    page.goto(base_url + "/")
    page.wait_for_selector("body[data-ready='1']")
    if page.input_value("#vendor") != vendor:
        page.select_option("#vendor", vendor)
        page.wait_for_function("v => document.querySelector('#policy-info').textContent && "
                               "document.querySelector('#vendor').value === v", arg=vendor)
    if kind:
        page.select_option("#kind", kind)


def fill_value(page: Any, path: str, value: Any) -> None:
    field = page.locator(f'[data-fact="{path}"]')
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(str(value).lower() if isinstance(value, bool) else str(value))
    elif isinstance(value, dict):  # money with its currency
        field.fill(str(value["value"]))
        page.fill(f'[data-currency="{path}"]', value["currency"])
    else:
        field.fill(str(value))


def fill_case(page: Any, base_url: str, case: dict[str, Any]) -> None:
    """Type a case into the form, one field at a time, as an agent would."""
    open_workbench(page, base_url, case["vendor"], case["kind"])
    page.fill("#case-id", str(case.get("id", "")))
    page.fill("#as-of", case.get("as_of", ""))
    for name, value in case["facts"].items():
        if isinstance(value, list):
            for i, record in enumerate(value):
                page.click(f'[data-add="{name}"]')
                for key, v in record.items():
                    fill_value(page, f"{name}.{i}.{key}", v)
        else:
            fill_value(page, name, value)


def decide(page: Any) -> dict[str, Any]:
    page.evaluate("document.body.dataset.decided = ''")
    page.click("#decide")
    page.wait_for_selector("body[data-decided='1']")
    return json.loads(page.text_content("#decision-json"))


def cli_decision(case_file: Path) -> dict[str, Any]:
    result = CliRunner().invoke(clause, ["decide", str(case_file), "--format", "json", "--policies", str(POLICIES)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("vendor", VENDORS)
def test_form_decides_like_the_cli(page: Any, base_url: str, artefacts: Path, vendor: str) -> None:
    case_file = sorted((POLICIES / vendor / "cases").iterdir())[0]
    case = read_case(case_file)
    fill_case(page, base_url, case)
    shoot(page, artefacts, f"decide-{vendor}-form")
    shown = decide(page)
    want = cli_decision(case_file)
    assert shown == want
    # The card itself says what the JSON says.
    assert page.text_content("[data-testid=outcome]") == want["outcome"].replace("_", " ")
    amount = f"{want['amount']['value']} {want['amount']['currency']}" if want["amount"] else "—"
    assert page.text_content("[data-testid=amount]") == amount
    if want["reasons"]:
        assert page.text_content("[data-testid=reason]") == want["reasons"][0]["text"]
    shoot(page, artefacts, f"decide-{vendor}-card")


def test_missing_fact_question_focuses_its_field(page: Any, base_url: str, artefacts: Path) -> None:
    open_workbench(page, base_url, "itellum", "warranty")
    page.fill("#as-of", "2025-03-10")
    page.fill('[data-fact="installed_on"]', "2025-03-01")
    page.fill('[data-fact="failed_on"]', "2025-03-09")
    decision = decide(page)
    assert decision["outcome"] == "needs_info"
    assert [m["fact"] for m in decision["missing_facts"]] == ["damage_cause"]
    page.click('[data-missing="damage_cause"]')
    assert page.evaluate("document.activeElement.dataset.fact") == "damage_cause"
    shoot(page, artefacts, "missing-fact-focused")
    # Answering the question decides the case.
    page.select_option('[data-fact="damage_cause"]', "factory")
    assert decide(page)["outcome"] == "repair"


def test_why_lists_every_rule_and_highlights_the_clause(page: Any, base_url: str, artefacts: Path) -> None:
    case = read_case(POLICIES / "itellum" / "cases" / "warranty-day-8.yaml")
    fill_case(page, base_url, case)
    decision = decide(page)
    page.click("[data-tab=why]")
    steps = page.locator("#steps [data-step]")
    rules = [r["id"] for r in _ranked_rules("itellum", "warranty")]
    assert steps.evaluate_all("els => els.map(e => e.dataset.step)") == rules
    decided = page.locator("#steps .step-decided").get_attribute("data-step")
    assert decided == decision["reasons"][0]["rule"]
    failed = page.locator("#steps .step-failed").first
    assert " is false" in failed.text_content() and "compared:" in failed.text_content()
    highlighted = page.locator("#why-source mark.reason").first.text_content()
    assert " ".join(highlighted.split()) == " ".join(decision["reasons"][0]["clause"].split())
    shoot(page, artefacts, "why")


def _ranked_rules(vendor: str, kind: str) -> list[dict[str, Any]]:
    from engine import Engine  # noqa: PLC0415
    policy = Engine.load(POLICIES / vendor).vendors[vendor][-1]
    return [{"id": r.id} for r in policy.kinds[kind].ranked()]


def test_source_map_colours_every_sentence(page: Any, base_url: str, artefacts: Path) -> None:
    open_workbench(page, base_url, "intpho")
    page.click("[data-tab=policy]")
    page.wait_for_selector("body[data-policy-shown]")
    page.wait_for_selector("#decision-table tbody tr[data-rule]")
    text = (POLICIES / "intpho" / "source.txt").read_text(encoding="utf-8")
    marks = page.locator("#source-map mark.sentence")
    assert marks.count() == len(sentences(text))
    covers = marks.evaluate_all("els => els.map(e => [e.dataset.cover, getComputedStyle(e).backgroundColor])")
    assert all(bg not in ("rgba(0, 0, 0, 0)", "transparent") for _, bg in covers)
    assert {c for c, _ in covers} >= {"rule", "out_of_scope"}
    page.wait_for_function("() => !document.querySelector('#coverage-summary').textContent.includes('Running')")
    assert re.search(r"rules decided by a test: \d+/\d+", page.text_content("#coverage-summary"))
    page.locator('#source-map mark[data-cover="out_of_scope"]').first.click()
    assert "out of scope" in page.text_content("#sentence-detail")
    shoot(page, artefacts, "policy-table-and-source-map")


def type_over(page: Any, old: str, new: str) -> None:
    """Select ``old`` in the editor and type ``new`` over it, key by key."""
    page.eval_on_selector("#policy-text", """(e, old) => {
        const at = e.value.indexOf(old); e.focus(); e.setSelectionRange(at, at + old.length); }""", old)
    page.keyboard.type(new)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_editor_shows_diagnostics_at_their_line_and_failing_tests(page: Any, base_url: str, artefacts: Path) -> None:
    open_workbench(page, base_url, "itellum")
    page.click("[data-tab=editor]")
    page.wait_for_function("() => document.querySelector('#tests-summary').textContent.includes('passed')")
    assert " 0 failed" in page.text_content("#tests-summary")
    original = page.input_value("#policy-text")
    needle = "days_in_service < 8"
    line = _line_of(original, needle)
    type_over(page, needle, "days_in_servce < 8")
    page.wait_for_selector(f"#diagnostics li.error[data-line='{line}']")
    assert "days_in_servce" in page.text_content(f"#diagnostics li[data-line='{line}']")
    assert page.locator("#gutter > div").nth(line - 1).get_attribute("class") == "err"
    shoot(page, artefacts, "editor-diagnostic")
    type_over(page, "days_in_servce < 8", "days_in_service < 80")
    page.wait_for_selector("#tests li.fail")
    assert re.search(r"[1-9]\d* failed", page.text_content("#tests-summary"))
    page.click("#what-if")
    page.wait_for_selector("[data-testid=what-if-summary]")
    summary = page.text_content("[data-testid=what-if-summary]")
    assert re.search(r"generated cases, [1-9]\d* change", summary)
    shoot(page, artefacts, "editor-failing-tests-and-what-if")
    with page.expect_download() as download:
        page.click("#download-policy")
    assert "days_in_service < 80" in Path(download.value.path()).read_text(encoding="utf-8")


def test_batch_of_a_thousand_cases(page: Any, base_url: str, artefacts: Path, tmp_path: Path) -> None:
    cases = [read_case(f) for v in VENDORS for f in sorted((POLICIES / v / "cases").iterdir())]
    lines = [json.dumps(dict(cases[i % len(cases)], id=f"B-{i}")) for i in range(997)]
    lines[10:10] = ["{not json", json.dumps({"vendor": "nobody", "kind": "x", "facts": {}}),
                    json.dumps({"vendor": "itellum", "kind": "warranty", "facts": {"failed_on": "soon"}})]
    source = tmp_path / "cases.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    open_workbench(page, base_url, "itellum")
    page.click("[data-tab=batch]")
    page.set_input_files("#batch-file", str(source))
    page.wait_for_selector("body[data-batch-done='1']")
    assert page.text_content("[data-testid=batch-counts]") == "997 decided, 3 invalid"
    assert page.locator("#batch-summary svg.chart").count() >= 3
    assert page.locator("#batch-summary svg.chart rect").count() > 5
    assert page.locator("[data-testid=invalid] tbody tr").count() == 3
    assert "fact" in page.text_content("[data-testid=invalid]")
    shoot(page, artefacts, "batch-summary")
    with page.expect_download() as download:
        page.click("#batch-download")
    decided = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(decided) == 997 and json.loads(decided[0])["case_id"] == "B-0"


def test_docs_explorer_sends_a_request(page: Any, base_url: str, artefacts: Path) -> None:
    page.goto(base_url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.click("a[href='/docs']")
    page.wait_for_selector("body[data-ready='1'] details[data-op='decide']")
    ops = page.locator("details.op[data-op]").evaluate_all("els => els.map(e => e.dataset.op)")
    assert {"decide", "decideBatch", "policies", "facts", "health"} <= set(ops)
    page.click("details[data-op='decide'] summary")
    page.click("[data-send='decide']")
    page.wait_for_selector("details[data-op='decide'] [data-status='200']")
    assert '"outcome": "replace"' in page.text_content("details[data-op='decide'] .response pre")
    shoot(page, artefacts, "docs")


# --- a policy whose texts carry markup -------------------------------------------------------

EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.fixture(scope="module")
def evil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """voip-provider with markup in a source sentence, a rule's clause and its reason."""
    root = tmp_path_factory.mktemp("evil")
    shutil.copytree(POLICIES / "voip-provider", root / "voip-provider")
    folder = root / "voip-provider"
    sentence = f"Refunds {EVIL} are final."
    source = folder / "source.txt"
    source.write_text(source.read_text(encoding="utf-8") + "\n" + sentence + "\n", encoding="utf-8")
    policy = folder / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    clause = ("        clause: >-\n          Given the nature of our services, returns are not applicable in the\n"
              "          traditional sense.\n")
    assert clause in text, "the fixture expects voip-provider's return-not-applicable clause"
    text = text.replace(clause, f"        clause: {json.dumps(sentence)}\n", 1)
    reason = "returns are not applicable"
    at = text.index("reason:", text.index("id: return-not-applicable"))
    at = text.index(reason, at) + len(reason)
    policy.write_text(text[:at] + " " + EVIL.replace('"', "") + text[at:], encoding="utf-8")
    with serving(root) as url:
        yield url


def test_markup_in_policy_texts_renders_as_text(page: Any, evil_url: str, artefacts: Path) -> None:
    open_workbench(page, evil_url, "voip-provider", "return")
    page.fill("#as-of", "2025-04-15")
    decision = decide(page)
    assert "<script>" in decision["reasons"][0]["text"] and "<script>" in decision["reasons"][0]["clause"]
    assert "<script>" in page.text_content("[data-testid=reason]")
    assert "<script>" in page.text_content("#card blockquote")
    shoot(page, artefacts, "markup-as-text-card")
    page.click("[data-tab=why]")
    assert "<script>" in page.text_content("#why-source mark.reason")
    shoot(page, artefacts, "markup-as-text-why")
    page.click("[data-tab=policy]")
    page.wait_for_selector("body[data-policy-shown]")
    assert "<script>" in page.text_content("#source-map")
    shoot(page, artefacts, "markup-as-text-source-map")
    page.select_option("#kind", "return")
    page.wait_for_selector("#decision-table tr[data-rule='return-not-applicable']")
    page.click("[data-tab=editor]")
    page.wait_for_function("() => document.querySelector('#policy-text').value.includes('<script>')")
    shoot(page, artefacts, "markup-as-text-editor")
    # Nothing ran and nothing was parsed as markup: only the page's own script elements exist.
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    assert page.evaluate("[...document.scripts].every(s => s.src.includes('/workbench/static/'))")


def test_pasted_case_and_copied_command_give_the_same_decision(page: Any, base_url: str, artefacts: Path) -> None:
    case_file = POLICIES / "itellum" / "cases" / "return-refund.yaml"
    open_workbench(page, base_url, "voip-provider")
    page.click("#case-io summary")
    page.fill("#case-text", case_file.read_text(encoding="utf-8"))
    page.click("#load-case")
    page.wait_for_function("() => document.querySelector('#vendor').value === 'itellum'")
    page.wait_for_function("() => document.querySelector('[data-fact=equipment_price]')?.value === '150000.00'")
    shown = decide(page)
    assert shown == cli_decision(case_file)
    page.click("#copy-command")
    command = page.input_value("#copy-out")
    assert command.startswith("printf '%s\\n' '") and "| clause decide - --format json" in command
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == shown
    page.click("#copy-case")
    assert json.loads(page.input_value("#copy-out"))["facts"]["equipment_price"] == "150000.00"
    shoot(page, artefacts, "paste-and-copy")


def test_bounded_facts_when_the_schema_offers_them(page: Any, base_url: str, artefacts: Path) -> None:
    """Facts whose schema offers ``{"at_most": V}``/``{"at_least": V}`` (issue 8) get a bound picker."""
    def without_bounds_for_installed_on(route: Any) -> None:  # a schema may offer them for some facts only
        schema = route.fetch().json()
        plain = schema["properties"]["installed_on"]["anyOf"][0]
        schema["properties"]["installed_on"] = {**plain, "description": "Day the service was installed"}
        route.fulfill(json=schema)
    page.route("**/v1/policies/itellum/facts", without_bounds_for_installed_on)
    open_workbench(page, base_url, "itellum", "warranty")
    assert page.locator('[data-bound="failed_on"]').count() == 1
    assert page.locator('[data-bound="installed_on"]').count() == 0
    page.fill('[data-fact="installed_on"]', "2025-03-01")
    page.select_option('[data-bound="failed_on"]', "at_most")
    page.fill('[data-fact="failed_on"]', "2025-03-05")
    page.click("#case-io summary")
    page.click("#copy-case")
    facts = json.loads(page.input_value("#copy-out"))["facts"]
    assert facts == {"installed_on": "2025-03-01", "failed_on": {"at_most": "2025-03-05"}}
    page.select_option('[data-bound="failed_on"]', "between")
    page.fill('[data-fact="failed_on.upper"]', "2025-03-20")
    page.click("#copy-case")
    assert json.loads(page.input_value("#copy-out"))["facts"]["failed_on"] == {
        "at_least": "2025-03-05", "at_most": "2025-03-20"}
    shoot(page, artefacts, "bounded-fact")


def test_what_if_on_uploaded_cases(page: Any, base_url: str, artefacts: Path, tmp_path: Path) -> None:
    case = read_case(POLICIES / "itellum" / "cases" / "warranty-day-8.yaml")
    cases = tmp_path / "mine.jsonl"
    cases.write_text("\n".join(json.dumps(dict(case, id=f"W-{d}", facts=dict(case["facts"], failed_on=f"2025-03-{d:02d}")))
                               for d in range(1, 21)) + "\n", encoding="utf-8")
    open_workbench(page, base_url, "itellum")
    page.click("[data-tab=editor]")
    page.wait_for_function("() => document.querySelector('#tests-summary').textContent.includes('passed')")
    type_over(page, "days_in_service < 8 and damage_cause == 'factory'", "days_in_service < 10 and damage_cause == 'factory'")
    page.set_input_files("#what-if-cases", str(cases))
    page.wait_for_function("() => document.querySelector('#what-if').textContent === 'Run what-if on 20 uploaded cases'")
    page.click("#what-if")
    page.wait_for_selector("[data-testid=what-if-summary]")
    # Failures on days 8 and 9 now get an immediate replacement instead of the workshop.
    assert page.text_content("[data-testid=what-if-summary]").startswith("20 uploaded cases, 2 change")
    assert "repair → replace" in page.text_content("#what-if-result table")
    shoot(page, artefacts, "what-if-uploaded")
