"""Finding sentences are computed from the run: read from the notebooks' sources, no broker.

Every ``check(...)`` and ``observe(...)`` call in every notebook is found with ``ast``; its
sentence argument is rendered as its *literal* text, each computed part (an f-string's
``{...}``, a variable, a call) standing as ``{}``. A number in that literal text followed by
a measurement word or unit ("0 lost", "0 duplicates", "60 s", "100%") is a measured quantity
typed by hand: it reads the same whether or not the run supports it, so the test fails.
Configuration names (``acks=1``, ``KIP-848``, ``p99``, ``linger.ms={}``) are not numbers
standing alone, and pass.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from itertools import product
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FINDING_FUNCTIONS = ("check", "observe")
HOLE = "{}"  # how a computed part of a sentence stands in its literal text
MAX_VARIANTS = 64  # conditional expressions multiply the renderings; more than this is cut

# What a measured number is followed by: units, and the words that count an outcome.
MEASURE_WORDS = (
    "%", "percent", "x",
    r"[µu]s", "ns", "ms", "s", r"secs?", r"seconds?", "min", r"minutes?", "h", r"hours?",
    "B", r"[KMG]i?B", r"bytes?", r"msgs?/s", r"msgs?",
    "of", "times", "lost", "missing", "dropped", "skipped", r"duplicates?", "duplicated",
    "reordered", "redone", "failed", r"failures?", r"errors?", r"timeouts?", r"timed\s+out",
    "retries", "refused", r"gaps?", "acked", "acknowledged", "unacknowledged", "delivered",
    "undelivered", "unreported", "reported", "processed", "redelivered", "rejected",
    "committed", "aborted", r"messages?", r"records?", r"rows?", r"writes?", r"requests?",
    "batches", r"callbacks?", r"offsets?", r"partitions?", r"members?", r"hand-?overs?",
    r"rebalances?", r"moves?", r"pauses?", r"stalls?",
)
# Words before a number that make it a name, not a quantity: "partition 0 acknowledged".
NAMING_WORDS = ("partition", "broker", "node", "member", "step", "run", "phase", "version")
# A number standing alone (not part of a name or setting: acks=1, KIP-848, p99, m2, 0.5),
# with thousands separators or decimals, then a measure word.
TYPED_QUANTITY = re.compile(
    "".join(rf"(?<!{word}\s)" for word in NAMING_WORDS)
    + r"(?<![\w.=\-+/])(\d+(?:[.,_]\d+)*)\s*(" + "|".join(MEASURE_WORDS) + r")(?![\w/])",
    re.IGNORECASE,
)


def literal_texts(node: ast.expr, names: dict[str, list[ast.expr]] | None = None,
                  depth: int = 0) -> list[str]:
    """The literal text a sentence expression can take, each computed part shown as ``{}``.

    Args:
        node: the sentence argument of a finding call.
        names: string expressions assigned to each variable in the same cell, so that a
            sentence built in steps (``other = ", ".join(...)``) is read too.
        depth: how many variables deep this is (cut at 3).

    Returns:
        One rendering per branch of the conditional expressions in it (at most MAX_VARIANTS).
    """
    names = names or {}

    def render(n: ast.expr) -> list[str]:
        return literal_texts(n, names, depth)

    def concat(parts: list[list[str]]) -> list[str]:
        return ["".join(p) for p in product(*parts)][:MAX_VARIANTS]

    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else [HOLE]
    if isinstance(node, ast.JoinedStr):  # f"...": the format spec of a {} is not literal text
        return concat([render(v) if isinstance(v, ast.Constant) else [HOLE]
                       for v in node.values])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return concat([render(node.left), render(node.right)])
    if isinstance(node, ast.IfExp):
        return (render(node.body) + render(node.orelse))[:MAX_VARIANTS]
    if isinstance(node, ast.BoolOp):  # `text or "none"`
        return [t for v in node.values for t in render(v)][:MAX_VARIANTS]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner, method = node.func.value, node.func.attr
        if method == "join" and len(node.args) == 1:
            separators, items = render(owner), node.args[0]
            if isinstance(items, (ast.GeneratorExp, ast.ListComp)):
                element = render(items.elt)  # twice, to show the separator between two
                return concat([element, separators, element])
            if isinstance(items, (ast.List, ast.Tuple)):
                parts = []
                for i, item in enumerate(items.elts):
                    parts += [separators] if i else []
                    parts.append(render(item))
                return concat(parts)
            return [HOLE]
        if method == "format" and isinstance(owner, ast.Constant) and isinstance(owner.value, str):
            return [re.sub(r"\{[^{}]*\}", HOLE, owner.value)]
    if isinstance(node, ast.Name) and node.id in names and depth < 3:
        return [t for value in names[node.id]
                for t in literal_texts(value, names, depth + 1)][:MAX_VARIANTS]
    return [HOLE]


def typed_quantities(text: str) -> list[str]:
    """The measured quantities typed into a sentence's literal text, e.g. ``["0 lost"]``."""
    return [m.group(0) for m in TYPED_QUANTITY.finditer(text)]


