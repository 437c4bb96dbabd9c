"""The notebook runner: execute every numbered notebook headlessly and build the report.

``run_report()`` executes ``notebooks/NN_*.ipynb`` with papermill against one shared cluster
(and the notebooks that ask for the lab network against a second, ``shared_network_cluster``),
writes the executed copies, their HTML and each notebook's findings to ``outputs/``, and
writes ``outputs/index.html`` and ``outputs/findings.md``, broken promises first, and
``outputs/figures.html``, every chart on one page (``contact_sheet``). One failed
notebook does not stop the others. ``run_report(repeat=N)`` runs the series N times and
writes, per checked finding, in how many runs it held (``outputs/stability.md``).

Most notebooks measure rates or latencies and run alone. A notebook whose metadata says why
it may share the machine (``shares_the_machine``: its findings are about Kafka's semantics
and timers, such as fences, session timeouts and rebalances) runs after those, two at a
time: one on the shared cluster, one on the second cluster, so that their waits overlap.
Each run records which notebooks ran alongside it, and the report says so.

A notebook that raised is *failed*; a notebook that ran to the end is *ok*, even when one of
its checked findings did not hold (a broken promise, shown with its evidence). ``verdict``
gives the lines the command line ends with, and its exit status.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import multiprocessing
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import confluent_kafka
import pandas as pd

from labkit.cluster import Cluster, LocalCluster, connect, jars, local
from labkit.runner import contact_sheet
from labkit.runner import findings as lab_findings
from labkit.runner.profiles import PROFILES

NOTEBOOK_NAME = re.compile(r"^(\d\d)_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class NotebookRun:
    """The outcome of one notebook.

    Attributes:
        name: notebook file name.
        status: "ok" or "failed".
        seconds: wall time of the execution.
        error: the failing cell's error, one line ("" if ok).
        findings: the findings the notebook recorded (dicts: id, kind, holds, sentence;
            see ``labkit.runner.findings``).
        started, ended: wall-clock times (epoch seconds) of the execution.
        alongside: the notebooks (stems) that ran at the same time, if it shared the machine.
    """

    name: str
    status: str
    seconds: float
    error: str = ""
    findings: list[dict] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    alongside: list[str] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return self.name.removesuffix(".ipynb")

    @property
    def checks(self) -> list[dict]:
        """The checked findings (not the observations)."""
        return [f for f in self.findings if f["kind"] == "check"]

    @property
    def broken(self) -> list[dict]:
        """The checked findings that did not hold: broken promises."""
        return lab_findings.broken(self.findings)


def notebooks(notebooks_dir: Path = ROOT / "notebooks", only: str | None = None) -> list[Path]:
    """Return the numbered notebooks in order (only those numbered in ``only`` if given).

    Args:
        notebooks_dir: where the notebooks are.
        only: one two-digit number such as "21", or several separated by commas ("20,21").

    Raises:
        ValueError: a number that is not two digits, or that names no notebook.
    """
    found = sorted(p for p in notebooks_dir.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if only is None:
        return found
    wanted = [n.strip() for n in only.split(",")]
    for number in wanted:
        if not re.fullmatch(r"\d\d", number):
            raise ValueError(f"--only takes two-digit notebook numbers such as 00 or 20,21; "
                             f"got {only!r}")
        if not any(p.name.startswith(number + "_") for p in found):
            numbers = ", ".join(p.name[:2] for p in found)
            raise ValueError(f"no notebook numbered {number}; there are {numbers}")
    return [p for p in found if p.name[:2] in wanted]


@contextlib.contextmanager
def shared_cluster():
    """Yield the cluster every notebook of a run will use.

    Attaches to a cluster named by ``$KAFKA_BOOTSTRAP_SERVERS`` or recorded by ``cluster up``;
    otherwise starts a 3-broker LocalCluster for the run, records it in a temporary state
    file that the notebook kernels inherit (``$LABKIT_STATE_FILE``), and stops it at the end.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or LocalCluster.running():
        cluster = connect()
        try:
            yield cluster
        finally:
            cluster.close()
        return
    with _started_and_recorded("LABKIT_STATE_FILE") as cluster:
        yield cluster


