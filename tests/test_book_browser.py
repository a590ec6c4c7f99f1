"""The book in a real browser: build it once (python book/build.py into a temporary folder),
serve it from 127.0.0.1, open every page in Chromium (Debian's, driven by Playwright; no browser
is downloaded) and check what a reader gets: no console error, no failed request, no request
leaving the machine, every image loaded and described, math typeset by the local MathJax,
Chinese on the Chinese pages in the shipped font, working search, links that resolve, and no
serious or critical accessibility violation (axe-core; every page light, two pages dark too).
A screenshot of each chapter's first screen is saved under the session's temporary folder (the
path is printed)."""
import functools
import glob
import http.server
import os
import re
import subprocess
import sys
import threading
import urllib.parse

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"          # Debian's package (apt-get install chromium), see .ci/run
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions"]
LANGS = ("zh", "en")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# Left in the prose when math was not typeset: display dollars, MathJax's delimiters, LaTeX commands.
RAW_MATH = re.compile(r"\$\$|\\\(|\\\[|\\(frac|sum|sqrt|mathrm|text|left|right|begin|cdot)\b")


def chapters(lang):
    return [f"{lang}/chapters/{os.path.basename(p)[:-6]}.html"
            for p in sorted(glob.glob(os.path.join(ROOT, "chapters", lang, "[0-9][0-9]_*.ipynb")))]


def _requirements():
    """Skip where the browser is not installed, except in CI (CI=true), where .ci/run installs it."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
        import axe_playwright_python  # noqa: F401
    except ImportError as error:
        missing.append(f"{error.name} (pip install -r requirements-book.txt)")
    if not os.path.exists(CHROMIUM):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing and os.environ.get("CI"):
        pytest.fail("the book's browser tests need " + ", ".join(missing))
    if missing:
        pytest.skip("needs " + ", ".join(missing))


# ----------------------------------------------------------------------------- fixtures (one build, one browser)
@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The book, built once for the session by the README's command, into a temporary folder."""
    _requirements()
    out = tmp_path_factory.mktemp("book")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "book", "build.py"), "--quiet", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"python book/build.py failed:\n{run.stderr[-6000:]}"
    return out / "html"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server(site):
    """http://127.0.0.1:<free port>/ serving the site, for the session."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """One Chromium for the session, on a fresh profile."""
    _requirements()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 800}, locale="en-US")
        yield context
        context.close()


# Everything a page shows that the checks need, once the page has finished: MathJax done,
# lazy images forced to load and decoded, fonts loaded.
SNAPSHOT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  for (const img of document.images) img.loading = "eager";
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  await document.fonts.ready;
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let prose = "";
  for (let node = walker.nextNode(); node; node = walker.nextNode())
    if (!node.parentElement.closest(skip)) prose += node.nodeValue;
  return {
    lang: document.documentElement.lang,
    images: [...document.images].map(img => ({src: img.getAttribute("src"), alt: img.getAttribute("alt"),
                                              loaded: img.complete && img.naturalWidth > 0})),
    math: document.querySelectorAll("span.math, div.math").length,
    typeset: document.querySelectorAll("mjx-container").length,
    mathErrors: [...document.querySelectorAll("mjx-merror")].map(e => e.textContent).slice(0, 3),
    prose: prose,
    fonts: [...document.fonts].filter(f => f.family.replace(/"/g, "") === "Noto Sans SC Subset").map(f => f.status),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    ids: [...document.querySelectorAll("[id]")].map(e => e.id),
    langSwitch: (document.querySelector("a.tinyllm-lang-switch") || {}).href || null,
    next: (document.querySelector("a.right-next") || {}).href || null,
  };
}"""


