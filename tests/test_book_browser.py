"""The built course site in a real browser: headless Chromium driven by Playwright.

The book is built once per test run (fixture ``book_build`` of ``tests/test_book.py``) and
served from a local ``http.server`` thread. One crawl visits every page and records what the
tests below check: HTTP status, console errors, images that did not render, internal links,
the launch buttons of notebook pages, and a search. Screenshots of the landing page and of a
notebook page go to ``test-artifacts/``.

Chromium is Debian's package (``apt-get install chromium``, done by ``make browser``, a
prerequisite of ``make test``); Playwright's own browser download is not used. If Chromium is
missing, the test set-up installs it when it can (root with apt-get). Only when it is absent
and cannot be installed are these tests skipped, saying why; on CI (``CI`` set) they fail
instead.

Requests to other hosts (the MathJax script from a CDN, for instance) are answered locally
with an empty body and listed, so that the checks do not depend on network access.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from filelock import FileLock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_book  # noqa: E402
from test_book import REPO, load, shared_tmp_dir, toc_files  # noqa: E402

# The session fixture of tests/test_book.py that builds the book, made a fixture of this module too (`site` uses it).
book_build = test_book.book_build

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Console errors of the site's own dependencies, not of the course, that are harmless. Each entry:
# a regular expression matching the whole message, and why it is accepted.
KNOWN_UPSTREAM_ERRORS = {
    r"Identifier 'THEBE_JS_URL' has already been declared": (
        "Sphinx 7.4 writes the inline configuration script of sphinx-thebe (loaded by Jupyter "
        "Book 1.x) twice into every page; the second `const` declaration fails, the first one "
        "stands, and Thebe is not used by the course"
    ),
}
SEARCH_TERM = "interferon"
NOTEBOOK_SCREENSHOT = "notebooks/00_intro.html"
PAGE_TIMEOUT_MS = 30_000


def unavailable(reason: str) -> None:
    """Skip, or fail on CI, where the browser tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests must run)")
    pytest.skip(reason)


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    return None


def install_chromium() -> str:
    """Install Debian's chromium with apt-get when running as root; returns why not otherwise."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install it (run `make browser` with sudo rights)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {(result.stdout + result.stderr)[-500:]}"
    return ""


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> str:
    """Path of a Chromium executable, installed first if missing and possible."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install playwright; it is in the `test` extra)")
    path = find_chromium()
    if path is None:
        lock = shared_tmp_dir(tmp_path_factory, "chromium-install")
        with FileLock(f"{lock}.lock"):
            path = find_chromium()
            why = "" if path else install_chromium()
            path = path or find_chromium()
        if path is None:
            unavailable(f"Chromium is not installed and could not be installed: {why or 'not found after install'}")
    return path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def site_pages(html: Path) -> list[str]:
    """Every HTML page of the site (templates under _static excluded), relative to its root."""
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if p.relative_to(html).parts[0] not in ("_static", "_sources", "_images")
    )


def refresh_target(page: Path) -> str | None:
    """Target of a ``<meta http-equiv="Refresh">`` redirect page (the site's index.html), if any."""
    m = re.search(r'http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', page.read_text(errors="replace"), re.I)
    return m.group(1) if m else None


def url_status(url: str) -> int:
    for method in ("HEAD", "GET"):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            if method == "GET":
                return err.code
        except OSError:
            if method == "GET":
                return -1
    return -1


# Waits until every <img> has finished loading (lazy ones forced to load), then reports them.
IMAGES_JS = """
async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); })));
  return imgs.map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth, alt: i.alt}));
}
"""

LINKS_JS = """
() => [
  ...Array.from(document.querySelectorAll('a[href]'), e => e.href),
  ...Array.from(document.querySelectorAll('link[href]'), e => e.href),
  ...Array.from(document.querySelectorAll('script[src]'), e => e.src),
  ...Array.from(document.querySelectorAll('img[src]'), e => e.src),
]
"""

LAUNCH_JS = """
() => Array.from(document.querySelectorAll('.dropdown-launch-buttons a[href]'),
                 e => ({href: e.getAttribute('href'), text: e.textContent.trim()}))
"""


