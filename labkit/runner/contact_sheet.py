"""The contact sheet: every chart of an executed series on one page (``outputs/figures.html``).

``write()`` reads the executed notebooks in ``outputs/`` and lays out every ``image/png``
output, in series order, under a heading per notebook that links to its HTML page. Each
chart gets a one-line caption taken from the notebook's own text (``caption``) and the chart
function its cell called (``chart_functions``). The images are embedded as data URIs, so the
page is one file, and it needs no JavaScript. A notebook that failed or drew nothing says so
in one line, so the sheet lists every notebook of the run.

Pure: it reads notebook JSON and writes HTML; it never runs a notebook.
"""

from __future__ import annotations

import base64
import html
import json
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

CAPTION_CHARS = 160
WIDE_PX = 1000  # charts at least this wide (or taller than wide) span the whole row

_MARKDOWN = [  # (pattern, replacement), applied in order: inline markdown -> plain text
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> its alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # link -> its text
    (re.compile(r"`+([^`]*)`+"), r"\1"),
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])[*_]([^*_\s][^*_]*?)[*_](?![\w*])"), r"\1"),
    (re.compile(r"<[^>]+>"), ""),
]
_SENTENCE_END = re.compile(  # a stop and a space, but not after "e.g." and the like
    r"(?<=[.!?])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<!\betc\.)(?<!\bcf\.)\s+")
_CHART_CALL = re.compile(r"\bplots\.([A-Za-z_]\w*)\s*\(")
_PANDAS_CALL = re.compile(r"\.plot(?:\.(\w+))?\s*\(")
_NOT_CHARTS = {"use_lab_style", "audit_table", "recorded_calls", "draw"}


@dataclass
class Chart:
    """One image output of an executed notebook.

    Attributes:
        png: the image, base64 as stored in the notebook.
        heading: the section heading of the markdown cell above the code cell ("" if none).
        caption: the first sentence of that cell's text ("" if there is none).
        functions: the chart functions the cell called, e.g. "plots.frontier".
        number: 1-based position among the images of the same cell.
        of: how many images the cell produced.
    """

    png: str
    heading: str
    caption: str
    functions: str
    number: int = 1
    of: int = 1

    def size(self) -> tuple[int, int] | None:
        """(width, height) in pixels from the PNG header, or None if it cannot be read."""
        try:
            head = base64.b64decode(self.png[:44])
        except ValueError:
            return None
        if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24:
            return None
        return struct.unpack(">II", head[16:24])


def plain(markdown: str) -> str:
    """Markdown inline syntax stripped to plain text, on one line."""
    text = " ".join(markdown.split())
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    return text.strip()


