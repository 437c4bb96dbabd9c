"""Findings: checked findings and observations, broken promises in the report, the exit
status and the stability table. Pure logic on hand-made records, plus one notebook with a
broken promise executed through the real runner."""

import json

import nbformat
import pytest

from labkit.runner.findings import check, load, observe
from labkit.runner.report import (
    NotebookRun,
    run_report,
    stability,
    verdict,
    write_findings,
    write_index,
)


def test_checks_and_observations_are_recorded_and_a_broken_promise_does_not_raise(
        tmp_path, monkeypatch, capsys):
    record = tmp_path / "f.jsonl"
    monkeypatch.setenv("LABKIT_FINDINGS_FILE", str(record))
    asked = []
    assert check("a.holds", True, "one is one", evidence=lambda: asked.append(1)) is True
    assert asked == [], "evidence is gathered only for a broken promise"
    assert check("b.breaks", 1 > 2, "one exceeds two", evidence=lambda: ["the table"]) is False
    observe("c.seen", "it took 3.2 s")
    assert load(record) == [
        {"id": "a.holds", "kind": "check", "holds": True, "sentence": "one is one"},
        {"id": "b.breaks", "kind": "check", "holds": False, "sentence": "one exceeds two"},
        {"id": "c.seen", "kind": "observation", "holds": None, "sentence": "it took 3.2 s"},
    ]
    out = capsys.readouterr().out
    assert "HOLDS    one is one" in out and "BROKEN   one exceeds two" in out
    assert "Evidence for b.breaks:" in out and "the table" in out
    assert "OBSERVED it took 3.2 s" in out


def test_evidence_that_cannot_be_gathered_is_reported_not_raised(capsys):
    assert check("d.breaks", False, "x", evidence=lambda: 1 / 0) is False
    assert "gathering the evidence failed" in capsys.readouterr().out


def test_a_bad_finding_id_is_refused():
    with pytest.raises(ValueError, match="finding id 'Bad Id' must be lower case"):
        check("Bad Id", True, "x")
    with pytest.raises(ValueError, match="finding id"):
        observe("", "x")


def test_old_findings_files_read_as_checks(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"id": "a", "holds": True, "sentence": "s"}) + "\n")
    assert load(path) == [{"id": "a", "holds": True, "sentence": "s", "kind": "check"}]


def _runs():
    return [NotebookRun("00_a.ipynb", "ok", 1.0, "", [
                {"id": "a.x", "kind": "check", "holds": True, "sentence": "one is one"},
                {"id": "a.seen", "kind": "observation", "holds": None, "sentence": "took 2 s"}]),
            NotebookRun("01_b.ipynb", "ok", 2.0, "", [
                {"id": "b.y", "kind": "check", "holds": False, "sentence": "two is three"}])]


def test_report_puts_broken_promises_first_and_keeps_the_notebook_ok(tmp_path):
    runs = _runs()
    markdown = write_findings(runs, {"cluster": "test"}, "smoke", tmp_path).read_text()
    assert markdown.index("## Broken promises (1)") < markdown.index("## 00_a")
    assert "- **BROKEN** `b.y` (01_b): two is three" in markdown
    assert "- holds `a.x`: one is one" in markdown and "- observed `a.seen`: took 2 s" in markdown
    assert "2 of 2 notebooks ran to the end; 1 of 2 checked findings held; 1 observations" \
        in markdown
    page = write_index(runs, {"cluster": "test"}, "smoke", tmp_path).read_text()
    assert page.index('<div class="broken"><h2>1 broken promise(s)') < page.index("<th>notebook")
    assert '<tr class="broken"><td>01_b</td><td>b.y</td><td class="status">BROKEN</td>' in page
    assert '<tr class="observation"><td>00_a</td><td>a.seen</td>' in page
    assert '<tr class="ok"><td>01_b</td><td class="status">ok</td>' in page


def test_exit_status_and_last_lines(tmp_path):
    lines, status = verdict([_runs()], tmp_path)
    assert status == 0
    assert lines[0] == "2/2 notebooks ran to the end; 1 of 2 checked findings held; " \
                       "1 observations."
    assert lines[1] == "  BROKEN b.y (01_b): two is three"
    assert "findings.md" in lines[-1]
    assert verdict([_runs()], tmp_path, strict=True)[1] == 1
    crashed = [NotebookRun("00_a.ipynb", "failed", 1.0, "KeyError: 'x'", [])]
    lines, status = verdict([crashed], tmp_path)
    assert status == 1 and "  notebook failed: 00_a: KeyError: 'x'" in lines


def test_stability_counts_the_rounds_each_check_held_in():
    held = _runs()
    mended = [held[0], NotebookRun("01_b.ipynb", "ok", 2.0, "", [
        {"id": "b.y", "kind": "check", "holds": True, "sentence": "two is two"}])]
    table = stability([held, mended, held]).set_index("id")
    assert table.loc["a.x", ["held", "runs", "rounds"]].tolist() == [3, 3, 3]
    assert table.loc["b.y", ["held", "runs", "rounds"]].tolist() == [1, 3, 3]
    assert table.loc["b.y", "broken"] == ["round 1: two is three", "round 3: two is three"]
    assert "a.seen" not in table.index, "observations are not checked"


def test_a_bad_repeat_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="repeat=0 is not allowed"):
        run_report(profile="smoke", repeat=0, outputs=tmp_path, progress=False)


@pytest.mark.notebooks
def test_a_notebook_with_a_broken_promise_runs_to_the_end_and_shows_its_evidence(
        cluster3, tmp_path):
    book = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    book.cells = [
        nbformat.v4.new_code_cell(
            'profile: str = "smoke"  # run size\nbootstrap_servers: str = ""  # cluster\n'
            "interactive: bool = False  # panel", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import pandas as pd\nfrom labkit.runner.findings import check\n"
            "lost = pd.DataFrame({'msg_id': [7, 9]})\n"
            "check('z.no-loss', lost.empty, f'{len(lost)} acknowledged messages lost.',\n"
            "      evidence=lambda: lost.assign(why='evidence-row'))"),
        nbformat.v4.new_code_cell("print('the notebook went on')"),
    ]
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(book, folder / "99_broken_promise.ipynb")
    rounds = run_report(profile="smoke", outputs=tmp_path / "out", notebooks_dir=folder,
                        progress=False, repeat=2)
    run = rounds[-1][0]
    assert run.status == "ok", run.error
    assert run.broken == [{"id": "z.no-loss", "kind": "check", "holds": False,
                           "sentence": "2 acknowledged messages lost."}]
    page = (tmp_path / "out" / "99_broken_promise.html").read_text()
    assert "evidence-row" in page and "the notebook went on" in page
    assert "z.no-loss` | 0 | 2 | 2 |" in (tmp_path / "out" / "stability.md").read_text()
    assert verdict(rounds, tmp_path / "out", strict=True)[1] == 1
    assert verdict(rounds, tmp_path / "out")[1] == 0