@pytest.fixture(scope="session")
def visits(site, server, browser, tmp_path_factory):
    """Open every page of the site once; what each showed, by path (zh/chapters/01_background.html)."""
    from axe_playwright_python.sync_playwright import Axe
    axe = Axe()
    shots = tmp_path_factory.mktemp("screenshots")
    pages = sorted(os.path.relpath(p, site).replace(os.sep, "/") for p in glob.glob(str(site / "**" / "*.html"), recursive=True)
                   if "_static" not in os.path.relpath(p, site).split(os.sep))
    page = browser.new_page()
    events = []
    page.on("console", lambda m: events.append(("console", f"{m.type}: {m.text}")) if m.type == "error" else None)
    page.on("pageerror", lambda e: events.append(("console", f"uncaught: {e}")))
    page.on("requestfailed", lambda r: events.append(("failed", f"{r.url} ({r.failure})")))
    page.on("response", lambda r: events.append(("failed", f"{r.url} (HTTP {r.status})")) if r.status >= 400 else None)
    page.on("request", lambda r: events.append(("request", r.url)))
    seen = {}
    for path in pages:
        events.clear()
        page.goto(server + path, wait_until="load")
        record = page.evaluate(SNAPSHOT)
        record["events"] = list(events)   # the page's own; axe then fetches stylesheets itself (and
        if path in chapters("zh") + chapters("en"):   # resolves @import against the page: 404s)
            page.screenshot(path=str(shots / path.replace("/", "-").replace(".html", ".png")))
        record["axe"] = [v for v in axe.run(page).response["violations"] if v["impact"] in ("serious", "critical")]
        seen[path] = record
    page.close()
    print(f"\nthe book's screenshots: {shots}")
    return seen


def expect_none(visits, check, what):
    """Fail, listing every page and its problems, when ``check(path, record)`` finds any."""
    lines = [f"{path}: {problem}" for path, record in visits.items() for problem in check(path, record)]
    if lines:
        more = f"\n... and {len(lines) - 40} more" if len(lines) > 40 else ""
        pytest.fail(f"{what}:\n" + "\n".join(lines[:40]) + more, pytrace=False)


# ----------------------------------------------------------------------------- the checks
def test_the_site_has_both_editions_with_every_chapter(visits):
    for lang in LANGS:
        for page in [f"{lang}/index.html", f"{lang}/glossary.html", f"{lang}/teachers.html",
                     f"{lang}/api/index.html", f"{lang}/api/functional.html", *chapters(lang)]:
            assert page in visits, f"{page} was not built"
    assert "index.html" in visits


def test_no_console_error(visits):
    expect_none(visits, lambda p, r: [text for kind, text in r["events"] if kind == "console"], "console errors")


def test_no_failed_request(visits):
    expect_none(visits, lambda p, r: [text for kind, text in r["events"] if kind == "failed"], "failed requests")


def test_no_request_leaves_the_machine(visits):
    def outside(path, record):
        urls = [text for kind, text in record["events"] if kind == "request"]
        return [url for url in urls if urllib.parse.urlparse(url).scheme not in ("data", "blob", "about")
                and urllib.parse.urlparse(url).hostname != "127.0.0.1"]
    expect_none(visits, outside, "requests leaving 127.0.0.1")


def test_every_image_loads_and_has_alt_text(visits):
    def bad(path, record):
        problems = []
        for img in record["images"]:
            name = os.path.basename(img["src"] or "")
            if not img["loaded"]:
                problems.append(f"{img['src']} did not load")
            if not (img["alt"] or "").strip() or img["alt"] == img["src"] or name in img["alt"]:
                problems.append(f"{img['src']} has no alt text (alt={img['alt']!r})")
        return problems
    expect_none(visits, bad, "images")
    assert sum(len(r["images"]) for p, r in visits.items() if "/chapters/" in p) > 0


def test_math_is_typeset_and_no_raw_tex_is_left(visits):
    def bad(path, record):
        problems = []
        if record["typeset"] < record["math"]:
            problems.append(f"{record['math']} formulas, {record['typeset']} typeset by MathJax")
        if record["mathErrors"]:
            problems.append(f"MathJax could not typeset: {record['mathErrors']}")
        raw = RAW_MATH.search(record["prose"])
        if raw:
            where = record["prose"][max(0, raw.start() - 40):raw.end() + 40].replace("\n", " ")
            problems.append(f"raw TeX in the text: ...{where}...")
        return problems
    expect_none(visits, bad, "math")
    assert sum(r["typeset"] for p, r in visits.items() if p.startswith("zh/chapters/")) > 20
    assert visits["en/api/optim.html"]["typeset"] > 0, "the optimizers' .. math:: blocks"


