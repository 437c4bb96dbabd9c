"""The browser tier: JupyterLab as `make lab` starts it, driven in headless Chromium as a person
would (keyboard and mouse in the page), against a real cluster.

The lab runs on a copy of notebooks/ (the repo's files are never touched), with its own cluster
state file, JupyterLab settings and workspaces. Every test fails on a widget that does not
display ("Error displaying widget", a "Loading widget..." that never resolves), a JavaScript
error in the page, or a traceback in any output (a kernel error). Screenshots go to
outputs/ui/, which the report's index.html links. Chromium is Debian's /usr/bin/chromium (.ci/run
installs it); Playwright's own browser download is never used.

`pytest -m 'not browser'` skips this tier (`-m 'not broker'` too: it needs JVMs).
"""

import base64
import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import PIL.Image
import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from labkit.cluster import wait_until
from labkit.runner.report import write_index

ROOT = Path(__file__).resolve().parent.parent
UI = ROOT / "outputs" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
URL = re.compile(r"http://127\.0\.0\.1:\d+/lab\?token=[\w-]+")
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
# IPython's tracebacks: "Traceback (most recent call last)", or "Cell In[3], line 1" alone
# for a syntax error. JupyterLab renders error outputs with the stderr mime type.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Cell In\[\d+\], line \d+")
# A kernel's "error" message (a cell's exception, or a widget callback's that an Output widget
# showed), seen on the page's kernel websocket whether or not it was rendered yet.
KERNEL_ERROR = re.compile(rb'"msg_type":\s*"error"')
ERROR_NAME = re.compile(rb'"ename":\s*("[^"]*")')
ERROR_VALUE = re.compile(rb'"evalue":\s*("(?:[^"\\]|\\.)*")')
ANSI = re.compile(r"\\u001b\[[0-9;]*m")  # colour codes, as JSON-escaped in a kernel message
RUN_ALL_MS = 300_000  # Run All Cells of a notebook in the smoke profile, on a slow shared machine
ACTION_MS = 120_000  # one action of a control panel, and its redraw
VIEWPORT = {"width": 1400, "height": 1800}  # tall enough for a whole panel and its plots


# -- processes ---------------------------------------------------------------------------------

def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


class LabProcess:
    """`python -m labkit lab` (or `make lab`) run as a terminal would: its own process group
    (the terminal's foreground job), output collected, Ctrl-C as SIGINT to the group."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_url(self, timeout: float = 300) -> str:
        def printed():
            if self.proc.poll() is not None:
                raise AssertionError(f"the lab exited with status {self.proc.returncode} "
                                     f"before printing its URL:\n{self.output()[-4000:]}")
            found = URL.search(self.output())
            return found and found.group(0)

        self.url = wait_until(printed, timeout, "the lab to print its URL", 0.5,
                              passes=lambda exc: False)
        return self.url

    def processes(self) -> set[int]:
        """This process and everything under it: JupyterLab, its kernels, the brokers."""
        return {self.proc.pid} | _descendants(self.proc.pid)

    def interrupt(self):
        """What Ctrl-C in the terminal does: SIGINT to the foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def stop(self) -> list[str]:
        """Ctrl-C and wait; then kill what is left (a failed test must leave nothing running).

        Returns:
            The command lines of the processes that had to be killed.
        """
        seen = self.processes()
        if self.proc.poll() is None:
            self.interrupt()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(60)
        killed = []
        for pid in sorted(seen | self.processes()):
            if _alive(pid):
                killed.append(_cmdline(pid)[:200])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(10)
        return killed


def lab_env(tmp: Path) -> dict[str, str]:
    """The environment of a lab under ``tmp``: its own cluster state file, JupyterLab settings,
    workspaces and runtime files, so it shares nothing with the developer's own lab."""
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # JupyterLab's first-visit "get notified about official Jupyter news?" toast would sit
    # over the panels in the screenshots.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    return dict(os.environ, LABKIT_STATE_FILE=str(tmp / "cluster.json"),
                JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
                JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
                JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))


def copy_notebooks(tmp: Path) -> Path:
    return Path(shutil.copytree(ROOT / "notebooks", tmp / "notebooks"))


# -- the page ----------------------------------------------------------------------------------

