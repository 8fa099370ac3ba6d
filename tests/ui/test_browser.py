"""The real thing: `geodiag dashboard` (Streamlit) on 127.0.0.1, driven by Debian's Chromium through Playwright.

Checks that a fresh server's first browser session only ever sees the app's own navigation, opens every page
and waits for a drawn plotly chart, launches a short tiny-model training from the Launch page, watches its
progress appear, cancels it, and exports a figure to PDF/SVG. Prints the time to first paint of each page.
GEODIAG_BROWSER_STORE=path runs it on another store (e.g. the shipped sample runs).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import stop_processes_under

from geodiag.store import Reader
from geodiag.ui import PAGES as PAGE_SPECS

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=(
    "LOUD SKIP: Debian chromium is missing at /usr/bin/chromium; `make test` installs it with apt-get "
    "(apt-get install chromium chromium-driver). The browser test did not run."))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SHOWS = {"runs": "runs", "gid": "gid", "intrinsic": "id", "atlas": "gid", "launch": None}  # the rest: manifold
PAGES = {p.url: SHOWS.get(p.url or "runs", "manifold") for p in PAGE_SPECS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(store: Path, cwd: Path) -> tuple[subprocess.Popen, str]:
    """`geodiag dashboard` as `make app` starts it, on a free port; returns the process and its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "geodiag", "dashboard", "--store", str(store), "--port", str(port)],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("the dashboard did not start within 60 s")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(dashboard_store, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    source = os.environ.get("GEODIAG_BROWSER_STORE") or dashboard_store["store"]
    store = tmp / "s.duckdb"
    shutil.copyfile(source, store)
    proc, url = start_dashboard(store, tmp)
    yield {"url": url, "store": store, "tmp": tmp}
    stop(proc)
    stop_processes_under(tmp)  # what the dashboard launched runs in its own session: stopped here whatever happened


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def run_ids(store) -> dict:
    runs = Reader(store).runs()
    out = {}
    for method, kind in (("manifold", "train"), ("gid", "analysis"), ("id", "analysis")):
        match = runs[(runs["method"] == method) & (runs["kind"] == kind)]
        if not match.empty:
            out[method] = match["run_id"].iloc[0]
    return out


def test_a_fresh_servers_first_session_sees_only_the_apps_navigation(dashboard_store, browser, tmp_path):
    """Streamlit routes a fresh server's first session through its legacy pages/ handling unless told not to
    (geodiag.cli.dashboard): every navigation message that session receives must list the app's own pages."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    proc, url = start_dashboard(Path(dashboard_store["store"]), tmp_path)
    try:
        frames: list[bytes] = []
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
        page.goto(f"{url}/gates")  # a page first: the legacy routing would run pages/gates.py on its own
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=90_000)
        navigations = []
        for frame in frames:
            msg = ForwardMsg()
            if isinstance(frame, bytes) and msg.ParseFromString(frame) and msg.WhichOneof("type") == "navigation":
                navigations.append([p.page_name for p in msg.navigation.app_pages])
        assert navigations and all(n == [p.title for p in PAGE_SPECS] for n in navigations), navigations
        links = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()  # icon ligature, then title
        assert [t.strip().splitlines()[-1] for t in links] == [p.title for p in PAGE_SPECS]
    finally:
        stop(proc)


def test_every_page_draws_and_reports_first_paint(server, browser, capsys):
    """Each page loaded on its own (a full browser reload, Streamlit's frontend booting every time), and, first
    of all on the fresh server, the Launch page as a user reaches it: through the sidebar's link."""
    ids = run_ids(server["store"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server["url"])
    page.wait_for_selector("[data-testid='stDataFrame']", timeout=90_000)
    t0 = time.monotonic()
    page.locator("[data-testid='stSidebarNav'] a").filter(has_text="Launch").click()
    page.wait_for_selector("button:has-text('Start training')", timeout=90_000)
    times = {"launch via its link": time.monotonic() - t0}
    for path, method in PAGES.items():
        query = f"?run={ids[method]}" if method in ids else ""
        t0 = time.monotonic()
        page.goto(f"{server['url']}/{path}{query}")
        target = ".js-plotly-plot .main-svg" if method not in (None, "runs") else (
            "[data-testid='stDataFrame']" if method == "runs" else "button:has-text('Start training')")
        page.wait_for_selector(target, timeout=90_000)
        times[path or "runs"] = time.monotonic() - t0
        assert page.locator("[data-testid='stException']").count() == 0, path
        if method not in (None, "runs"):
            assert page.locator(".js-plotly-plot .main-svg").count() >= 1
    with capsys.disabled():
        print("\nfirst paint (s): " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    report = os.environ.get("GEODIAG_PAINT_REPORT")
    if report:
        Path(report).write_text(json.dumps(times, indent=2))


def test_launch_progress_and_cancel_from_the_browser(server, browser):
    data = server["tmp"] / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"{a}+{a}=", "response": str(2 * a)}) for a in range(8)))
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{server['url']}/launch")
    page.wait_for_selector("button:has-text('Start training')", timeout=90_000)
    form = page.locator("[data-testid='stMain']")  # the Train form, not the sidebar
    for label, value in (("model", "tiny"), ("dataset", str(data))):
        box = form.get_by_role("textbox", name=label, exact=True)
        box.fill(value)
        box.press("Enter")
    for label, value in (("steps", "100000"), ("batch size", "4"), ("grad accum", "1"), ("eval size", "0"),
                         ("record every", "2")):
        box = form.get_by_role("spinbutton", name=label, exact=True)
        box.fill(value)
        box.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"step \d+ / 100000")).first.wait_for(timeout=120_000)
    runs = Reader(server["store"]).runs()
    live = runs[(runs["status"] == "running") & (runs["model"] == "tiny") & (runs["method"] == "manifold")]
    assert len(live) == 1
    rid = live["run_id"].iloc[0]
    page.get_by_role("button", name="Cancel").first.click()
    deadline = time.monotonic() + 60
    while Reader(server["store"]).run(rid)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert Reader(server["store"]).run(rid)["status"] == "cancelled"
    assert len(Reader(server["store"]).metric(rid, "loss/lm")) >= 1
    page.get_by_text("No run is running in this store.").wait_for(timeout=30_000)


