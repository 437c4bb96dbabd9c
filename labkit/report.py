"""The notebook runner: execute every numbered notebook headlessly and build the report.

``run_report()`` executes ``notebooks/NN_*.ipynb`` with papermill against one shared cluster,
writes the executed copies, their HTML and each notebook's findings to ``outputs/``, and
writes ``outputs/index.html``. One failed notebook does not stop the others.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import confluent_kafka

from labkit import jars
from labkit.cluster import Cluster, LocalCluster, connect
from labkit.profiles import PROFILES

NOTEBOOK_NAME = re.compile(r"^(\d\d)_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class NotebookRun:
    """The outcome of one notebook.

    Attributes:
        name: notebook file name.
        status: "ok" or "failed".
        seconds: wall time of the execution.
        error: the failing cell's error, one line ("" if ok).
        findings: the findings the notebook recorded (dicts: id, holds, sentence).
    """

    name: str
    status: str
    seconds: float
    error: str = ""
    findings: list[dict] = field(default_factory=list)

    @property
    def stem(self) -> str:
        return self.name.removesuffix(".ipynb")


def notebooks(notebooks_dir: Path = ROOT / "notebooks", only: str | None = None) -> list[Path]:
    """Return the numbered notebooks in order (only the one numbered ``only`` if given).

    Raises:
        ValueError: ``only`` is not two digits, or names no notebook.
    """
    found = sorted(p for p in notebooks_dir.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if only is None:
        return found
    if not re.fullmatch(r"\d\d", only):
        raise ValueError(f"--only takes a two-digit notebook number such as 00, got {only!r}")
    chosen = [p for p in found if p.name.startswith(only + "_")]
    if not chosen:
        numbers = ", ".join(p.name[:2] for p in found)
        raise ValueError(f"no notebook numbered {only}; there are {numbers}")
    return chosen


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
    state_dir = tempfile.mkdtemp(prefix="labkit-report-")
    previous = os.environ.get("LABKIT_STATE_FILE")
    with LocalCluster(brokers=3) as cluster:
        cluster.start()
        state_file = cluster.save_state(Path(state_dir) / "cluster.json")
        os.environ["LABKIT_STATE_FILE"] = str(state_file)
        try:
            yield cluster
        finally:
            if previous is None:
                os.environ.pop("LABKIT_STATE_FILE", None)
            else:
                os.environ["LABKIT_STATE_FILE"] = previous
    for leftover in Path(state_dir).glob("*"):
        leftover.unlink()
    os.rmdir(state_dir)


def execute(notebook: Path, outputs: Path, profile: str) -> NotebookRun:
    """Execute one notebook with papermill into ``outputs`` and convert it to HTML."""
    import papermill
    from nbconvert import HTMLExporter

    out = outputs / notebook.name
    findings_file = outputs / f"{notebook.stem}.findings.jsonl"
    findings_file.unlink(missing_ok=True)
    os.environ["LABKIT_FINDINGS_FILE"] = str(findings_file)
    error = ""
    start = time.monotonic()
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
    seconds = time.monotonic() - start
    if out.exists():
        body, _ = HTMLExporter().from_filename(str(out))
        out.with_suffix(".html").write_text(body)
    findings = []
    if findings_file.exists():
        findings = [json.loads(line) for line in findings_file.read_text().splitlines() if line]
    return NotebookRun(notebook.name, "failed" if error else "ok", seconds, error, findings)


def _one_line(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    return f"{ename}: {evalue}".splitlines()[0][:300]


def environment(cluster: Cluster) -> dict[str, str]:
    """Versions and machine facts shown on the index page."""
    return {
        "Kafka": f"{jars.KAFKA_VERSION} (embedded)" if cluster.local else "external cluster",
        "cluster": cluster.describe(),
        "brokers": str(len(cluster.brokers)),
        "librdkafka": confluent_kafka.libversion()[0],
        "confluent-kafka": confluent_kafka.version()[0],
        "Python": platform.python_version(),
        "machine": f"{platform.node()}: {platform.platform()}, {os.cpu_count()} CPUs, "
                   f"{_memory_gib()} GiB RAM",
    }


def _memory_gib() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kib / 2**20:.0f}"
    return "?"


def write_index(runs: list[NotebookRun], env: dict[str, str], profile: str,
                outputs: Path) -> Path:
    """Write ``outputs/index.html``: one row per notebook plus the environment."""
    esc = html.escape
    rows = "\n".join(
        f'<tr class="{r.status}"><td>{esc(r.stem)}</td><td>{r.status}</td>'
        f"<td>{r.seconds:.1f} s</td>"
        f'<td><a href="{esc(r.stem)}.html">html</a> · <a href="{esc(r.name)}">ipynb</a></td>'
        f"<td>{sum(f['holds'] for f in r.findings)}/{len(r.findings)}</td>"
        f"<td>{esc(r.error)}</td></tr>"
        for r in runs
    )
    env_rows = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in env.items())
    finding_rows = "\n".join(
        f'<tr class="{"ok" if f["holds"] else "failed"}"><td>{esc(r.stem)}</td>'
        f'<td>{esc(f["id"])}</td><td>{"holds" if f["holds"] else "FAILED"}</td>'
        f'<td>{esc(f["sentence"])}</td></tr>'
        for r in runs for f in r.findings
    )
    failed = sum(r.status != "ok" for r in runs)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Kafka lab report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
tr.ok td:nth-child(2) {{ color: #070; font-weight: bold; }}
tr.failed td {{ background: #fdd; }}
tr.ok td:nth-child(3) {{ color: #070; }}
</style></head><body>
<h1>Kafka lab report</h1>
<p>Profile <b>{esc(profile)}</b>, generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}:
{len(runs) - failed} of {len(runs)} notebooks ok.</p>
<table><tr><th>notebook</th><th>status</th><th>duration</th><th>output</th>
<th>findings holding</th><th>error</th></tr>
{rows}
</table>
<h2>Findings</h2>
<p>Computed by each notebook from its own run and checked; also in
<a href="findings.md">findings.md</a>.</p>
<table><tr><th>notebook</th><th>id</th><th>status</th><th>finding</th></tr>
{finding_rows}
</table>
<h2>Environment</h2>
<table>{env_rows}</table>
</body></html>
"""
    index = outputs / "index.html"
    index.write_text(page)
    return index