def screenshot(target: Page | Locator, name: str) -> Path:
    """Save the page, or the area of one element, as outputs/ui/<name>.png."""
    path = UI / f"{name}.png"
    if isinstance(target, Page):
        target.screenshot(path=path)
    else:
        target.evaluate("e => e.scrollIntoView({block: 'start'})")  # inside the notebook's scroller
        # Plots scrolled into view are decoded lazily, and a decoded image is painted a frame
        # or two later: decode them, then let two frames pass before the shot (a shot taken
        # sooner showed a plot's area blank, or only its first rows).
        target.evaluate("e => Promise.all([...e.querySelectorAll('img')]"
                        ".map(img => img.decode().catch(() => null)))"
                        ".then(() => new Promise(done => requestAnimationFrame("
                        "() => requestAnimationFrame(done))))")
        target.screenshot(path=path, animations="disabled")
    return path


class Notebook:
    """One notebook opened in its own Chromium page, run with its control panel, and whatever
    went wrong in that page."""

    def __init__(self, page: Page, name: str, panel_call: str):
        self.page = page
        self.problems: list[str] = []
        page.on("console", lambda msg: msg.type == "error"
                and self.problems.append(f"console error: {msg.text}"))
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("websocket", lambda ws: ws.on("framereceived", self._kernel_message))
        self.kernel_errors: list[str] = []
        self.notebook = page.locator(".jp-NotebookPanel")
        cell = self.notebook.locator(".jp-CodeCell", has_text=panel_call)
        self.panel = cell.locator(".jp-OutputArea-output .jupyter-widgets.widget-vbox").first
        self.output = self.panel.locator(".widget-output")
        self.rows = self.output.locator("table.dataframe tbody tr")
        self.plot = self.output.locator("img")
        self.name = name

    def _kernel_message(self, payload: str | bytes):
        data = payload.encode() if isinstance(payload, str) else payload
        if KERNEL_ERROR.search(data):
            name, value = ERROR_NAME.search(data), ERROR_VALUE.search(data)
            # The kernel's traceback too (ANSI colours dropped): where the error came from.
            at = data.find(b'"traceback"')
            trace = ANSI.sub("", data[at:at + 4000].decode(errors="replace")) if at >= 0 else ""
            self.kernel_errors.append(
                (f"kernel error: {json.loads(name[1])}: {json.loads(value[1])}" if name and value
                 else f"kernel error: {data[:300]!r}") + (f"\n{trace}" if trace else ""))

    def tracebacks(self) -> Locator:
        return self.page.locator(STDERR).filter(has_text=TRACEBACK)

    def open_and_run_all(self, lab_url: str):
        """Open the notebook from the file list, set ``interactive = True`` and the smoke
        profile in its parameters cell, Run > Run All Cells, and wait for the panel."""
        page = self.page
        page.goto(lab_url + "&reset")  # a fresh workspace, as on a first visit
        page.locator(".jp-DirListing-item", has_text=self.name).dblclick()
        params = self.notebook.locator(".jp-CodeCell", has=page.locator(
            ".cm-line", has_text=re.compile(r"^interactive: bool = ")))
        self.retype(params, "interactive", "False", "True")
        self.retype(params, "profile", '"standard"', "smoke")
        expect(params.locator(".cm-content")).to_contain_text('profile: str = "smoke"')
        expect(params.locator(".cm-content")).to_contain_text("interactive: bool = True")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        expect(self.panel.or_(self.tracebacks()).first).to_be_visible(timeout=RUN_ALL_MS)
        assert self.tracebacks().count() == 0, self.tracebacks().first.inner_text()
        # Every cell done (and matplotlib's end-of-cell flush with it) before a panel is used,
        # as a person would wait. (A panel drawn while the last cell was still finishing came
        # out blank while panel figures were pyplot's: see plots.unregistered_figures.)
        expect(page.locator(".jp-StatusBar-Widget")).to_contain_text("| Idle",
                                                                     timeout=RUN_ALL_MS)

    def retype(self, cell: Locator, name: str, old: str, new: str):
        """Double-click the word ``old`` on the line ``name: ...`` of the cell, type ``new``."""
        line = cell.locator(".cm-line", has_text=re.compile(rf"^{name}: "))
        line.get_by_text(old, exact=True).dblclick()
        self.page.keyboard.type(new)

    def control(self, label: str, kind: str) -> Locator:
        """The ``kind`` element (select, input) of the panel's control labelled ``label``."""
        labelled = self.page.locator("label.widget-label",
                                     has_text=re.compile(rf"^{re.escape(label)}$"))
        return self.panel.locator(".widget-inline-hbox", has=labelled).locator(kind)

    def choose(self, label: str, option: str):
        self.control(label, "select").select_option(option)

    def type_into(self, label: str, text: str):
        """Click the text box, select what it holds, type ``text`` and press Enter."""
        box = self.control(label, "input")
        box.click()
        box.press("Control+A")
        box.press_sequentially(text)
        box.press("Enter")
        expect(box).to_have_value(text)

    def press(self, button: str):
        self.panel.locator("button", has_text=re.compile(rf"^{re.escape(button)}$")).click()

    def press_and_wait_for_redraw(self, button: str):
        """Press ``button`` and wait until the panel's plot was replaced by a new one."""
        old = self.plot.element_handle(timeout=ACTION_MS)
        self.press(button)
        self.page.wait_for_function(
            "([old, out]) => !old.isConnected && out.querySelector('img')?.complete === true",
            arg=[old, self.output.element_handle()], timeout=ACTION_MS)

    def press_and_wait_for_refusal(self, button: str) -> list[str]:
        """Press ``button`` with a bad value in the panel; wait until an error line shows, or
        the plot was replaced (a redraw: the run was taken); return the error lines."""
        output, image = self.output.element_handle(), self.plot.element_handle()
        self.press(button)
        self.page.wait_for_function(
            "([out, img]) => /^error: /m.test(out.innerText) || !img.isConnected",
            arg=[output, image], timeout=ACTION_MS)
        return self.messages()

    def snapshot(self, name: str):
        """Screenshot the panel, once a kernel error it received shows as a traceback
        (JupyterLab renders one a moment after its message arrives)."""
        if self.kernel_errors:
            with contextlib.suppress(AssertionError):
                expect(self.tracebacks().first).to_be_visible(timeout=30_000)
        screenshot(self.panel, name)

    def messages(self) -> list[str]:
        """The panel's "error: ..." lines."""
        return re.findall(r"^error: .*$", self.output.inner_text(), re.M)

    def assignment(self) -> dict[str, int]:
        """The consumer panel's table: member -> partitions owned."""
        return dict(self.rows.evaluate_all(
            "rows => rows.map(r => [r.querySelector('th').innerText.trim(),"
            " Number(r.querySelector('td').innerText)])"))

    def assert_plots_drawn(self):
        """Every plot in the panel's output shows something: more than a background's few
        colours (a blank one was the figure's white, and transparency around it)."""
        for number, src in enumerate(self.plot.evaluate_all("imgs => imgs.map(i => i.src)")):
            image = PIL.Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
            colours = image.getcolors(maxcolors=4)  # None: more than 4 colours
            assert colours is None, f"plot {number + 1} of the panel is blank: {colours}"

    def assert_healthy(self):
        """No widget left unrendered or broken, no kernel error, nothing wrong in the console."""
        expect(self.page.get_by_text("Loading widget...")).to_have_count(0, timeout=60_000)
        broken = self.page.get_by_text("Error displaying widget")
        assert broken.count() == 0, broken.first.inner_text()
        tracebacks = self.tracebacks()
        assert tracebacks.count() == 0, f"a kernel error:\n{tracebacks.first.inner_text()}"
        assert not self.kernel_errors + self.problems, "\n".join(
            self.kernel_errors + self.problems)


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install "
                    f"chromium`, as .ci/run does) or skip this tier with -m 'not browser'")
    UI.mkdir(parents=True, exist_ok=True)
    for old in UI.glob("*.png"):  # outputs/ui shows the last run of this tier only
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`python -m labkit lab --network` (what `make lab LAB_ARGS=--network` runs) on a copy of
    the notebooks: the notebooks that bend the network (08's panel) use its cluster too."""
    tmp = tmp_path_factory.mktemp("lab")
    notebooks = copy_notebooks(tmp)
    lab = LabProcess([sys.executable, "-m", "labkit", "lab", "--no-browser", "--network",
                      "--notebook-dir", str(notebooks)], lab_env(tmp))
    try:
        lab.wait_for_url()
        yield lab
    finally:
        killed = lab.stop()
    assert not killed, f"still running after Ctrl-C, killed: {killed}\n{lab.output()[-3000:]}"


def _notebook(chromium, lab, name: str, panel_call: str):
    page = chromium.new_page(viewport=VIEWPORT)
    try:
        notebook = Notebook(page, name, panel_call)
        notebook.open_and_run_all(lab.url)
        yield notebook
    finally:
        page.close()


@pytest.fixture(scope="module")
def producer_notebook(chromium, lab):
    yield from _notebook(chromium, lab, "01_producer_acks.ipynb",
                         "producer_panel(cluster, topics)")


@pytest.fixture(scope="module")
def consumer_notebook(chromium, lab):
    yield from _notebook(chromium, lab, "10_consumer_group.ipynb",
                         "consumer_panel(cluster, topics)")


@pytest.fixture(scope="module")
def internals_notebook(chromium, lab):
    yield from _notebook(chromium, lab, "07_client_internals.ipynb",
                         "internals_panel(cluster, sweep.topic)")


@pytest.fixture(scope="module")
def backpressure_notebook(chromium, lab):
    yield from _notebook(chromium, lab, "08_backpressure.ipynb", "backpressure_panel(cluster")


@pytest.fixture
def producer(producer_notebook):
    """Notebook 01's page, with what went wrong before this test forgotten."""
    producer_notebook.problems.clear()
    producer_notebook.kernel_errors.clear()
    return producer_notebook


@pytest.fixture
def consumer(consumer_notebook):
    """Notebook 10's page, with what went wrong before this test forgotten."""
    consumer_notebook.problems.clear()
    consumer_notebook.kernel_errors.clear()
    return consumer_notebook


# -- the producer panel (notebook 01) ----------------------------------------------------------

@pytest.mark.browser
@pytest.mark.broker
def test_producer_panel_runs_the_settings_picked_and_redraws(producer):
    nb = producer
    runs = nb.rows.count()
    try:
        nb.choose("acks", "all")
        nb.type_into("messages", "30000")
        nb.press("Run")
        expect(nb.rows).to_have_count(runs + 1, timeout=ACTION_MS)
        expect(nb.rows.last.locator("td").first).to_contain_text("acks=all ")
        expect(nb.plot).to_be_visible(timeout=ACTION_MS)
        first_plot = nb.plot.get_attribute("src")

        nb.choose("acks", "0")
        nb.press("Run")
        expect(nb.rows).to_have_count(runs + 2, timeout=ACTION_MS)
        expect(nb.rows.last.locator("td").first).to_contain_text("acks=0 ")
        expect(nb.rows.nth(runs).locator("td").first).to_contain_text("acks=all ")
        expect(nb.plot).not_to_have_attribute("src", first_plot, timeout=ACTION_MS)
        delivered = nb.rows.last.locator("td").nth(2)  # label, sent, delivered, ...
        expect(delivered).to_have_text("30000")
        nb.assert_plots_drawn()
    finally:
        nb.snapshot("01_producer_panel_two_runs")
    nb.assert_healthy()


@pytest.mark.browser
@pytest.mark.broker
def test_producer_panel_says_what_is_wrong_with_a_bad_value(producer):
    nb = producer
    if nb.rows.count() == 0:  # a run to keep: "no new run" has to be visible
        nb.type_into("messages", "2000")
        nb.press("Run")
        expect(nb.rows).to_have_count(1, timeout=ACTION_MS)
        expect(nb.plot).to_be_visible(timeout=ACTION_MS)
    runs, plot = nb.rows.count(), nb.plot.get_attribute("src")
    try:
        nb.type_into("messages", "-5")
        assert nb.press_and_wait_for_refusal("Run") == [
            "error: messages=-5 must be a positive integer"], nb.output.inner_text()
        expect(nb.rows).to_have_count(runs)
        assert nb.plot.get_attribute("src") == plot, "the plot was redrawn after a refused run"
    finally:
        nb.snapshot("01_producer_panel_bad_value")
    nb.assert_healthy()


# -- the internals and backpressure panels (notebooks 07 and 08) ------------------------------

@pytest.mark.browser
@pytest.mark.broker
def test_internals_panel_runs_a_setting_and_refuses_a_bad_rate(internals_notebook):
    nb = internals_notebook
    try:
        nb.choose("linger.ms", "50")
        nb.choose("acks", "1")
        nb.type_into("seconds (at a rate)", "1")
        nb.press("Run")
        expect(nb.rows).to_have_count(1, timeout=ACTION_MS)
        expect(nb.rows.first.locator("th").first).to_contain_text("#1 1,000 msg/s")
        expect(nb.plot).to_be_visible(timeout=ACTION_MS)
        nb.assert_plots_drawn()
        plot = nb.plot.get_attribute("src")

        nb.type_into("rate msg/s (0=max)", "-5")
        said = nb.press_and_wait_for_refusal("Run")
        assert len(said) == 1 and "rate=-5" in said[0], nb.output.inner_text()
        expect(nb.rows).to_have_count(1)
        assert nb.plot.get_attribute("src") == plot, "the plot was redrawn after a refused run"
    finally:
        nb.snapshot("07_internals_panel_run_and_bad_rate")
    nb.assert_healthy()


@pytest.mark.browser
@pytest.mark.broker
def test_backpressure_panel_runs_a_strategy_over_a_limited_link(backpressure_notebook):
    nb = backpressure_notebook
    try:
        nb.choose("strategy", "drop and count")
        nb.type_into("link Mbit/s (each way)", "1")
        nb.type_into("seconds", "1")
        nb.press("Run")
        expect(nb.rows).to_have_count(1, timeout=ACTION_MS)
        expect(nb.rows.first.locator("th").first).to_contain_text("drop and count, 1 Mbit/s")
        expect(nb.plot).to_have_count(2, timeout=ACTION_MS)  # the costs, and where messages waited
        nb.assert_plots_drawn()
        dropped = float(nb.rows.first.locator("td").nth(1).inner_text().replace(",", ""))
        assert dropped > 0, nb.output.inner_text()  # 4,000 msg/s wanted through 1 Mbit/s
    finally:
        nb.snapshot("08_backpressure_panel_drop")
    nb.assert_healthy()


# -- the consumer panel (notebook 10) ----------------------------------------------------------

@pytest.mark.browser
@pytest.mark.broker
def test_consumer_panel_says_what_is_wrong_with_a_bad_value(consumer):
    nb = consumer
    try:
        nb.type_into("max.poll.interval.ms", "-1")
        nb.press("Start")
        expect(nb.output.get_by_text(re.compile(r"^error: "))).to_be_visible(timeout=ACTION_MS)
        assert nb.messages() == [
            'error: consumer config refused by librdkafka: Configuration property '
            '"max.poll.interval.ms" value -1 is outside allowed range 1..86400000'
        ], nb.output.inner_text()
        expect(nb.rows).to_have_count(0)  # no group started: no assignment table, no plot
        expect(nb.plot).to_have_count(0)
    finally:
        nb.snapshot("10_consumer_panel_bad_value")
    nb.assert_healthy()


@pytest.mark.browser
@pytest.mark.broker
def test_consumer_panel_starts_a_group_adds_and_crashes_members(consumer):
    nb = consumer

    def settled(members: int, partitions: int | None = None) -> dict[str, int]:
        """Press Refresh until ``members`` members each own partitions (``partitions`` in
        all, if given); return the table."""
        def check():
            nb.press_and_wait_for_redraw("Refresh")
            table = nb.assignment()
            return (len(table) == members and min(table.values()) > 0
                    and sum(table.values()) == (partitions or sum(table.values())) and table)
        return wait_until(check, ACTION_MS / 1000,
                          f"{members} members owning {partitions or 'the'} partitions", 2)

    try:
        nb.type_into("max.poll.interval.ms", "300000")
        nb.press("Start")
        expect(nb.output).to_contain_text("Start: done", timeout=ACTION_MS)
        expect(nb.rows).to_have_count(3, timeout=ACTION_MS)
        expect(nb.plot).to_be_visible(timeout=ACTION_MS)
        partitions = sum(settled(3).values())
        nb.press_and_wait_for_redraw("Feed")
        expect(nb.output).to_contain_text("Feed: done")

        timeline = nb.plot.get_attribute("src")
        nb.press_and_wait_for_redraw("Add member")
        expect(nb.output).to_contain_text("Add member: done")
        expect(nb.rows).to_have_count(4)
        assert nb.plot.get_attribute("src") != timeline, "the timeline was not redrawn"
        before_crash = settled(4, partitions)

        timeline = nb.plot.get_attribute("src")
        nb.press_and_wait_for_redraw("Crash member")
        expect(nb.output).to_contain_text("Crash member: done")
        expect(nb.rows).to_have_count(3)
        assert nb.plot.get_attribute("src") != timeline, "the timeline was not redrawn"
        # The crashed member's partitions move once the broker gives up on it
        # (session.timeout.ms), and the timeline shows the pause.
        after_crash = settled(3, partitions)
        assert len(set(before_crash) - set(after_crash)) == 1
        nb.assert_plots_drawn()
    finally:
        nb.snapshot("10_consumer_panel_join_and_crash")
    nb.assert_healthy()


@pytest.mark.browser
@pytest.mark.broker
def test_consumer_panel_stops_its_group(consumer):
    nb = consumer
    if nb.rows.count() == 0:
        nb.press("Start")
        expect(nb.rows).to_have_count(3, timeout=ACTION_MS)
    try:
        nb.press("Stop")
        expect(nb.output).to_contain_text("Stop: done", timeout=ACTION_MS)
        # The kernel's busy/idle status does not wait for a widget callback's last output,
        # so a person's next click is the barrier: the kernel handles it after Stop's.
        nb.press("Refresh")
        expect(nb.output).to_contain_text("Refresh: done", timeout=ACTION_MS)
        expect(nb.rows).to_have_count(0)
    finally:
        nb.snapshot("10_consumer_panel_stopped")
    nb.assert_healthy()


# -- make lab ----------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.broker
def test_make_lab_opens_the_notebook_list_and_ctrl_c_stops_everything(chromium, tmp_path):
    notebooks = copy_notebooks(tmp_path)
    state_file = tmp_path / "cluster.json"
    # `make test` ran setup already; -o setup keeps this test from reinstalling anything.
    lab = LabProcess(["make", "-s", "-o", "setup", "lab",
                      f"LAB_ARGS=--no-browser --notebook-dir={notebooks}"], lab_env(tmp_path))
    try:
        url = lab.wait_for_url()
        state = json.loads(state_file.read_text())
        jvms = {node["pid"] for node in state["nodes"]} | {state["controller"]["pid"]}
        processes = lab.processes()
        jupyter = {pid for pid in processes if "-m jupyterlab" in _cmdline(pid)}
        assert jupyter, f"no JupyterLab among the lab's processes: {processes}"
        assert jvms <= processes, f"brokers {jvms - processes} are not the lab's"

        page = chromium.new_page(viewport={"width": 1280, "height": 720})
        try:
            page.goto(url)
            names = sorted(p.name for p in notebooks.iterdir() if not p.name.startswith("."))
            listed = page.locator(".jp-DirListing-content .jp-DirListing-itemText")
            expect(page.locator(".jp-Launcher")).to_be_visible(timeout=ACTION_MS)
            expect(listed).to_have_count(len(names), timeout=ACTION_MS)
            expect(listed.last).to_be_visible()
            assert sorted(t.strip() for t in listed.all_inner_texts()) == names
            screenshot(page, "lab_notebook_list")
        finally:
            page.close()

        started = time.monotonic()
        lab.interrupt()
        wait_until(lambda: not any(_alive(pid) for pid in processes), 30,
                   "JupyterLab and the cluster's JVMs to stop after Ctrl-C", 0.1)
        took = time.monotonic() - started
        print(f"Ctrl-C stopped JupyterLab and the cluster in {took:.1f} s")
        assert not state_file.exists(), "the cluster's state file outlived it"
        assert "stopping JupyterLab and the cluster..." in lab.output()
    finally:
        killed = lab.stop()
    assert not killed, f"still running after Ctrl-C, killed: {killed}"


@pytest.mark.browser
def test_lab_moves_on_when_the_port_it_found_free_is_taken_before_jupyterlab_binds_it(tmp_path):
    # The race two labs starting at once run: the port found free is bound by someone else
    # first. Here a listener holds the first port the lab picks; the lab must pick another.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        pick = (f"import labkit.runner.cli as cli; first = [{taken}]; found = cli._free_port; "
                f"cli._free_port = lambda *a: first.pop() if first else found(*a); "
                f"raise SystemExit(cli.main(['lab', '--no-browser', '--notebook-dir', "
                f"{str(tmp_path)!r}]))")
        # an external cluster: the lab attaches to it (it connects to nothing itself)
        env = dict(lab_env(tmp_path), KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
        lab = LabProcess([sys.executable, "-c", pick], env)
        try:
            url = lab.wait_for_url(120)
            assert f"port {taken} was taken meanwhile; trying another" in lab.output()
            assert f":{taken}/" not in url
        finally:
            killed = lab.stop()
    assert not killed, f"still running after Ctrl-C, killed: {killed}"
    assert lab.proc.returncode == 0, lab.output()[-3000:]


# -- the report links the screenshots ----------------------------------------------------------

def test_report_index_links_the_screenshots_that_exist(tmp_path):
    write_index([], {}, "smoke", tmp_path)
    assert "ui/" not in (tmp_path / "index.html").read_text()
    (tmp_path / "ui").mkdir()
    for name in ("10_b.png", "01_a.png"):
        (tmp_path / "ui" / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    write_index([], {}, "smoke", tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert 0 < page.index('href="ui/01_a.png"') < page.index('href="ui/10_b.png"')
