"""The notebooks: naming, parameters, stripped outputs, the README table, and a smoke run
of every notebook through the report runner against the session's real cluster."""

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from labkit.runner.report import NOTEBOOK_NAME, notebooks, run_report, verdict

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
    if "network=True" in path.read_text():  # its labkit.connect(network=True) attaches to it
        request.getfixturevalue("cluster3net")
    rounds = run_report(profile="smoke", only=path.name[:2], outputs=tmp_path, progress=False)
    assert [r.name for r in rounds[0]] == [path.name]
    run = rounds[0][0]
    assert run.status == "ok", run.error
    assert (tmp_path / run.name).exists() and (tmp_path / f"{run.stem}.html").exists()
    index = (tmp_path / "index.html").read_text()
    assert f'href="{run.stem}.html"' in index and "librdkafka" in index and "4.4.0" in index
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