def _shorten(text: str, limit: int = CAPTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def caption(markdown: str) -> tuple[str, str]:
    """The one-line caption a markdown cell gives the charts below it: (heading, sentence).

    The heading is the section heading the cell opens with ("" if none; a level-1 heading
    is the notebook's title, already on the sheet, so it is skipped); the sentence is the
    first sentence of the text after it ("" if none). Markdown syntax is stripped, a
    trailing colon dropped, and a long sentence cut at a word.
    """
    heading = ""
    for block in (b.strip() for b in re.split(r"\n\s*\n", markdown) if b.strip()):
        lines = block.splitlines()
        found = re.match(r"(#{1,6})\s+(.*)", lines[0])
        if found:
            if len(found.group(1)) > 1 and not heading:
                heading = _shorten(plain(found.group(2)).rstrip(":"))
            block = "\n".join(lines[1:]).strip()
            if not block:
                continue
        text = plain(re.sub(r"^\s*(?:[-*+>]|\d+\.)\s+", "", block, flags=re.M))
        return heading, _shorten(_SENTENCE_END.split(text, maxsplit=1)[0].rstrip(":").strip())
    return heading, ""


def chart_functions(source: str) -> str:
    """The chart functions a code cell calls: ``plots.*`` first, else pandas or matplotlib."""
    found = [f"plots.{name}" for name in dict.fromkeys(_CHART_CALL.findall(source))
             if name not in _NOT_CHARTS]
    if found:
        return ", ".join(found)
    pandas = list(dict.fromkeys(_PANDAS_CALL.findall(source)))
    if pandas:
        return ", ".join(f"pandas .plot.{kind}" if kind else "pandas .plot" for kind in pandas)
    return "matplotlib"


def title(cells: list[dict], stem: str) -> str:
    """The notebook's first markdown heading as plain text, numbered; else its file stem."""
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        for line in _source(cell).splitlines():
            heading = re.match(r"#{1,6}\s+(.*)", line)
            if heading:
                text = plain(heading.group(1))
                return text if text.startswith(stem[:2]) else f"{stem[:2]} · {text}"
    return stem


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def charts(notebook: dict) -> list[Chart]:
    """Every PNG output of an executed notebook (nbformat 4 JSON), in cell order."""
    found: list[Chart] = []
    markdown = ""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            markdown = _source(cell)
            continue
        pngs = [output["data"]["image/png"] for output in cell.get("outputs", [])
                if output.get("output_type") in ("display_data", "execute_result")
                and "image/png" in output.get("data", {})]
        if not pngs:
            continue
        (heading, sentence), functions = caption(markdown), chart_functions(_source(cell))
        for number, png in enumerate(pngs, start=1):
            data = "".join(png) if isinstance(png, list) else png
            found.append(Chart("".join(data.split()), heading, sentence, functions, number,
                               len(pngs)))
    return found


def _error_in(notebook: dict) -> str:
    """The first error output of an executed notebook, one line ("" if none)."""
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".splitlines()[0]
    return ""


def _read(path: Path) -> dict | None:
    """An executed notebook's JSON; None if it is missing or unreadable (the sheet says so)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; background: #fafafa; }
h1 { margin-bottom: 0.2em; }
p.lead { color: #555; margin-top: 0; }
nav { font-size: 0.9em; line-height: 1.8; margin-bottom: 1.5em; }
nav a { margin-right: 0.8em; white-space: nowrap; }
nav a.none { color: #999; }
section { margin-bottom: 2.5em; }
section h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
section h2 a { color: inherit; text-decoration: none; }
section h2 a:hover { text-decoration: underline; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(520px, 100%), 1fr));
        gap: 1.2em; align-items: start; }
figure { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 4px;
         padding: 0.6em; }
figure.wide { grid-column: 1 / -1; }
figure img { display: block; max-width: 100%; width: auto; height: auto; margin: 0 auto; }
figcaption { font-size: 0.92em; margin-top: 0.5em; line-height: 1.35; }
figcaption .fn { display: block; color: #888; font-size: 0.85em; font-family: monospace;
                 margin-top: 0.15em; }
p.note { color: #777; font-style: italic; margin: 0.3em 0; }
p.note.failed { color: #b00; font-style: normal; }
"""


def _figure(chart: Chart) -> str:
    esc = html.escape
    count = f" ({chart.number}/{chart.of})" if chart.of > 1 else ""
    size = chart.size()
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    # A multi-panel or tall chart would shrink illegibly into one column: it gets the row.
    wide = ' class="wide"' if size and (size[0] >= WIDE_PX or size[1] > size[0]) else ""
    alt = esc(" ".join(filter(None, [chart.heading, chart.caption])) or chart.functions)
    heading = ""
    if chart.heading:
        stop = "" if chart.heading[-1] in ".!?…" or not chart.caption else "."
        heading = f"<b>{esc(chart.heading)}{stop}</b> "
    return (f'<figure{wide}><img src="data:image/png;base64,{chart.png}" alt="{alt}"{dims} '
            f'loading="lazy"><figcaption>{heading}{esc(chart.caption)}{count}'
            f'<span class="fn">{esc(chart.functions)}</span></figcaption></figure>')


def write(outputs: Path, names: Iterable[str], errors: Mapping[str, str] | None = None,
          subtitle: str = "") -> Path:
    """Write ``outputs/figures.html`` from the executed notebooks named, in that order.

    Args:
        outputs: the folder holding the executed notebooks (``NN_name.ipynb``) and their
            HTML pages (``NN_name.html``), where the sheet is written.
        names: the notebook file names, in series order.
        errors: each failed notebook's error, one line; a notebook not in it that holds an
            error output is shown as failed with that error.
        subtitle: a line shown under the page title (e.g. the profile).

    Returns:
        The path of the page written.
    """
    esc = html.escape
    errors = errors or {}
    outputs = Path(outputs)
    sections, links, total = [], [], 0
    for name in names:
        stem = name.removesuffix(".ipynb")
        path = outputs / name
        notebook = _read(path)
        found = charts(notebook or {})
        total += len(found)
        heading = title((notebook or {}).get("cells", []), stem)
        notes = []
        error = errors.get(name) or _error_in(notebook or {})
        if notebook is None:
            error = error or ("not executed" if not path.exists() else "unreadable notebook")
        if error:
            notes.append(f'<p class="note failed">failed: {esc(error)}</p>')
        if not found and notebook is not None:
            notes.append('<p class="note">no chart</p>')
        grid = f'<div class="grid">{"".join(_figure(c) for c in found)}</div>' if found else ""
        link = f"{esc(stem)}.html"
        sections.append(f'<section id="{esc(stem)}"><h2><a href="{link}">{esc(heading)}</a></h2>'
                        f'{"".join(notes)}{grid}</section>')
        links.append(f'<a href="#{esc(stem)}"{"" if found else " class=none"}>'
                     f'{esc(stem[:2])}&nbsp;({len(found)})</a>')
    extra = f", {esc(subtitle)}" if subtitle else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Kafka lab: every chart</title><style>{_STYLE}</style></head><body>
<h1>Every chart of the series</h1>
<p class="lead">{total} charts from {len(sections)} notebooks{extra},
generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}. Each heading opens its notebook;
<a href="index.html">back to the report</a>.</p>
<nav>Charts per notebook: {' '.join(links)}</nav>
{chr(10).join(sections)}
</body></html>
"""
    sheet = outputs / "figures.html"
    sheet.write_text(page)
    return sheet