def _is_finding_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in FINDING_FUNCTIONS
    return (isinstance(func, ast.Attribute) and func.attr in FINDING_FUNCTIONS
            and isinstance(func.value, ast.Name) and func.value.id == "findings")


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def finding_calls(source: str) -> list[dict]:
    """The finding calls in a cell's source.

    Args:
        source: Python source of one code cell (IPython ``%`` and ``!`` lines are skipped).

    Returns:
        One dict per call: function, id (the literal id string, or None if it is computed),
        line, texts (the literal renderings of its sentence) and typed (the typed
        measured quantities found in them).
    """
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())
    tree = ast.parse(code)
    names: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).append(node.value)
    calls = []
    for node in ast.walk(tree):
        if not _is_finding_call(node):
            continue
        function = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        ident = _argument(node, 0, "finding_id")
        sentence = _argument(node, 2 if function == "check" else 1, "sentence")
        texts = literal_texts(sentence, names) if sentence is not None else []
        calls.append({
            "function": function,
            "id": ident.value if isinstance(ident, ast.Constant) and isinstance(ident.value, str)
            else None,
            "line": node.lineno,
            "texts": texts,
            "typed": sorted({q for t in texts for q in typed_quantities(t)}),
        })
    return sorted(calls, key=lambda c: c["line"])


def notebook_findings(path: Path) -> list[dict]:
    """The finding calls of every code cell of a notebook, with the cell id."""
    nb = nbformat.read(path, as_version=4)
    return [dict(call, notebook=path.name, cell=cell.get("id"))
            for cell in nb.cells if cell.cell_type == "code"
            for call in finding_calls(cell.source)]


# ---- the detector itself, on hand-made sources ---------------------------------------------

BAD = {
    "typed zero": 'check("x.a", ok, f"{n} messages acknowledged, 0 failed.")',
    "typed counts": 'check("x.b", ok, f"{n} found: 0 duplicates, 0 reordered, 0 lost")',
    "typed seconds": 'check("x.c", ok, f"With the {name} at its 60 s default it waited.")',
    "typed percent": 'observe("x.d", "The busiest partition took 100% of them.")',
    "typed gaps": 'check("x.e", ok, f"{r:,} rows, " + "0 duplicates, 0 gaps.")',
    "in a branch": 'check("x.f", ok, f"{a}" + (" 3 ms" if fast else f" {ms} ms"))',
    "in a join": 'check("x.g", ok, ", ".join(f"{m}: 0 hand-overs" for m in ms))',
    "a keyword sentence": 'observe("x.h", sentence=f"it took 1.5 s for {n}")',
    "via a variable": 'tail = f"{n} kept, 0 lost"\ncheck("x.i", ok, "Result: " + tail)',
    "thousands": 'check("x.j", ok, f"{k} read 1,000 messages")',
}
GOOD = {
    "filled zero": 'check("y.a", ok, f"{n} delivered, {failed} failed.")',
    "settings": 'check("y.b", ok, f"acks=1 vs acks=all, KIP-848, p99 {p:.1f} ms, RF {rf}")',
    "config values": 'check("y.c", ok, f"linger.ms={hi} vs linger.ms=5, min.insync.replicas=2")',
    "format spec": 'observe("y.d", f"{share:.0%} of the messages, {t:,.1f} s")',
    "member names": 'check("y.e", ok, f"m2 and m3 on {n} partitions: poll(0) after each")',
    "words": 'check("y.f", ok, f"none lost, one per transaction, {n} ms")',
    "names": 'check("y.g", ok, f"partition 0 acknowledged nothing; broker 1 led {n} partitions")',
    "not a finding": 'print(f"0 lost in 60 s")',
}


@pytest.mark.parametrize("name", BAD)
def test_detector_flags_a_typed_quantity(name):
    [call] = finding_calls(BAD[name])
    assert call["typed"], f"{name}: {call['texts']} passed"


@pytest.mark.parametrize("name", GOOD)
def test_detector_passes_computed_quantities(name):
    calls = finding_calls(GOOD[name])
    assert all(not c["typed"] for c in calls), calls


def test_detector_reads_every_part_of_a_sentence():
    [call] = finding_calls(
        'check("z.a", ok, f"{a} sent, " + (f"{b} kept" if b else "none") + '
        '", ".join(f"{p} to {q}" for p, q in xs) + "".join([x, " end"]))')
    assert call["id"] == "z.a"
    assert call["texts"] == ["{} sent, {} kept{} to {}, {} to {}{} end",
                             "{} sent, none{} to {}, {} to {}{} end"]
    [computed] = finding_calls('observe(prefix + "x", f"{n} found")')
    assert computed["id"] is None


# ---- every notebook ------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_finding_sentences_type_no_measured_quantity(path):
    calls = notebook_findings(path)
    typed = [f"{c['id']} (cell {c['cell']}): {', '.join(repr(q) for q in c['typed'])}"
             for c in calls if c["typed"]]
    assert not typed, ("sentences that type a measured quantity instead of filling it from "
                       "the run:\n  " + "\n  ".join(typed))


def test_every_finding_call_is_found():
    """The parser sees every finding call a notebook makes (no sentence escapes the test)."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        written = sum(len(re.findall(r"(?<![\w.])(?:findings\.)?(?:check|observe)\(", c.source))
                      for c in nb.cells if c.cell_type == "code")
        assert len(notebook_findings(path)) == written, path.name


def test_finding_ids_are_literal_and_unique_across_notebooks():
    calls = [c for path in NOTEBOOKS for c in notebook_findings(path)]
    assert calls, "no finding calls found in the notebooks"
    computed = [f"{c['notebook']} line {c['line']} of cell {c['cell']}"
                for c in calls if c["id"] is None]
    assert not computed, f"finding ids must be literal strings: {computed}"
    repeated = {i: n for i, n in Counter(c["id"] for c in calls).items() if n > 1}
    assert not repeated, f"finding ids used more than once: {repeated}"
