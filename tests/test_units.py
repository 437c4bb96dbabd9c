"""Pure logic, no broker: profiles, findings, client config files, tool discovery."""

import json

import pytest

from labkit import jars
from labkit.cluster import read_client_config
from labkit.findings import FindingFailed, check
from labkit.profiles import choose


def test_profile_choice_and_bad_profile():
    assert choose("smoke", smoke=1, standard=2, full=3) == 1
    assert choose("full", smoke=1, standard=2, full=3) == 3
    with pytest.raises(ValueError, match="'quick'.*smoke, standard, full"):
        choose("quick", smoke=1, standard=2, full=3)


def test_findings_are_recorded_and_a_false_one_fails(tmp_path, monkeypatch, capsys):
    record = tmp_path / "f.jsonl"
    monkeypatch.setenv("LABKIT_FINDINGS_FILE", str(record))
    check("a.holds", True, "one is one")
    with pytest.raises(FindingFailed, match="b.fails"):
        check("b.fails", 1 > 2, "one exceeds two")
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [{"id": "a.holds", "holds": True, "sentence": "one is one"},
                     {"id": "b.fails", "holds": False, "sentence": "one exceeds two"}]
    assert "HOLDS   one is one" in capsys.readouterr().out
    with pytest.raises(ValueError, match="finding id 'Bad Id'"):
        check("Bad Id", True, "x")


def test_client_config_file(tmp_path):
    path = tmp_path / "c.properties"
    path.write_text("# SASL\n! a comment\n\nsecurity.protocol = SASL_SSL\nsasl.mechanism=PLAIN\n")
    assert read_client_config(path) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}
    path.write_text("security.protocol SASL_SSL\n")
    with pytest.raises(ValueError, match="c.properties:1: expected key=value"):
        read_client_config(path)
    with pytest.raises(ValueError, match="not a file"):
        read_client_config(tmp_path / "missing.properties")


def test_missing_maven_or_java_says_what_to_install(monkeypatch, tmp_path):
    with pytest.raises(jars.MissingTool, match="install Maven"):
        jars.find_maven(path=str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(jars.MissingTool, match="install OpenJDK 17"):
        jars.find_java(path=str(tmp_path))


def test_old_java_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(jars.MissingTool, match="is Java 11.*Java 17 or newer"):
        jars.find_java()


def test_findings_report_marks_a_failed_finding(tmp_path):
    from labkit.report import NotebookRun, write_findings, write_index

    runs = [NotebookRun("00_a.ipynb", "ok", 1.0, "", [
                {"id": "a.x", "holds": True, "sentence": "one is one"}]),
            NotebookRun("01_b.ipynb", "failed", 2.0, "FindingFailed: b.y", [
                {"id": "b.y", "holds": False, "sentence": "two is three"}])]
    markdown = write_findings(runs, {"cluster": "test"}, "smoke", tmp_path).read_text()
    assert "- holds `a.x`: one is one" in markdown
    assert "- **FAILED** `b.y`: two is three" in markdown
    page = write_index(runs, {"cluster": "test"}, "smoke", tmp_path).read_text()
    assert '<tr class="failed"><td>01_b</td><td>b.y</td><td>FAILED</td>' in page
    assert '<tr class="ok"><td>00_a</td><td>a.x</td><td>holds</td>' in page
    assert "1 of 2 notebooks ok" in page
