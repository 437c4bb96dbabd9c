"""The control panels drive the same functions as the batch path, against a real broker."""

import queue
import time

import matplotlib
import pandas as pd
import pytest

from labkit.cluster import unique_name
from labkit.viz.widgets import network_panel, producer_panel

matplotlib.use("Agg")


def find(widget, description):
    if getattr(widget, "description", None) == description:
        return widget
    for child in getattr(widget, "children", ()):
        found = find(child, description)
        if found is not None:
            return found
    return None


def test_producer_panel_runs_and_keeps_runs_for_comparison(cluster1, capsys):
    topic = unique_name("panel")
    cluster1.create_topic(topic, partitions=3)
    panel = producer_panel(cluster1, [topic], messages=500)
    find(panel, "acks").value = "all"
    find(panel, "compression").value = "zstd"
    find(panel, "keys").value = "uniform"
    find(panel, "Run").click()
    find(panel, "acks").value = "0"
    find(panel, "Run").click()
    assert [r.label for r in panel.runs] == [
        "acks=all linger.ms=5 batch.size=1000000 compression.type=zstd "
        "partitioner=consistent_random",
        "acks=0 linger.ms=5 batch.size=1000000 compression.type=zstd "
        "partitioner=consistent_random",
    ]
    assert all(r.delivered == 500 for r in panel.runs)
    assert panel.runs[0].workload["keys"] == "uniform"
    capsys.readouterr()
    find(panel, "messages").value = -5  # bad input: one clear message, no new run
    find(panel, "Run").click()
    assert len(panel.runs) == 2
    # (Outside a kernel the Output widget does not capture, so the message reaches stdout.)
    assert "error: messages=-5 must be a positive integer" in capsys.readouterr().out
    find(panel, "Clear runs").click()
    assert panel.runs == []


def test_consumer_panel_drives_a_group(cluster1):
    from labkit.viz.widgets import consumer_panel

    topic = unique_name("cpanel")
    cluster1.create_topic(topic, partitions=2)
    panel = consumer_panel(cluster1, [topic])
    find(panel, "members").value = 2
    find(panel, "strategy / protocol").value = "cooperative-sticky (classic)"
    find(panel, "messages to feed").value = 300
    try:
        find(panel, "Start").click()
        group = panel.group
        assert group.config["partition.assignment.strategy"] == "cooperative-sticky"
        group.wait_for_stable(60)
        find(panel, "Feed").click()
        group.wait_for_messages(300, 60)
        find(panel, "Add member").click()
        assert len(group.members) == 3
        find(panel, "Crash member").click()
        assert len(group.members) == 2
        assert "crash" in set(group.events().kind)
    finally:
        find(panel, "Stop").click()
    assert not group.members


def test_network_panel_runs_measure_and_keeps_runs(cluster3net, capsys):
    topic = unique_name("net-panel")
    cluster3net.create_topic(topic, partitions=3, replication_factor=3)
    panel = network_panel(cluster3net, [topic])
    find(panel, "broker delay ms (one way)").value = 5
    find(panel, "acks").value = "all"
    find(panel, "rate msg/s").value = 200
    find(panel, "seconds").value = 0.5
    find(panel, "Run").click()
    find(panel, "client link Mbit/s (0=none)").value = 0.5
    find(panel, "compression").value = "zstd"
    find(panel, "Run").click()
    first, second = panel.measured
    assert first.delay_ms == 5 and first.link_mbit is None and first.run.delivered == 100
    assert second.link_mbit == 0.5 and second.run.config["compression.type"] == "zstd"
    assert cluster3net.network.links().empty
    capsys.readouterr()
    find(panel, "client link Mbit/s (0=none)").value = -1  # bad input: one sentence, no run
    find(panel, "Run").click()
    assert len(panel.measured) == 2
    assert "error: link_mbit=-1.0 must be a number >= 0.001" in capsys.readouterr().out
    find(panel, "Clear runs").click()
    assert panel.measured == []


def test_panel_figures_are_unknown_to_pyplot_and_drawn_as_in_it():
    """Inside plots.unregistered_figures() a chart's figure is not pyplot's (no kernel thread
    can draw it behind the panel's back) and saves the same picture as pyplot's would."""
    import io

    import matplotlib.pyplot as plt
    import numpy as np
    import PIL.Image

    from labkit.viz import plots

    def pixels(fig) -> np.ndarray:
        image = io.BytesIO()
        fig.savefig(image, format="png", bbox_inches="tight")
        return np.asarray(PIL.Image.open(io.BytesIO(image.getvalue())))

    table = pd.DataFrame({"m1": [10.0, 30.0, 20.0], "m2": [5.0, 15.0, 25.0]},
                         index=[0.0, 1.0, 2.0])
    plt.close("all")
    known = plots.throughput_per_member(table)
    assert plt.get_fignums() == [known.number]
    with plots.unregistered_figures():
        unknown = plots.throughput_per_member(table)
        fig, axes = plots.subplots(1, 2, sharey=True, figsize=(6, 2), layout="constrained")
    assert plt.get_fignums() == [known.number], "a panel figure reached pyplot"
    assert unknown not in map(plt.figure, plt.get_fignums())
    assert fig.get_layout_engine() is not None and axes[0].get_shared_y_axes().joined(*axes)
    np.testing.assert_array_equal(pixels(unknown), pixels(known))
    plt.close("all")


def test_the_producer_panel_never_asks_pyplot_for_a_figure(cluster1, monkeypatch):
    import matplotlib.pyplot as plt

    made = []
    figure = plt.figure
    monkeypatch.setattr(plt, "figure", lambda *a, **k: made.append(a) or figure(*a, **k))
    topic = unique_name("panel")
    cluster1.create_topic(topic, partitions=3)
    panel = producer_panel(cluster1, [topic], messages=200)
    find(panel, "Run").click()
    assert len(panel.runs) == 1 and made == []


