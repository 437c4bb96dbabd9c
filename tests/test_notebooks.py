"""The notebooks: naming, parameters, stripped outputs, the README table, and a smoke run
of every notebook through the report runner against the session's real cluster."""

import ast
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from labkit.runner.report import NOTEBOOK_NAME, needs_network, notebooks, run_report, verdict

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COMMON = {"profile": "str", "bootstrap_servers": "str", "interactive": "bool"}


def test_notebook_names_follow_the_pattern():
    assert NOTEBOOKS, "no notebooks found"
    bad = [p.name for p in NOTEBOOKS if not NOTEBOOK_NAME.match(p.name)]
    assert not bad, f"notebook names must match NN_snake_case.ipynb: {bad}"
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(numbers) == len(set(numbers)), f"duplicate notebook numbers: {numbers}"


def test_readme_table_lists_exactly_the_notebooks():
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\|\s*\[\d\d\]\(notebooks/(\d\d_\w+\.ipynb)\)", readme, re.M)
    assert listed == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_holds_typed_commented_literals(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    source = tagged[0].source
    tree = ast.parse(source)
    names = {}
    for stmt in tree.body:
        assert isinstance(stmt, ast.AnnAssign), f"not `name: type = literal`: {ast.unparse(stmt)}"
        ast.literal_eval(stmt.value)  # a plain literal, derived from nothing
        names[stmt.target.id] = ast.unparse(stmt.annotation)
    for name, kind in COMMON.items():
        assert names.get(name) == kind, f"common parameter {name}: {kind} missing"
    for line in source.splitlines():
        assert "#" in line, f"parameter without a comment: {line}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None


def test_runner_refuses_a_bad_notebook_number():
    with pytest.raises(ValueError, match="no notebook numbered 99; there are 00"):
        notebooks(only="99")
    with pytest.raises(ValueError, match="two-digit"):
        notebooks(only="1")
    with pytest.raises(ValueError, match="no notebook numbered 98"):
        notebooks(only="00,98")
    assert [p.name[:2] for p in notebooks(only="01,00")] == ["00", "01"]


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_the_smoke_profile(cluster3, tmp_path, path, request):
    if needs_network(path):  # its labkit.connect(network=True) attaches to it
        request.getfixturevalue("cluster3net")
    rounds = run_report(profile="smoke", only=path.name[:2], outputs=tmp_path, progress=False)
    assert [r.name for r in rounds[0]] == [path.name]
    run = rounds[0][0]
    assert run.status == "ok", run.error
    assert (tmp_path / run.name).exists() and (tmp_path / f"{run.stem}.html").exists()
    index = (tmp_path / "index.html").read_text()
    assert f'href="{run.stem}.html"' in index and "librdkafka" in index and "4.4.0" in index
    assert "-XX:TieredStopAtLevel=1" in index  # the tests' broker JVM options are named
    # --strict: a broken promise fails the test as it fails the command line.
    lines, status = verdict(rounds, tmp_path, strict=True)
    assert run.checks and status == 0, "\n".join(lines)
    findings = (tmp_path / "findings.md").read_text()
    assert all(f["id"] in findings and f["id"] in index for f in run.findings)
    # The contact sheet shows every chart the notebook drew, and the index links to it.
    pngs = sum("image/png" in o.get("data", {}) for c in nbformat.read(tmp_path / run.name, 4).cells
               for o in c.get("outputs", []))
    sheet = (tmp_path / "figures.html").read_text()
    assert sheet.count("<img src=\"data:image/png") == pngs and 'href="figures.html"' in index
    # The notebooks leave the shared cluster whole for the next one.
    assert cluster3.brokers == [1, 2, 3]


@pytest.mark.notebooks
def test_the_runner_starts_one_network_cluster_and_runs_sharing_notebooks_two_at_a_time(
        cluster3, tmp_path, monkeypatch):
    # No cluster behind the lab network is recorded: the runner starts one before the first
    # notebook that asks for it, and both such notebooks attach to it. The two notebooks
    # that may share the machine then run at the same time, one on each cluster, each with
    # its own findings; the second cluster is gone after the run.
    nothing = str(tmp_path / "none.json")
    monkeypatch.setenv("LABKIT_NETWORK_STATE_FILE", nothing)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    attach = ("import os, labkit\nfrom labkit.cluster import LocalCluster\n"
              "cluster = labkit.connect('', network=True)\n"
              "recorded = LocalCluster.running(os.environ['LABKIT_NETWORK_STATE_FILE'])\n"
              "print('attached', recorded.bootstrap_servers == cluster.bootstrap_servers,\n"
              "      cluster.bootstrap_servers, cluster.nodes[1].pid)")
    # Each sharing notebook waits (up to a minute) until the other has started too, so on
    # a busy machine a lane that starts late still meets the other instead of missing it.
    share = ("import pathlib, time, labkit\nfrom labkit.runner.findings import observe\n"
             "print('on', labkit.connect('').bootstrap_servers)\n"
             "meet = pathlib.Path({meet!r})\n(meet / '{me}').touch()\n"
             "deadline = time.monotonic() + 60\n"
             "while not (meet / '{other}').exists() and time.monotonic() < deadline:\n"
             "    time.sleep(0.1)\n"
             "observe('{me}.ran', '{me} ran')")
    meet = str(tmp_path)
    books = (("01_first", attach, ""), ("02_second", attach, ""),
             ("03_share", share.format(meet=meet, me="a", other="b"), "a test"),
             ("04_share", share.format(meet=meet, me="b", other="a"), "b test"))
    books_metadata = {"kernelspec": {"name": "python3", "language": "python",
                                     "display_name": "Python 3"}}
    for name, code, why in books:
        nbformat.write(nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(code)],
            metadata={**books_metadata,
                      **({"labkit": {"shares_the_machine": why}} if why else {})}),
            folder / f"{name}.ipynb")
    rounds = run_report(profile="smoke", outputs=tmp_path / "out", notebooks_dir=folder,
                        progress=False)
    runs = rounds[0]
    assert [(r.name, r.status, r.error) for r in runs] == [
        (f"{name}.ipynb", "ok", "") for name, _, _ in books]
    printed = ["".join(o.get("text", "") for c in nbformat.read(tmp_path / "out" / r.name, 4).cells
                       for o in c.get("outputs", [])).split() for r in runs]
    assert printed[0][:2] == printed[1][:2] == ["attached", "True"]
    network = printed[0][2]
    # one cluster for both, and not the plain one
    assert printed[1][2] == network != cluster3.bootstrap_servers
    assert [r.alongside for r in runs] == [[], [], ["04_share"], ["03_share"]]
    assert sorted([printed[2][:2], printed[3][:2]]) == sorted(
        [["on", network], ["on", cluster3.bootstrap_servers]])
    assert [[f["id"] for f in r.findings] for r in runs[2:]] == [["a.ran"], ["b.ran"]]
    index = (tmp_path / "out" / "index.html").read_text()
    assert "ran two at a time" in index and f"at {network} behind the lab network" in index
    assert os.environ["LABKIT_NETWORK_STATE_FILE"] == nothing
    with pytest.raises(ProcessLookupError):  # the runner's second cluster is stopped
        os.kill(int(printed[0][3]), 0)
    # Without notebooks to share the machine, the second cluster is gone right after the
    # last notebook that asks for it, before the next one runs.
    alone = tmp_path / "alone"
    alone.mkdir()
    after = "import os\nprint('after', os.environ['LABKIT_NETWORK_STATE_FILE'])"
    for name, code in (("01_first", attach), ("02_after", after)):
        nbformat.write(nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(code)], metadata=books_metadata),
            alone / f"{name}.ipynb")
    runs = run_report(profile="smoke", outputs=tmp_path / "out-alone", notebooks_dir=alone,
                      progress=False)[0]
    assert [(r.status, r.error) for r in runs] == [("ok", "")] * 2
    assert "".join(o.get("text", "") for c in nbformat.read(
        tmp_path / "out-alone" / runs[1].name, 4).cells for o in c.get("outputs", [])
    ).split() == ["after", nothing]