def crawl(html: Path, chromium_path: str) -> dict:
    """Visit every page of the site in Chromium and record what the tests check."""
    from playwright.sync_api import sync_playwright

    server, base = serve(html)
    pages = site_pages(html)
    report: dict = {"base": base, "pages": {}, "external": [], "links": {}, "search": {}, "screenshots": []}
    events: dict[str, list[str]] = {}

    def local(url: str) -> bool:
        return url.startswith(base)

    def route(route_, request):
        if local(request.url) or request.url.startswith(("data:", "blob:", "about:")):
            route_.continue_()
            return
        report["external"].append(request.url)
        kind = "application/javascript" if request.resource_type == "script" else "text/plain"
        route_.fulfill(status=200, body="", content_type=kind)

    t0 = time.perf_counter()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and events["console"].append(f"{m.text} @ {m.location}"))
            page.on("pageerror", lambda e: events["pageerror"].append(str(e)))
            page.on("requestfailed", lambda r: local(r.url) and events["failed"].append(f"{r.url}: {r.failure}"))
            page.on(
                "response",
                lambda r: local(r.url) and r.status >= 400 and events["failed"].append(f"{r.url}: HTTP {r.status}"),
            )
            all_links: set[str] = set()
            for rel in pages:
                events.update(console=[], pageerror=[], failed=[])
                response = page.goto(base + rel, wait_until="load")
                redirect = refresh_target(html / rel)
                if redirect:  # e.g. index.html -> book/intro.html: wait for the landing page
                    page.wait_for_url(base + posixpath.normpath(posixpath.join(posixpath.dirname(rel), redirect)))
                    page.wait_for_load_state("load")
                images = page.evaluate(IMAGES_JS)
                links = [u for u in page.evaluate(LINKS_JS) if local(u)]
                all_links.update(links)
                report["pages"][rel] = {
                    "status": response.status if response else None,
                    "title": page.title(),
                    "console_errors": list(events["console"]),
                    "page_errors": list(events["pageerror"]),
                    "failed_requests": list(events["failed"]),
                    "images": len(images),
                    "broken_images": [i for i in images if not i["width"]],
                    "links": sorted({u[len(base) :] for u in links}),
                    "launch": page.evaluate(LAUNCH_JS),
                    "redirect": redirect,
                }
                if rel in ("index.html", NOTEBOOK_SCREENSHOT):
                    ARTIFACTS.mkdir(exist_ok=True)
                    shot = ARTIFACTS / f"book-{Path(rel).stem}.png"
                    if rel == NOTEBOOK_SCREENSHOT:
                        # Open the launch menu, so that the screenshot shows the buttons.
                        page.click(".dropdown-launch-buttons button")
                        page.wait_for_selector(".dropdown-launch-buttons a[href*='mybinder.org']", state="visible")
                        report["pages"][rel]["launch_menu_opens"] = True
                    page.screenshot(path=str(shot))
                    report["screenshots"].append(str(shot))

            # Search: the page fills #search-results from searchindex.js.
            events.update(console=[], pageerror=[], failed=[])
            page.goto(f"{base}search.html?q={SEARCH_TERM}", wait_until="load")
            page.wait_for_function(
                "() => document.querySelectorAll('#search-results ul.search li').length > 0"
                " || /finished|did not match/i.test("
                "(document.querySelector('#search-results') || {}).textContent || '')",
                timeout=PAGE_TIMEOUT_MS,
            )
            report["search"] = {
                "results": page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.href)"),
                "console_errors": list(events["console"]) + list(events["pageerror"]),
            }
            browser.close()
        for url in sorted(all_links):
            target = url.split("#", 1)[0]
            report["links"][url[len(base) :]] = url_status(target)
    finally:
        server.shutdown()
        server.server_close()
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


@pytest.fixture(scope="session")
def site(book_build, chromium, tmp_path_factory) -> dict:
    """The crawl of the built site, done once per test run and shared by the xdist workers."""
    if book_build.returncode != 0 or not (book_build.html / "index.html").exists():
        pytest.fail(f"the book did not build (see test_book_builds_without_warnings):\n{book_build.log}")
    folder = shared_tmp_dir(tmp_path_factory, "book-crawl")
    record = folder / "crawl.json"
    with FileLock(f"{folder}.lock"):
        if not record.exists():
            folder.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(crawl(book_build.html, chromium), indent=1))
        report = json.loads(record.read_text())
    report["html"] = str(book_build.html)
    return report


def notebook_entries() -> list[str]:
    return [e for e in toc_files(load("_toc.yml")) if e.startswith("notebooks/")]


def problems(site: dict, key: str) -> dict[str, list]:
    return {rel: page[key] for rel, page in site["pages"].items() if page[key]}


def test_every_page_loads(site):
    pages = site["pages"]
    expected = {Path(e).with_suffix(".html").as_posix() for e in toc_files(load("_toc.yml"))}
    expected |= {"index.html", "search.html", "genindex.html"}
    assert expected <= set(pages), f"pages not visited: {sorted(expected - set(pages))}"
    bad = {rel: page["status"] for rel, page in pages.items() if page["status"] != 200}
    assert not bad, f"pages not served with HTTP 200: {bad}"
    untitled = [rel for rel, page in pages.items() if not page["title"].strip()]
    assert not untitled, f"pages without a title: {untitled}"