def test_chinese_pages_are_in_chinese_and_in_the_shipped_font(visits):
    def bad(path, record):
        problems = []
        if record["lang"] != "zh-CN":
            problems.append(f'<html lang="{record["lang"]}">, not zh-CN')
        if len(CJK.findall(record["prose"])) < 100:
            problems.append(f"only {len(CJK.findall(record['prose']))} Chinese characters")
        if "loaded" not in record["fonts"]:
            problems.append(f"the Noto Sans SC subset did not load (font faces: {record['fonts']})")
        return problems
    chinese = {p: r for p, r in visits.items() if p in chapters("zh") + ["zh/index.html", "zh/glossary.html"]}
    assert len(chinese) == len(chapters("zh")) + 2
    expect_none(chinese, bad, "Chinese pages")
    assert visits["en/chapters/01_background.html"]["lang"] == "en"
    assert visits["zh/api/functional.html"]["lang"] == "en", "the API reference is English in both editions"


def test_links_resolve(visits, site, server):
    """Every link to the site itself leads to a file that exists, and to an id on that page."""
    def bad(path, record):
        problems = []
        for link in record["links"]:
            if not link.startswith(server):
                continue
            target, _, anchor = urllib.parse.unquote(link[len(server):]).partition("#")
            target = target.split("?")[0] or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (site / target).is_file():
                problems.append(f"{link}: no such file")
            elif anchor and target in visits and anchor not in visits[target]["ids"]:
                problems.append(f"{link}: no id {anchor!r} on {target}")
        return problems
    expect_none(visits, bad, "broken links")


def test_chapters_link_to_each_other_and_to_their_other_edition(visits):
    for lang in LANGS:
        pages = chapters(lang)
        index = visits[f"{lang}/index.html"]["links"]
        for i, page in enumerate(pages):
            assert any(link.endswith("/" + page) for link in index), f"{lang}/index.html does not link to {page}"
            record = visits[page]
            if i + 1 < len(pages):
                assert record["next"] and record["next"].endswith("/" + pages[i + 1]), f"{page}: next is {record['next']}"
            other = page.replace(f"{lang}/", f"{'en' if lang == 'zh' else 'zh'}/", 1)
            expected = other if other in visits else f"{'en' if lang == 'zh' else 'zh'}/index.html"
            assert record["langSwitch"] and record["langSwitch"].endswith("/" + expected), \
                f"{page}: the language switch leads to {record['langSwitch']}"
    expect_none({p: r for p, r in visits.items() if p != "index.html"},
                lambda p, r: [] if r["langSwitch"] else ["no language switch"], "language switch")


def test_no_serious_accessibility_violation(visits):
    def bad(path, record):
        return [f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(str(n['target']) for n in v['nodes'][:3])}"
                for v in record["axe"]]
    expect_none(visits, bad, "serious or critical accessibility violations (axe-core)")


@pytest.mark.parametrize("path", ["zh/chapters/03_self_attention.html", "en/api/functional.html"])
def test_no_serious_accessibility_violation_in_dark_mode(path, server, browser):
    """The site is light or dark as the reader's system says; the checks above see it light.
    Dark, on a chapter (prose, math, code, tables, figures) and an API page: every page again
    would double the test's time, and the pages share their theme."""
    from axe_playwright_python.sync_playwright import Axe
    page = browser.new_page()
    try:
        page.emulate_media(color_scheme="dark")
        page.goto(server + path, wait_until="load")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        violations = [v for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    finally:
        page.close()
    assert not violations, [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes'][0]['target']}" for v in violations]


@pytest.mark.parametrize("lang, query, expected", [
    ("en", "layer_norm", "api/functional.html#tinyllm.functional.layer_norm"),
    ("zh", "layer_norm", "api/functional.html#tinyllm.functional.layer_norm"),
    ("zh", "注意力", "chapters/03_self_attention.html"),
])
def test_search_finds(lang, query, expected, server, browser):
    page = browser.new_page()
    try:
        page.goto(f"{server}{lang}/search.html?q={urllib.parse.quote(query)}", wait_until="load")
        page.wait_for_selector("#search-results ul.search li a", timeout=30_000)
        found = page.eval_on_selector_all("#search-results ul.search li a", "links => links.map(a => a.href)")
    finally:
        page.close()
    assert any(link.endswith(f"/{lang}/{expected}") for link in found), found[:10]