def _kernel_run(kc, code: str, subshell: str | None = None) -> str:
    """Send ``code`` as an execute request (on ``subshell``, if given); return its msg_id."""
    msg = kc.session.msg("execute_request", {
        "code": code, "silent": False, "store_history": False, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})
    if subshell:
        msg["header"]["subshell_id"] = subshell
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def _kernel_outputs(kc, until: str, text: str | None = None,
                    timeout: float = 60) -> list[tuple[str, str, str]]:
    """(parent msg_id, msg type, text or mime types) of the kernel's outputs, until the
    request ``until`` prints ``text`` or, without ``text``, until it has finished."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        parent, kind, content = msg["parent_header"].get("msg_id"), msg["msg_type"], msg["content"]
        if kind == "stream":
            seen.append((parent, kind, content["text"].strip()))
            if text is not None and parent == until and seen[-1][2] == text:
                return seen
        elif kind == "display_data":
            seen.append((parent, kind, ",".join(sorted(content["data"]))))
        elif kind == "error":
            seen.append((parent, kind, f"{content['ename']}: {content['evalue']}"))
        elif (kind == "status" and parent == until and content["execution_state"] == "idle"
              and text is None):
            return seen
    raise AssertionError(f"the kernel did not get to the end of {until} in {timeout} s: {seen}")


@pytest.mark.parametrize("lab_style", [True, False])
def test_a_click_handled_on_a_subshell_leaves_a_running_cells_figure_alone(lab_style):
    # A real kernel (ipykernel 7, subshells): a button's messages go to the subshell its
    # last message came from; a click is handled there while a cell on the main thread is
    # building a pyplot figure. comm fires post_execute after the click, on that thread.
    # (`%matplotlib inline` first, as a user may type: the hooks are then registered
    # before use_lab_style; the next test covers the notebooks' way.)
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        setup = _kernel_run(kc, "\n".join([
            "%matplotlib inline",
            "import threading, time",
            "import ipywidgets, matplotlib.pyplot as plt",
            "from labkit.viz import plots",
            "plots.use_lab_style()" if lab_style else "",
            "clicks, ends = [], []",
            "get_ipython().events.register(",  # after matplotlib's hooks: when they are done
            "    'post_execute', lambda: ends.append(threading.current_thread().name))",
            "button = ipywidgets.Button()",
            "button.on_click(lambda _: clicks.append(threading.current_thread().name))",
            "print('comm', button.comm.comm_id)"]))
        printed = [text.split() for parent, kind, text in _kernel_outputs(kc, setup)
                   if parent == setup and kind == "stream" and text.startswith("comm ")]
        assert len(printed) == 1, printed
        comm_id = printed[0][1]
        kc.control_channel.send(kc.session.msg("create_subshell_request", {}))
        subshell = kc.control_channel.get_msg(timeout=30)["content"]["subshell_id"]
        _kernel_outputs(kc, _kernel_run(kc, "button.description = 'moved'", subshell))
        cell = _kernel_run(kc, "\n".join([
            "ends.clear()",
            "fig, ax = plt.subplots(); ax.plot([1, 2]); print('drawing', flush=True)",
            "deadline = time.monotonic() + 30",
            "while not ends and time.monotonic() < deadline:",
            "    time.sleep(0.05)",
            "print(plt.get_fignums(), clicks)"]))
        _kernel_outputs(kc, cell, text="drawing")
        click = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {
            "method": "custom", "content": {"event": "click"}}})
        kc.shell_channel.send(click)
        seen = _kernel_outputs(kc, cell)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    printed = [text for parent, kind, text in seen if parent == cell and kind == "stream"]
    assert len(printed) == 1 and f"'subshell-{subshell}'" in printed[0], seen  # it was there
    shown_by_cell = [p for p, kind, _ in seen if kind == "display_data" and p == cell]
    shown_by_click = [p for p, kind, _ in seen
                      if kind == "display_data" and p == click["header"]["msg_id"]]
    if lab_style:
        assert printed[0].startswith("[1] "), seen  # the cell's figure was still open
        assert len(shown_by_cell) == 1 and not shown_by_click, seen
    else:  # what the lab's style prevents: the click showed the cell's figure and closed it
        assert printed[0].startswith("[] "), seen
        assert len(shown_by_click) == 1 and not shown_by_cell, seen


def test_the_lab_style_guards_the_hooks_pyplot_registers_with_its_first_figure():
    # The notebooks do not type `%matplotlib`: in a kernel the inline backend is the
    # default, and pyplot loads it (and registers its hooks) with the first figure.
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        show = ("print([(type(h).__name__, h.__name__) for h in "
                "get_ipython().events.callbacks['post_execute'] "
                "if 'matplotlib' in (h.__module__ or '')])")
        first = _kernel_run(kc, "from labkit.viz import plots\nplots.use_lab_style()\n" + show)
        before = _kernel_outputs(kc, first)
        second = _kernel_run(kc, "import matplotlib.pyplot as plt\nfig = plt.figure()\n" + show)
        after = _kernel_outputs(kc, second)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    guarded = ("[('_OnMainThreadOnly', '_draw_all_if_interactive'), "
               "('_OnMainThreadOnly', 'flush_figures')]")
    assert [t for p, kind, t in before if p == first and kind == "stream"] == [guarded], before
    assert [t for p, kind, t in after if p == second and kind == "stream"] == [guarded], after