def unexpected(messages: list[str]) -> list[str]:
    """The messages that are not known, accepted upstream errors."""
    return [m for m in messages if not any(re.fullmatch(p, m) for p in KNOWN_UPSTREAM_ERRORS)]


def test_no_console_errors(site):
    errors = {rel: unexpected(page["console_errors"] + page["page_errors"]) for rel, page in site["pages"].items()}
    errors = {rel: e for rel, e in errors.items() if e}
    assert not errors, f"browser console errors: {json.dumps(errors, indent=1)}"


def test_local_resources_load(site):
    failed = problems(site, "failed_requests")
    assert not failed, f"local requests that failed: {json.dumps(failed, indent=1)}"


def test_images_render(site):
    broken = problems(site, "broken_images")
    assert not broken, f"images with naturalWidth 0: {json.dumps(broken, indent=1)}"
    # Every figure committed in a notebook's outputs is an image of its page.
    for entry in notebook_entries():
        figures = image_outputs(REPO / f"{entry}.ipynb")
        shown = site["pages"][f"{entry}.html"]["images"]
        assert shown >= figures, f"{entry}: {figures} figures in the notebook, {shown} images on its page"


def image_outputs(notebook: Path) -> int:
    """Number of image outputs (PNG, JPEG, SVG) committed in a notebook."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return sum(
        any(k.startswith("image/") for k in out.get("data", {})) for cell in cells for out in cell.get("outputs", [])
    )


def anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8", errors="replace")
    return {unescape(m) for m in re.findall(r'\b(?:id|name)="([^"]+)"', text)}


def test_internal_links_resolve(site):
    html = Path(site["html"])
    bad = {link: status for link, status in site["links"].items() if status != 200}
    assert not bad, f"internal links that do not resolve: {bad}"
    missing_anchor = []
    for link in site["links"]:
        path, _, fragment = link.partition("#")
        path = unquote(urlsplit(path).path) or "index.html"
        if path.endswith("/"):
            path += "index.html"
        if fragment and path.endswith(".html") and unquote(fragment) not in anchors(html / path):
            missing_anchor.append(link)
    assert not missing_anchor, f"links to anchors that do not exist: {missing_anchor}"


def test_launch_buttons_open_the_right_notebook(site):
    config = load("_config.yml")
    repo_path = urlsplit(config["repository"]["url"]).path.strip("/")
    branch = config["repository"]["branch"]
    notebooks = notebook_entries()
    assert notebooks, "no notebook in _toc.yml"
    for entry in notebooks:
        page = site["pages"][f"{entry}.html"]
        hrefs = [b["href"] for b in page["launch"]]
        binder = [h for h in hrefs if h.startswith(config["launch_buttons"]["binderhub_url"])]
        colab = [h for h in hrefs if h.startswith(config["launch_buttons"]["colab_url"])]
        assert len(binder) == 1 and len(colab) == 1, f"{entry}: launch buttons {hrefs}"
        assert f"/v2/gh/{repo_path}/{branch}?" in binder[0], binder[0]
        assert binder[0].endswith(f"/{entry}.ipynb"), binder[0]
        assert colab[0].endswith(f"/github/{repo_path}/blob/{branch}/{entry}.ipynb"), colab[0]
    assert site["pages"][NOTEBOOK_SCREENSHOT].get("launch_menu_opens"), "the launch menu did not open"
    # Chapters are not notebooks: no launch buttons there.
    chapters = [e for e in toc_files(load("_toc.yml")) if e.startswith("book/")]
    with_buttons = [e for e in chapters if site["pages"][f"{e}.html"]["launch"]]
    assert not with_buttons, f"launch buttons on pages that are not notebooks: {with_buttons}"


def test_search_finds_a_term(site):
    search = site["search"]
    assert search["results"], f"search.html?q={SEARCH_TERM} found nothing"
    assert not unexpected(search["console_errors"]), search["console_errors"]
    base = site["base"]
    for url in search["results"]:
        rel = unquote(urlsplit(url[len(base) :]).path)
        assert (Path(site["html"]) / rel).exists(), f"search result {url} is not a page of the site"


def test_screenshots_saved(site):
    shots = [Path(p) for p in site["screenshots"]]
    assert {p.name for p in shots} == {"book-index.png", f"book-{Path(NOTEBOOK_SCREENSHOT).stem}.png"}
    for shot in shots:
        assert shot.exists() and shot.stat().st_size > 10_000, shot