def test_export_a_figure_from_the_browser(server, browser):
    ids = run_ids(server["store"])
    out = server["tmp"] / "exports"
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{server['url']}/gates?run={ids['manifold']}")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=90_000)
    page.get_by_text("Export gates for a paper").click()
    folder = page.get_by_role("textbox", name="Save into folder")
    folder.fill(str(out))
    folder.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Save PDF, SVG, PNG and CSV").click()
    page.get_by_text(re.compile("^Wrote ")).wait_for(timeout=120_000)
    stem = f"gates-{ids['manifold']}"
    pdf, svg = out / f"{stem}.pdf", out / f"{stem}.svg"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    import xml.etree.ElementTree as ET

    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert (out / f"{stem}.csv").stat().st_size > 0 and (out / f"{stem}.png").stat().st_size > 0


def fill(form, role: str, label: str, value: str) -> None:
    box = form.get_by_role(role, name=label, exact=True)
    box.fill(value)
    box.press("Enter")


def test_a_sweep_from_the_form_runs_to_its_results_and_appendix(server, browser):
    """A 2-method x 2-seed sweep on the tiny model, as a user starts it: Sweep mode, Plan, Start; it shows as one
    item while it runs and ends finished in the store; the Runs page lists it and opens its Results, which hand
    over the appendix as a zip."""
    import zipfile

    data = server["tmp"] / "sweep.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"{a}+{a}=", "response": str(2 * a)}) for a in range(40)))
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{server['url']}/launch")
    page.get_by_text("Sweep", exact=True).first.click(timeout=90_000)
    page.wait_for_selector("button:has-text('Plan the sweep')", timeout=90_000)
    form = page.locator("[data-testid='stMain']")
    for chip in ("ralora", "manifold"):  # the form's default methods are lora, ralora and manifold: keep lora, add dora
        form.get_by_role("button", name=f"Remove {chip}").click()
    form.get_by_role("combobox", name="methods").click()  # pick from the list: typing and Enter can race its filter
    page.get_by_role("option", name="dora", exact=True).click()
    page.keyboard.press("Escape")
    form.get_by_text("Advanced options").click()
    for role, label, value in (("textbox", "model", "tiny"), ("textbox", "dataset", str(data)),
                               ("textbox", "seeds", "0,1"), ("spinbutton", "steps", "4"),
                               ("spinbutton", "batch size", "4"), ("spinbutton", "grad accum", "1"),
                               ("spinbutton", "eval size", "4"), ("spinbutton", "dev size", "0"),
                               ("spinbutton", "record every", "2"), ("spinbutton", "workers", "2")):
        fill(form, role, label, value)
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Plan the sweep").click()
    page.get_by_role("button", name="Start the sweep").click(timeout=180_000)
    page.get_by_text(re.compile(r"queued · \d running · \d finished")).first.wait_for(timeout=120_000)

    def record():
        sweeps = Reader(server["store"]).sweeps()
        return None if sweeps.empty else sweeps.iloc[0]

    deadline = time.monotonic() + 600
    while (record() is None or record()["status"] == "running") and time.monotonic() < deadline:
        time.sleep(1)
    sweep = record()
    assert sweep["status"] == "finished", sweep["message"]
    runs = Reader(server["store"]).runs()
    cells = runs[runs["sweep"] == sweep["run_id"]]
    assert sorted(zip(cells["method"], cells["seed"], strict=True)) == [("dora", 0), ("dora", 1), ("lora", 0),
                                                                          ("lora", 1)]
    assert set(cells["status"]) == {"finished"} and set(cells["model"]) == {"tiny"}

    page.goto(f"{server['url']}/")
    page.get_by_role("heading", name="Sweeps").wait_for(timeout=90_000)
    page.get_by_role("button", name="Open its Results").click()
    page.get_by_text("Appendix for a paper").click(timeout=90_000)
    page.get_by_role("button", name="Prepare the appendix").click(timeout=90_000)
    with page.expect_download(timeout=300_000) as download:
        page.get_by_role("button", name="Download the appendix (zip)").click(timeout=300_000)
    path = server["tmp"] / "appendix.zip"
    download.value.save_as(path)
    names = zipfile.ZipFile(path).namelist()
    assert {"results.tex", "results.csv", "README.md", "appendix.pdf"} <= {n.rsplit("/", 1)[-1] for n in names}
    index = zipfile.ZipFile(path).read(next(n for n in names if n.endswith("README.md"))).decode()
    assert sweep["run_id"] in index  # the appendix of this sweep
