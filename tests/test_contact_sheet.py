"""The contact sheet (outputs/figures.html): every chart of executed notebooks on one page,
each with its notebook and a caption taken from the notebook's own text."""

import base64
import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402

from labkit.runner import contact_sheet  # noqa: E402


def small_png() -> str:
    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def executed(folder, name, cells):
    book = nbformat.v4.new_notebook()
    book.cells = cells
    nbformat.write(book, folder / name)


def chart_cell(source, *pngs):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png,
                                                                 "text/plain": "<Figure>"})
                    for png in pngs]
    return cell


def test_the_sheet_shows_each_chart_with_its_caption_and_each_notebook(tmp_path):
    png = small_png()
    executed(tmp_path, "04_batching.ipynb", [
        nbformat.v4.new_markdown_cell("# 04 · Batching and `linger.ms`\n\nIntro."),
        nbformat.v4.new_markdown_cell("Throughput under **linger**. More text."),
        chart_cell("plots.frontier(table);", png),
        nbformat.v4.new_markdown_cell("## Two at once\n\nSee [both](x)."),
        chart_cell("for t in tables:\n    plots.partition_heatmap(t)", png, png),
    ])
    executed(tmp_path, "13_offset_reset.ipynb", [
        nbformat.v4.new_markdown_cell("# 13 · Offset reset"), nbformat.v4.new_code_cell("1")])
    sheet = contact_sheet.write(tmp_path, ["04_batching.ipynb", "13_offset_reset.ipynb",
                                           "20_crash.ipynb"], {"20_crash.ipynb": "Boom: no"})
    page = sheet.read_text()
    assert sheet == tmp_path / "figures.html"
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 3
    assert "Throughput under linger." in page and "More text" not in page
    assert "plots.frontier" in page and "plots.partition_heatmap" in page
    assert "<b>Two at once.</b> See both. (1/2)" in page and "(2/2)" in page
    assert '<a href="04_batching.html">04 · Batching and linger.ms</a>' in page
    assert '<a href="13_offset_reset.html">13 · Offset reset</a>' in page
    assert page.count("no chart") == 1 and "failed: Boom: no" in page
    assert "<script" not in page


def test_captions_are_one_plain_sentence():
    assert contact_sheet.caption("Rate, e.g. 5 msg/s. Then more.") == ("", "Rate, e.g. 5 msg/s.")
    assert contact_sheet.caption("## The timeline\n\nOne panel per `producer`:") == (
        "The timeline", "One panel per producer")
    assert contact_sheet.caption("# 01 · Title\n\n- a *list* item. Two.") == ("", "a list item.")
    assert contact_sheet.chart_functions("ax = wire.plot.bar(rot=0)") == "pandas .plot.bar"
    assert contact_sheet.chart_functions("plots.use_lab_style()\nplt.subplots()") == "matplotlib"