def write_findings(runs: list[NotebookRun], env: dict[str, str], profile: str,
                   outputs: Path) -> Path:
    """Write ``outputs/findings.md``: every notebook's findings, holding or not."""
    lines = [f"# Findings ({profile} profile, {datetime.now(UTC):%Y-%m-%d %H:%M UTC})",
             "", f"Cluster: {env.get('cluster', '?')}; librdkafka {env.get('librdkafka', '?')}; "
             f"machine: {env.get('machine', '?')}.", ""]
    for run in runs:
        lines.append(f"## {run.stem} ({run.status}, {run.seconds:.0f} s)")
        lines.append("")
        if run.error:
            lines.append(f"- **notebook failed**: {run.error}")
        lines += [f"- {'holds' if f['holds'] else '**FAILED**'} `{f['id']}`: {f['sentence']}"
                  for f in run.findings]
        if not run.findings and not run.error:
            lines.append("- (no findings recorded)")
        lines.append("")
    path = outputs / "findings.md"
    path.write_text("\n".join(lines))
    return path


def run_report(profile: str = "standard", only: str | None = None,
               outputs: Path = ROOT / "outputs", notebooks_dir: Path = ROOT / "notebooks",
               progress: bool = True) -> list[NotebookRun]:
    """Execute the notebooks and write the report; return one ``NotebookRun`` per notebook.

    Raises:
        ValueError: an unknown profile or notebook number.
    """
    from tqdm.auto import tqdm

    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not known; use one of {', '.join(PROFILES)}")
    chosen = notebooks(notebooks_dir, only)
    outputs.mkdir(parents=True, exist_ok=True)
    runs = []
    with shared_cluster() as cluster:
        env = environment(cluster)
        bar = tqdm(chosen, desc=f"notebooks ({profile})", unit="nb", disable=not progress)
        for notebook in bar:
            bar.set_postfix_str(notebook.stem)
            runs.append(execute(notebook, outputs, profile))
            write_index(runs, env, profile, outputs)
            write_findings(runs, env, profile, outputs)
        bar.close()
    return runs
