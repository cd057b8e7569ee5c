"""The dashboard in a real browser: Playwright for Python driving Debian's chromium.

Run by crates/cli/tests/dashboard_browser.rs against a server it started and filled. A teacher
signs in with the sign-in form, watches a learner's row change as events are posted, drills
down, acknowledges an intervention and signs out; a teacher of another class and a researcher
see no names; axe-core checks every page against WCAG 2.1 A/AA. Screenshots go to --shots.
Prints a JSON report; exits non-zero on the first failed check.
"""

import argparse
import json
import os
import shutil
import sys
import urllib.request

from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 10_000


def post_events(base, key, events):
    request = urllib.request.Request(
        f"{base}/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as r:
        assert r.status == 200, r.status


def new_page(browser, **options):
    """A page in a fresh context (its own cookies). axe is injected as an inline script, which
    the pages' CSP forbids, so contexts that run it bypass CSP (the pages load nothing inline)."""
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


def sign_in(page, base, key):
    page.goto(f"{base}/ui/sign-in")
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/**")
    expect(page.locator("#who")).not_to_be_empty(timeout=TIMEOUT_MS)


def accessibility(page, axe_source, name, report):
    """Runs axe-core on the page; serious and critical violations fail the run."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    found = [
        {"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"]), "help": v["help"]}
        for v in result["violations"]
    ]
    report["accessibility"][name] = found
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name}: {serious}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--teacher", required=True, help="key of the teacher of class-7b")
    p.add_argument("--other-teacher", required=True, help="key of the teacher of class-8a")
    p.add_argument("--researcher", required=True)
    p.add_argument("--ingest", required=True, help="key that posts events")
    p.add_argument("--dpo", required=True)
    p.add_argument("--admin", required=True)
    p.add_argument("--axe", required=True, help="path of axe.min.js (npm axe-core)")
    p.add_argument("--shots", required=True, help="directory for screenshots")
    args = p.parse_args()
    base = args.url
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (Debian: apt-get install chromium)"
    with open(args.axe, encoding="utf-8") as f:
        axe_source = f.read()
    os.makedirs(args.shots, exist_ok=True)
    report = {"accessibility": {}, "checks": []}

    def check(name):
        report["checks"].append(name)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        desktop = {"bypass_csp": True, "viewport": {"width": 1280, "height": 900}}
        context, page = new_page(browser, **desktop)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{base}/ui/sign-in")
        accessibility(page, axe_source, "sign-in", report)
        page.screenshot(path=f"{args.shots}/sign-in.png")

        # The teacher of class-7b: names, live updates.
        sign_in(page, base, args.teacher)
        ada = page.locator("tr.learner", has_text="Ada Lovelace")
        expect(ada).to_be_visible()
        expect(page.locator("tr.learner", has_text="Bo Diddley")).to_be_visible()
        expect(page.locator("#live")).to_have_text("Live")
        check("teacher sees names in the class view")
        before = ada.inner_text()
        post_events(base, args.ingest, [
            {"learner_id": "ada", "item_id": f"live-{i}", "skills": ["fractions"],
             "outcome": "correct", "group_id": "class-7b", "response_time_ms": 9000}
            for i in range(3)
        ])
        expect(ada).not_to_have_text(before)
        assert "answers" in ada.inner_text()
        check("a learner's row changes live when events are posted")
        accessibility(page, axe_source, "class", report)
        page.screenshot(path=f"{args.shots}/class.png", full_page=True)

        # Drill-down.
        ada.get_by_role("link", name="Ada Lovelace").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
        expect(page.locator("svg.chart")).to_be_visible()
        expect(page.get_by_role("heading", name="Interventions and what followed")).to_be_visible()
        check("drill-down shows mastery over time and the interventions")
        accessibility(page, axe_source, "learner", report)
        page.screenshot(path=f"{args.shots}/learner.png", full_page=True)

        # Interventions: acknowledge Ada's.
        page.get_by_role("link", name="Interventions").click()
        item = page.locator("#feed li", has_text="Ada Lovelace").first
        expect(item).to_be_visible()
        item.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#feed li", has_text="Ada Lovelace").first).to_contain_text("You acknowledged")
        check("acknowledging an intervention is recorded")
        accessibility(page, axe_source, "interventions", report)
        page.screenshot(path=f"{args.shots}/interventions.png", full_page=True)

        # Keyboard: a view takes the focus to its content; Tab reaches the learner most in need
        # first and Enter opens them. The skip link is the first control of every page.
        page.goto(f"{base}/ui/#/class/class-7b")
        expect(page.locator("tr.learner").first).to_be_visible()
        page.wait_for_function("() => document.activeElement && document.activeElement.id === 'main'")
        most_in_need = page.locator("tr.learner").first.get_by_role("link").inner_text()
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.textContent")
        assert focused.strip() == most_in_need, (focused, most_in_need)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text(most_in_need)
        first = page.evaluate("() => document.querySelector('a, button, input, select').textContent")
        assert first.strip() == "Skip to content", first
        check("keyboard: focus moves to the content, Tab and Enter open a learner")

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/ui/sign-in")
        page.goto(f"{base}/ui/")
        page.wait_for_url(f"{base}/ui/sign-in**")
        check("signing out ends the session")
        assert not errors, errors
        context.close()

        # The teacher of class-8a: no names of class-7b, and class-7b is refused.
        context, page = new_page(browser, viewport={"width": 820, "height": 1100})
        sign_in(page, base, args.other_teacher)
        expect(page.get_by_role("heading", level=1)).to_have_text("Class class-8a")
        page.goto(f"{base}/ui/#/class/class-7b")
        expect(page.locator(".problem")).to_contain_text("403")
        page.goto(f"{base}/ui/#/interventions/class-8a")
        page.wait_for_timeout(500)
        assert "Lovelace" not in page.content() and "Diddley" not in page.content()
        check("a teacher of another class sees no names of class-7b")
        page.goto(f"{base}/ui/#/class/class-8a")
        page.screenshot(path=f"{args.shots}/class-tablet.png", full_page=True)
        context.close()

        # The DPO: compliance; the operator (an admin): health and latencies.
        context, page = new_page(browser, **desktop)
        sign_in(page, base, args.dpo)
        page.get_by_role("link", name="Compliance").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Compliance")
        expect(page.locator(".card", has_text="Audit chain")).to_contain_text("intact")
        accessibility(page, axe_source, "compliance", report)
        page.screenshot(path=f"{args.shots}/compliance.png", full_page=True)
        check("the DPO sees the compliance report and the audit chain's state")
        context.close()
        context, page = new_page(browser, **desktop)
        sign_in(page, base, args.admin)
        page.get_by_role("link", name="Operations").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Operations")
        expect(page.locator(".card", has_text="Ready")).to_contain_text("ready")
        expect(page.locator(".card", has_text="Privacy pipeline")).to_contain_text("µs")
        accessibility(page, axe_source, "operations", report)
        page.screenshot(path=f"{args.shots}/operations.png", full_page=True)
        check("the operator sees health, ingest and latencies")
        context.close()

        # A researcher: no learner view at all.
        context, page = new_page(browser)
        sign_in(page, base, args.researcher)
        expect(page.get_by_role("heading", level=1)).to_have_text("Nothing to show")
        assert "Lovelace" not in page.content()
        check("a researcher sees no names")
        context.close()
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"check failed: {e}", file=sys.stderr)
        raise