@contextlib.contextmanager
def shared_network_cluster(cluster: Cluster):
    """Yield one cluster behind the lab network for the notebooks that ask for it, or None.

    A notebook that delays or cuts links (``labkit.connect(..., network=True)``) would
    otherwise start a cluster of its own, about 11 s each. Nothing is started when the run
    attaches to an external cluster or to one that has the lab network itself, or when
    ``$LABKIT_NETWORK_STATE_FILE`` already names a running one (the tests'); otherwise
    the new cluster is recorded in a temporary ``$LABKIT_NETWORK_STATE_FILE`` that the
    notebook kernels inherit, and stopped on leaving.
    """
    named = os.environ.get("LABKIT_NETWORK_STATE_FILE")
    running = LocalCluster.running(named) if named else None
    if running is not None:
        running.close()
    if (os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or running is not None
            or not isinstance(cluster, LocalCluster) or cluster.network_control):
        yield None
        return
    with _started_and_recorded("LABKIT_NETWORK_STATE_FILE", network=True) as network:
        yield network


@contextlib.contextmanager
def _started_and_recorded(variable: str, **options):
    """Start a 3-broker ``LocalCluster(**options)`` for the block; stop it on leaving.

    It is recorded in a temporary state file named by ``$variable``, which the notebook
    kernels inherit.
    """
    state_dir = tempfile.mkdtemp(prefix="labkit-report-")
    previous = os.environ.get(variable)
    try:
        with LocalCluster(brokers=3, **options) as cluster:
            cluster.start()
            os.environ[variable] = str(cluster.save_state(Path(state_dir) / "cluster.json"))
            yield cluster
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous
        shutil.rmtree(state_dir, ignore_errors=True)


def needs_network(notebook: Path) -> bool:
    """Whether the notebook asks for the lab network (``labkit.connect(..., network=True)``)."""
    return "network=True" in notebook.read_text()


def shares_the_machine(notebook: Path) -> str:
    """Why the notebook may run alongside another one ("" if it must run alone).

    A notebook says so in its metadata, ``{"labkit": {"shares_the_machine": "why"}}``; one that
    measures rates or latencies must not, since a second experiment takes CPU from it.
    """
    metadata = json.loads(notebook.read_text()).get("metadata", {})
    return str(metadata.get("labkit", {}).get("shares_the_machine", ""))


def execute(notebook: Path, outputs: Path, profile: str) -> NotebookRun:
    """Execute one notebook with papermill into ``outputs`` and convert it to HTML."""
    import papermill
    from nbconvert import HTMLExporter

    out = outputs / notebook.name
    findings_file = outputs / f"{notebook.stem}.findings.jsonl"
    findings_file.unlink(missing_ok=True)
    os.environ["LABKIT_FINDINGS_FILE"] = str(findings_file)
    error = ""
    started, start = time.time(), time.monotonic()
    try:
        papermill.execute_notebook(
            str(notebook), str(out),
            parameters={"profile": profile, "bootstrap_servers": "", "interactive": False},
            kernel_name="python3", progress_bar=False, cwd=str(notebook.parent),
        )
    except Exception as exc:  # noqa: BLE001 - any failure is this notebook's, not the run's
        error = _one_line(exc)
    finally:
        os.environ.pop("LABKIT_FINDINGS_FILE", None)
    seconds, ended = time.monotonic() - start, time.time()
    if out.exists():
        body, _ = HTMLExporter().from_filename(str(out))
        out.with_suffix(".html").write_text(body)
    recorded = lab_findings.load(findings_file) if findings_file.exists() else []
    return NotebookRun(notebook.name, "failed" if error else "ok", seconds, error, recorded,
                       started, ended)


def _use_environment(variables: dict[str, str]) -> None:
    os.environ.update(variables)


def execute_two_at_a_time(shared: list[Path], outputs: Path, profile: str,
                          done: Callable[[NotebookRun], None]) -> None:
    """Execute ``shared`` two at a time, one lane per cluster; call ``done`` with each run.

    One lane runs in this process, on the shared cluster. The other is a process of its own
    whose notebooks see the cluster of ``$LABKIT_NETWORK_STATE_FILE`` as theirs
    (``$LABKIT_STATE_FILE``), so the notebooks that ask for the lab network run there only.
    A free lane takes the first notebook in ``shared`` it may run.
    """
    second = {"LABKIT_STATE_FILE": os.environ["LABKIT_NETWORK_STATE_FILE"]}
    asking = {p for p in shared if needs_network(p)}  # only the second lane may run these
    queue = sorted(shared, key=lambda p: p not in asking)
    with ThreadPoolExecutor(1) as here, ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_use_environment, initargs=(second,)) as there:
        free: list[Executor] = [there, here]
        running = {}
        while queue or running:
            for lane in list(free):
                pick = next((p for p in queue if lane is there or p not in asking), None)
                if pick is not None:
                    queue.remove(pick)
                    free.remove(lane)
                    running[lane.submit(execute, pick, outputs, profile)] = lane
            finished, _ = wait_for(running, return_when=FIRST_COMPLETED)
            for future in finished:
                free.append(running.pop(future))
                done(future.result())


def mark_alongside(runs: list[NotebookRun]) -> None:
    """Fill each run's ``alongside``: the runs whose execution overlapped it."""
    for run in runs:
        run.alongside = [other.stem for other in runs if other is not run
                         and other.started < run.ended and run.started < other.ended]


def _one_line(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    return f"{ename}: {evalue}".splitlines()[0][:300]


def environment(cluster: Cluster) -> dict[str, str]:
    """Versions and machine facts shown on the index page."""
    jvm = " ".join(local.extra_jvm_options())
    return {
        "Kafka": f"{jars.KAFKA_VERSION} (embedded)" if cluster.local else "external cluster",
        "cluster": cluster.describe(),
        "brokers": str(len(cluster.brokers)),
        "librdkafka": confluent_kafka.libversion()[0],
        "confluent-kafka": confluent_kafka.version()[0],
        "Python": platform.python_version(),
        "machine": f"{platform.node()}: {platform.platform()}, {os.cpu_count()} CPUs, "
                   f"{_memory_gib()} GiB RAM",
        **({f"broker JVM options (${local.JVM_OPTIONS_VARIABLE})": jvm} if jvm else {}),
    }


def _memory_gib() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kib / 2**20:.0f}"
    return "?"



_STYLE = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 2em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
tr.ok td.status { color: #070; font-weight: bold; }
tr.failed td, tr.broken td { background: #fdd; }
tr.broken td.status { color: #b00; font-weight: bold; }
tr.observation td.status { color: #555; }
div.broken { border: 2px solid #b00; background: #fee; padding: 0.5em 1em; margin-bottom: 2em; }
div.broken h2 { color: #b00; margin-top: 0.3em; }
"""


def _finding_status(finding: dict) -> tuple[str, str]:
    """(css class, label) of one finding."""
    if finding["kind"] == "observation":
        return "observation", "observed"
    return ("ok", "holds") if finding["holds"] else ("broken", "BROKEN")


def counts(runs: list[NotebookRun]) -> dict[str, int]:
    """Notebooks run and failed, checked findings held and broken, observations."""
    checks = [f for r in runs for f in r.checks]
    return {
        "notebooks": len(runs),
        "failed": sum(r.status != "ok" for r in runs),
        "checks": len(checks),
        "held": sum(bool(f["holds"]) for f in checks),
        "broken": sum(not f["holds"] for f in checks),
        "observations": sum(f["kind"] == "observation" for r in runs for f in r.findings),
    }


def _screenshots(outputs: Path) -> str:
    """Links to the browser tests' screenshots in ``outputs/ui/`` ("" if there are none)."""
    shots = sorted((outputs / "ui").glob("*.png"))
    if not shots:
        return ""
    links = "\n".join(f'<li><a href="ui/{html.escape(p.name)}">{html.escape(p.name)}</a></li>'
                      for p in shots)
    return ("<h2>Screenshots</h2><p>What JupyterLab showed the browser tests "
            "(<code>tests/test_browser.py</code>) on their last run, the control panels "
            f"driven in Chromium:</p>\n<ul>{links}</ul>")


def _sharing(runs: list[NotebookRun]) -> str:
    """A paragraph on which notebooks ran alongside others ("" if each ran alone)."""
    sharing = [r for r in runs if r.alongside]
    if not sharing:
        return ""
    return (f"<p>{len(runs) - len(sharing)} notebook(s) ran alone: they measure rates or "
            f"latencies. {len(sharing)} ran two at a time, one on each of two clusters, since "
            "their findings are about Kafka's semantics and timers (fences, session timeouts, "
            "rebalances); each says why in its metadata, and the table names what ran "
            "alongside it.</p>")


def write_index(runs: list[NotebookRun], env: dict[str, str], profile: str,
                outputs: Path, stability: str = "") -> Path:
    """Write ``outputs/index.html``.

    Broken promises first, then one row per notebook, every finding, the stability table of a
    repeated run (if given), links to the browser tests' screenshots (if any) and the
    environment.
    """
    esc = html.escape
    n = counts(runs)
    rows = "\n".join(
        f'<tr class="{r.status}"><td>{esc(r.stem)}</td><td class="status">{r.status}</td>'
        f"<td>{r.seconds:.1f} s</td><td>{esc(', '.join(r.alongside))}</td>"
        f'<td><a href="{esc(r.stem)}.html">html</a> · <a href="{esc(r.name)}">ipynb</a></td>'
        f"<td>{sum(bool(f['holds']) for f in r.checks)}/{len(r.checks)}</td>"
        f"<td>{len(r.findings) - len(r.checks)}</td>"
        f"<td>{esc(r.error)}</td></tr>"
        for r in runs
    )
    broken = [(r, f) for r in runs for f in r.broken]
    broken_block = ""
    if broken:
        items = "\n".join(
            f'<li><a href="{esc(r.stem)}.html">{esc(r.stem)}</a> <code>{esc(f["id"])}</code>: '
            f'{esc(f["sentence"])}</li>' for r, f in broken)
        broken_block = (f'<div class="broken"><h2>{len(broken)} broken promise(s)</h2>'
                        f"<p>Checked findings that did not hold on this run. Each notebook "
                        f"shows the evidence below the finding.</p><ul>{items}</ul></div>")
    finding_rows = "\n".join(
        f'<tr class="{_finding_status(f)[0]}"><td>{esc(r.stem)}</td><td>{esc(f["id"])}</td>'
        f'<td class="status">{_finding_status(f)[1]}</td><td>{esc(f["sentence"])}</td></tr>'
        for r in runs for f in r.findings
    )
    env_rows = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in env.items())
    stability_block = ""
    if stability:
        stability_block = ('<h2>Stability</h2><p>How many runs of this repeated series each '
                           'checked finding held in (also in <a href="stability.md">'
                           f"stability.md</a>).</p>\n{stability}")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Kafka lab report</title>
<style>{_STYLE}</style></head><body>
<h1>Kafka lab report</h1>
<p>Profile <b>{esc(profile)}</b>, generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}:
{n['notebooks'] - n['failed']} of {n['notebooks']} notebooks ran to the end;
{n['held']} of {n['checks']} checked findings held; {n['observations']} observations.</p>
<p>Every chart of the run on one page, with its notebook and caption:
<a href="figures.html">figures.html</a>.</p>
{broken_block}
{_sharing(runs)}
<table><tr><th>notebook</th><th>status</th><th>duration</th><th>ran alongside</th><th>output</th>
<th>checked findings holding</th><th>observations</th><th>error</th></tr>
{rows}
</table>
<h2>Findings</h2>
<p>Computed by each notebook from its own run (also in <a href="findings.md">findings.md</a>).
A <b>checked</b> finding is what Kafka or the client promises, or what follows from the
configuration: it holds or it is a broken promise. An <b>observation</b> is a measured
quantity that varies from run to run: printed, never checked.</p>
<table><tr><th>notebook</th><th>id</th><th>status</th><th>finding</th></tr>
{finding_rows}
</table>
{stability_block}
{_screenshots(outputs)}
<h2>Environment</h2>
<table>{env_rows}</table>
</body></html>
"""
    index = outputs / "index.html"
    index.write_text(page)
    return index


def write_findings(runs: list[NotebookRun], env: dict[str, str], profile: str,
                   outputs: Path) -> Path:
    """Write ``outputs/findings.md``: broken promises first, then every notebook's findings."""
    n = counts(runs)
    lines = [f"# Findings ({profile} profile, {datetime.now(UTC):%Y-%m-%d %H:%M UTC})",
             "", f"Cluster: {env.get('cluster', '?')}; librdkafka {env.get('librdkafka', '?')}; "
             f"machine: {env.get('machine', '?')}.", "",
             f"{n['notebooks'] - n['failed']} of {n['notebooks']} notebooks ran to the end; "
             f"{n['held']} of {n['checks']} checked findings held; "
             f"{n['observations']} observations.", ""]
    broken = [(r, f) for r in runs for f in r.broken]
    if broken:
        lines += [f"## Broken promises ({len(broken)})", "",
                  "Checked findings that did not hold; the notebook shows the evidence.", ""]
        lines += [f"- **BROKEN** `{f['id']}` ({r.stem}): {f['sentence']}" for r, f in broken]
        lines.append("")
    for run in runs:
        beside = f", alongside {', '.join(run.alongside)}" if run.alongside else ""
        lines.append(f"## {run.stem} ({run.status}, {run.seconds:.0f} s{beside})")
        lines.append("")
        if run.error:
            lines.append(f"- **notebook failed**: {run.error}")
        lines += [f"- {_finding_status(f)[1] if f['holds'] is not False else '**BROKEN**'} "
                  f"`{f['id']}`: {f['sentence']}" for f in run.findings]
        if not run.findings and not run.error:
            lines.append("- (no findings recorded)")
        lines.append("")
    path = outputs / "findings.md"
    path.write_text("\n".join(lines))
    return path


def write_figures(runs: list[NotebookRun], profile: str, outputs: Path) -> Path:
    """Write ``outputs/figures.html``: every chart of the runs' executed notebooks."""
    return contact_sheet.write(outputs, [r.name for r in runs],
                               {r.name: r.error for r in runs if r.error},
                               subtitle=f"profile {profile}")


def stability(rounds: list[list[NotebookRun]]) -> pd.DataFrame:
    """Per checked finding, in how many rounds of a repeated series it held.

    Args:
        rounds: one list of ``NotebookRun`` per round.

    Returns:
        One row per checked finding, in the order first seen: notebook, id, held, runs
        (rounds in which it was recorded), rounds (how many rounds in all) and broken (the
        sentences of the rounds it did not hold in, round number first).
    """
    rows: dict[str, dict] = {}
    for number, runs in enumerate(rounds, start=1):
        for run in runs:
            for f in run.checks:
                row = rows.setdefault(f["id"], {"notebook": run.stem, "id": f["id"], "held": 0,
                                                "runs": 0, "broken": []})
                row["runs"] += 1
                row["held"] += bool(f["holds"])
                if not f["holds"]:
                    row["broken"].append(f"round {number}: {f['sentence']}")
    table = pd.DataFrame(list(rows.values()),
                         columns=["notebook", "id", "held", "runs", "broken"])
    table.insert(4, "rounds", len(rounds))
    return table


def write_stability(rounds: list[list[NotebookRun]], profile: str, outputs: Path) -> str:
    """Write ``outputs/stability.md`` for a repeated series; return its table as HTML."""
    table = stability(rounds)
    failed = [(k, r) for k, runs in enumerate(rounds, 1) for r in runs if r.status != "ok"]
    steady = int((table.held == table.rounds).sum())
    lines = [f"# Stability ({profile} profile, {len(rounds)} round{'s' * (len(rounds) != 1)}, "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC})", "",
             f"{steady} of {len(table)} checked findings held in every round.", "",
             "| notebook | finding | held | recorded in | rounds |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.notebook} | `{r.id}` | {r.held} | {r.runs} | {r.rounds} |"
              for r in table.itertuples()]
    notes = [f"- `{r.id}` {b}" for r in table.itertuples() for b in r.broken]
    notes += [f"- {r.stem} failed in round {k}: {r.error}" for k, r in failed]
    if notes:
        lines += ["", "## Rounds that did not hold", "", *notes]
    (outputs / "stability.md").write_text("\n".join(lines) + "\n")
    esc = html.escape
    body = "\n".join(
        f'<tr class="{"ok" if r.held == r.rounds else "broken"}"><td>{esc(r.notebook)}</td>'
        f'<td>{esc(r.id)}</td><td class="status">{r.held} of {r.rounds}</td></tr>'
        for r in table.itertuples())
    return ("<table><tr><th>notebook</th><th>finding</th><th>held in</th></tr>\n"
            f"{body}\n</table>")


def verdict(rounds: list[list[NotebookRun]], outputs: Path, strict: bool = False
            ) -> tuple[list[str], int]:
    """The lines the command line ends with, and its exit status.

    The status is 1 when a notebook failed in any round, or, with ``strict``, when a checked
    finding did not hold; else 0.
    """
    lines = []
    for k, runs in enumerate(rounds, start=1):
        n = counts(runs)
        prefix = f"round {k}: " if len(rounds) > 1 else ""
        lines.append(f"{prefix}{n['notebooks'] - n['failed']}/{n['notebooks']} notebooks ran "
                     f"to the end; {n['held']} of {n['checks']} checked findings held; "
                     f"{n['observations']} observations.")
        lines += [f"  notebook failed: {r.stem}: {r.error}" for r in runs if r.status != "ok"]
        lines += [f"  BROKEN {f['id']} ({r.stem}): {f['sentence']}"
                  for r in runs for f in r.broken]
    any_broken = any(r.broken for runs in rounds for r in runs)
    any_failed = any(r.status != "ok" for runs in rounds for r in runs)
    if any_broken or any_failed:
        lines.append(f"Read {outputs / 'findings.md'} (broken promises first) and each "
                     f"notebook's evidence in {outputs / 'index.html'}.")
    else:
        lines.append(f"Report in {outputs / 'index.html'}.")
    if len(rounds) > 1:
        lines.append(f"Stability per finding in {outputs / 'stability.md'}.")
    status = 1 if any_failed or (strict and any_broken) else 0
    return lines, status


def run_report(profile: str = "standard", only: str | None = None,
               outputs: Path = ROOT / "outputs", notebooks_dir: Path = ROOT / "notebooks",
               progress: bool = True, repeat: int = 1) -> list[list[NotebookRun]]:
    """Execute the notebooks ``repeat`` times and write the report.

    Every round runs on the same clusters, so later rounds meet the state earlier faults left
    behind. In a round, the notebooks that must run alone go first, in order; then those that
    may share the machine, two at a time (``execute_two_at_a_time``) when there are two or
    more and the runner has a second cluster of its own. The executed notebooks in
    ``outputs`` are those of the last round.

    Returns:
        One list of ``NotebookRun`` per round.

    Raises:
        ValueError: an unknown profile or notebook number, or ``repeat`` below 1.
    """
    from tqdm.auto import tqdm

    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not known; use one of {', '.join(PROFILES)}")
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat={repeat!r} is not allowed; use a whole number of rounds >= 1")
    chosen = notebooks(notebooks_dir, only)
    outputs = Path(outputs)
    outputs.mkdir(parents=True, exist_ok=True)
    order = {p.name: k for k, p in enumerate(chosen)}
    shared = [p for p in chosen if shares_the_machine(p)]
    two_lanes = len(shared) >= 2  # then they run after the others, on a second cluster
    alone = [p for p in chosen if p not in shared] if two_lanes else chosen
    wanted = {p for p in alone if needs_network(p)}
    # The second cluster serves the notebooks that ask for the lab network, and the second
    # lane: started before its first use, stopped after its last.
    uses_left = repeat * (len(wanted) + two_lanes)
    rounds: list[list[NotebookRun]] = []
    with shared_cluster() as cluster, contextlib.ExitStack() as network:
        env = environment(cluster)
        bar = tqdm(total=len(chosen) * repeat, desc=f"notebooks ({profile})", unit="nb",
                   disable=not progress)
        second: list[Cluster | None] = []  # [the second cluster, or None] once asked for
        table = ""

        def use_network() -> None:
            if not second:
                second.append(network.enter_context(shared_network_cluster(cluster)))
                if second[0] is not None:
                    env["second cluster"] = second[0].describe()

        def used_network() -> None:
            nonlocal uses_left
            uses_left -= 1
            if not uses_left:
                network.close()

        def finished(runs: list[NotebookRun], run: NotebookRun) -> None:
            runs.append(run)
            runs.sort(key=lambda r: order[r.name])
            mark_alongside(runs)
            bar.update()
            write_index(runs, env, profile, outputs, table)
            write_findings(runs, env, profile, outputs)
            write_figures(runs, profile, outputs)

        for _ in range(repeat):
            runs: list[NotebookRun] = []
            rounds.append(runs)
            for notebook in alone:
                bar.set_postfix_str(notebook.stem)
                if notebook in wanted:
                    use_network()
                finished(runs, execute(notebook, outputs, profile))
                if notebook in wanted:
                    used_network()
            if two_lanes:
                use_network()
                if second[0] is not None:
                    bar.set_postfix_str("two at a time")
                    execute_two_at_a_time(shared, outputs, profile,
                                          functools.partial(finished, runs))
                else:  # no second cluster of the runner's own: one at a time
                    for notebook in shared:
                        bar.set_postfix_str(notebook.stem)
                        finished(runs, execute(notebook, outputs, profile))
                used_network()
            if repeat > 1:
                table = write_stability(rounds, profile, outputs)
                write_index(runs, env, profile, outputs, table)
        bar.close()
    return rounds
