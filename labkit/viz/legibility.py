"""Legibility of a drawn figure: what a reader of the chart would trip over, in sentences.

``problems(fig)`` draws the figure with its (Agg) canvas and checks what was drawn against
the lab's chart style (``/work/shared/STYLE.md``, "Charts"):

- **Text never overlaps.** Every text that was actually drawn (titles, the suptitle, axis
  labels, tick labels, offset texts, annotations, ``ax.text``, legend entries and titles,
  figure texts) is measured by its window extent; two texts whose boxes overlap by more
  than ``TOLERANCE_PX`` in every direction are a problem. Rotated text is measured as the
  rotated rectangle it occupies, not the larger upright box around it. Tick labels crowding
  each other on one axis make one sentence per axis. Text reaching past the canvas is cut
  off (see ``canvas`` below).
- **A legend never names a series that is not drawn.** For each entry of every legend (of
  an axes, or of the figure), the artists of that axes (of every axes, for a figure legend)
  whose label is the entry's text -- lines, collections, patches, images, and containers
  such as the ``BarContainer`` of ``ax.bar`` and the ``ErrorbarContainer`` of
  ``ax.errorbar`` -- must include one that is visible and draws something inside the view
  limits: a line with a segment (or, with markers, a point) inside the axes; a scatter
  with a point inside; a filled polygon (``fill_between``, ``stackplot``, ``broken_barh``)
  or a bar with area at least ``MIN_VISIBLE_PX`` wide and high inside the axes. A bar
  series whose bars are all zero is therefore a problem: its zeros should be written
  ("0"), and it should not sit in the legend. An entry whose text labels no artist of the
  axes is a proxy (``Patch(color=..., label=...)``, ``Line2D([], [], ...)``, or handles
  passed with separate labels): it is matched by its key instead -- a filled patch key by
  its face colour against drawn patches and the drawn polygons or markers of collections,
  an unfilled patch key by its edge colour, a line key by colour and line style against
  drawn lines (a marker-only line key, by its face colour or, if hollow, its edge colour,
  also against drawn markers of collections). Colours
  are compared on RGB, alpha ignored; a proxy whose colour is drawn nowhere is a problem.
- **A legend does not hide data.** The legend's entries (texts, keys and title) must not
  cover data drawn in data coordinates in the part of the axes they sit over: a line
  segment, a marker, a filled area (the polygon itself, not its bounding box) or a bar.
  Lines and spans laid out in axes coordinates (``axvline``, ``axvspan``, fault and phase
  marks) do not count as data.
- **Labels are not written across the data.** An annotation or ``ax.text`` inside an axes
  must not lie over a data line (a segment crossing its box) or a data marker (a marker
  centre inside its box); fault labels belong in a strip above the axes, not rotated onto
  the data. Text over bars, filled areas and images (counts written in bars, heat-map
  cells) is allowed.
- **Units on axes.** Every visible axes that draws data (``ax.has_data()``) and is not
  turned off (``ax.axison``) and is not a colorbar needs, on each of its two axes, tick
  labels and an axis label. Exceptions: an axis that shares its scale (``sharex`` /
  ``sharey``) with another axes of the figure needs neither tick labels nor a label if that
  neighbour shows tick labels (stacked panels numbered on the bottom panel only) and no
  label if the neighbour has one; and an axis whose tick labels are all words, not
  numbers (bar categories, configuration names), needs no axis label, because the tick
  labels name what is there. The value axis of a bar chart has numbers, so it needs its
  label. An axis that shows data with no tick labels at all, and has no neighbour that
  shows them, is a problem: the numbers are gone.
- **A zero that is the lesson reads "0".** A bar of a ``BarContainer`` whose value is 0
  draws nothing; some drawn text reading 0 ("0", "0.0", "0 %", ...) must be centred within
  that bar's slot along the category axis (as ``ax.bar_label`` writes it). Stacked bars are
  exempt (another series' bar fills the same slot, so the zero segment is simply absent);
  a stacked series that is zero everywhere is still caught by the legend rule.

Pure: matplotlib and numpy only, no side effect on import.
"""

from __future__ import annotations

import functools
import re
from contextlib import contextmanager

import numpy as np
from matplotlib import colors as mcolors
from matplotlib import rcParams
from matplotlib.collections import Collection, LineCollection, PathCollection
from matplotlib.container import BarContainer, Container
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

TOLERANCE_PX = 1.0
"""How far (pixels) two texts may overlap, in at least one direction, and still count as apart."""

MIN_VISIBLE_PX = 0.5
"""The least width and height (pixels) of a bar or filled area that counts as drawn."""


def problems(fig, canvas: str = "tight") -> list[str]:
    """Draw ``fig`` and say, one sentence each, what makes it hard to read.

    Args:
        fig: a matplotlib figure with an Agg-based canvas (the default under ``Agg`` and in
            Jupyter's inline backend).
        canvas: what counts as the edge of the picture for cut-off text: ``"tight"`` (the
            figure's tight bounding box plus ``savefig.pad_inches``, which is what Jupyter's
            inline backend shows and hence what the report shows) or ``"figure"`` (the
            figure's own size, as ``savefig`` without ``bbox_inches="tight"`` saves it).

    Returns:
        One sentence per problem, naming the axes (by title, else by position) and the text
        or legend entry involved; empty when the figure is legible.

    Raises:
        ValueError: an unknown ``canvas``.
    """
    if canvas not in ("tight", "figure"):
        raise ValueError(f"canvas={canvas!r} must be 'tight' or 'figure'")
    with _recording_text() as drawn:
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    chart = _Chart(fig, renderer, drawn)
    return (chart.overlaps() + chart.cut_off(canvas) + chart.legend_problems()
            + chart.covered_data() + chart.text_over_data()
            + chart.label_problems() + chart.zero_problems())


@contextmanager
def _recording_text():
    """Collect every ``Text`` whose ``draw`` runs (tick labels outside the view never do)."""
    drawn: dict[int, Text] = {}
    original = Text.draw

    @functools.wraps(original)  # keeps the marks matplotlib's rasterization looks for
    def draw(self, renderer):
        drawn.setdefault(id(self), self)
        return original(self, renderer)

    Text.draw = draw
    try:
        yield drawn
    finally:
        Text.draw = original


def _shown(text: str) -> str:
    """A text as a reader sees it: mathtext tick labels lose their markup."""
    text = re.sub(r"\\mathdefault\{(.*)\}", r"\1", text.replace("$", ""))
    return " ".join(text.split())


_NUMBER = re.compile(r"^[-+\u2212]?(\d[\d,]*\.?\d*|\.\d+)(e[-+\u2212]?\d+)?$", re.IGNORECASE)
_ZERO = re.compile(r"^[-+\u2212]?0(?:[.,]0*)?(?![\d.,])")


def _is_number(text: str) -> bool:
    """Whether a tick label is a number (``1,000``, ``2.5``, ``10^{3}``, ``40%``)."""
    plain = re.sub(r"[{}^\s%]", "", text)
    return bool(_NUMBER.match(plain))


def _rgb(color) -> tuple[float, float, float] | None:
    try:
        rgba = mcolors.to_rgba(color)
    except (ValueError, TypeError):
        return None
    return None if rgba[3] == 0 else rgba[:3]


def _same_color(a, b) -> bool:
    return a is not None and b is not None and np.allclose(a, b, atol=1.5 / 255)


class _Chart:
    """One drawn figure: its texts, their roles and boxes, and the rules run on it."""

    def __init__(self, fig, renderer, drawn: dict[int, Text]):
        self.fig, self.renderer = fig, renderer
        self.colorbars = {}  # colorbar axes -> the axes it belongs to
        for ax in fig.axes:
            for mappable in [*ax.images, *ax.collections]:
                bar = getattr(mappable, "colorbar", None)
                if bar is not None:
                    self.colorbars[bar.ax] = ax
        self.roles = self._roles()
        self.texts = []  # (text, owner axes or None, role, corners in display pixels)
        for text in drawn.values():
            if not text.get_visible() or not text.get_text().strip():
                continue
            if text.get_figure(root=True) is not fig:
                continue
            corners = self._corners(text)
            if corners is None:
                continue
            owner, role = self.roles.get(id(text), (getattr(text, "axes", None), "text"))
            self.texts.append((text, owner, role, corners))

    # -- naming --------------------------------------------------------------------------

    def _roles(self) -> dict[int, tuple]:
        roles: dict[int, tuple] = {}
        for ax in self.fig.axes:
            for text in ax.findobj(Text):
                roles[id(text)] = (ax, "text")
            for text in ax.texts:
                roles[id(text)] = (ax, "annotation" if isinstance(text, Annotation) else "text")
            for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                for tick in [*axis.majorTicks, *axis.minorTicks]:  # the ticks drawn
                    roles[id(tick.label1)] = roles[id(tick.label2)] = (ax, f"{name} tick label")
                roles[id(axis.label)] = (ax, f"{name}-axis label")
                roles[id(axis.get_offset_text())] = (ax, f"{name} offset text")
            # Left and right titles have no public accessor; the centre one is ``ax.title``.
            for text in (ax.title, getattr(ax, "_left_title", None),
                         getattr(ax, "_right_title", None)):
                if text is not None:
                    roles[id(text)] = (ax, "title")
            if ax.get_legend() is not None:
                self._legend_roles(ax.get_legend(), ax, roles)
        for legend in self.fig.legends:
            self._legend_roles(legend, None, roles)
        for text in self.fig.texts:
            roles[id(text)] = (None, "figure text")
        for attr, role in (("_suptitle", "suptitle"), ("_supxlabel", "figure x label"),
                           ("_supylabel", "figure y label")):
            text = getattr(self.fig, attr, None)
            if text is not None:
                roles[id(text)] = (None, role)
        return roles

    @staticmethod
    def _legend_roles(legend: Legend, ax, roles: dict) -> None:
        for text in legend.get_texts():
            roles[id(text)] = (ax, "legend entry")
        roles[id(legend.get_title())] = (ax, "legend title")

    def name(self, ax) -> str:
        """How a sentence names an axes: its title, else its position (and y label)."""
        if ax is None:
            return "the figure"
        if ax in self.colorbars:
            return f"the colorbar of {self.name(self.colorbars[ax])}"
        title = " ".join(_shown(ax.get_title(loc)) for loc in ("left", "center", "right")
                         if ax.get_title(loc)).strip()
        if title:
            return f"axes '{title}'"
        plain = [a for a in self.fig.axes if a not in self.colorbars]
        if len(plain) == 1:
            return "the axes"
        where = f"axes {plain.index(ax) + 1} of {len(plain)}" if ax in plain else "an axes"
        ylabel = _shown(ax.get_ylabel())
        return f"{where} (y: '{ylabel}')" if ylabel else where

    def _describe(self, text: Text, owner, role: str, with_axes: bool) -> str:
        words = f"the {role} '{_shown(text.get_text())}'"
        return f"{words} of {self.name(owner)}" if with_axes and owner is not None else words

    # -- text ----------------------------------------------------------------------------

    def _corners(self, text: Text):
        """The four corners (display pixels) of the rectangle the text occupies."""
        box = Text.get_window_extent(text, self.renderer)
        if not np.all(np.isfinite(box.get_points())) or box.width <= 0 or box.height <= 0:
            return None
        angle = text.get_rotation() % 180
        if angle % 90 == 0 or text.get_transform_rotates_text():
            return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1],
                             [box.x0, box.y1]])
        # The upright box of rotated text is much larger than the text; measure it upright
        # and turn it about the centre (a rotated rectangle's bounding box shares its centre).
        text.set_rotation(0)
        upright = Text.get_window_extent(text, self.renderer)
        text.set_rotation(angle)
        w, h = upright.width / 2, upright.height / 2
        turn = np.deg2rad(angle)
        rotate = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        local = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
        return local @ rotate.T + [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]

    @staticmethod
    def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
        """Separating-axis test of two convex quadrilaterals, with the pixel tolerance."""
        for quad in (a, b):
            for i in range(4):
                edge = quad[(i + 1) % 4] - quad[i]
                normal = np.array([-edge[1], edge[0]])
                length = np.hypot(*normal)
                if length == 0:
                    continue
                normal = normal / length
                pa, pb = a @ normal, b @ normal
                if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= TOLERANCE_PX:
                    return False
        return True

    def overlaps(self) -> list[str]:
        """Sentences for texts drawn on top of each other."""
        found, crowded = [], {}
        boxes = np.array([[c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()]
                          for *_, c in self.texts]).reshape(-1, 4)
        for i in range(len(self.texts)):
            near = np.flatnonzero(
                (np.minimum(boxes[i, 2], boxes[i + 1:, 2])
                 - np.maximum(boxes[i, 0], boxes[i + 1:, 0]) > TOLERANCE_PX)
                & (np.minimum(boxes[i, 3], boxes[i + 1:, 3])
                   - np.maximum(boxes[i, 1], boxes[i + 1:, 1]) > TOLERANCE_PX)) + i + 1
            for j in near:
                (ta, oa, ra, ca), (tb, ob, rb, cb) = self.texts[i], self.texts[j]
                if not self._overlap(ca, cb):
                    continue
                if ra == rb and oa is ob and ra.endswith("tick label"):
                    crowded.setdefault((id(oa), ra), [oa, ra, set(), (ta, tb)])[2].update(
                        (id(ta), id(tb)))
                elif oa is ob:
                    found.append(f"In {self.name(oa)}, {self._describe(ta, oa, ra, False)} "
                                 f"overlaps {self._describe(tb, ob, rb, False)}.")
                else:
                    first = self._describe(ta, oa, ra, True)
                    found.append(f"{first[0].upper()}{first[1:]} overlaps "
                                 f"{self._describe(tb, ob, rb, True)}.")
        for owner, role, members, (ta, tb) in crowded.values():
            found.append(f"In {self.name(owner)}, {len(members)} {role}s overlap each other "
                         f"(first '{_shown(ta.get_text())}' and '{_shown(tb.get_text())}').")
        return found

    def cut_off(self, canvas: str) -> list[str]:
        """Sentences for texts reaching past the edge of the picture."""
        if canvas == "figure":
            edge = self.fig.bbox
        else:
            pad = rcParams["savefig.pad_inches"]
            tight = self.fig.get_tightbbox(self.renderer).padded(
                pad if isinstance(pad, float | int) else 0.0)
            edge = Bbox(tight.get_points() * self.fig.dpi)
        found = []
        for text, owner, role, corners in self.texts:
            sides = [side for side, past in (
                ("left", edge.x0 - corners[:, 0].min()), ("right", corners[:, 0].max() - edge.x1),
                ("bottom", edge.y0 - corners[:, 1].min()), ("top", corners[:, 1].max() - edge.y1))
                if past > TOLERANCE_PX]
            if sides:
                words = self._describe(text, owner, role, True)
                found.append(f"{words[0].upper()}{words[1:]} is cut off at the "
                             f"{' and '.join(sides)} edge of the figure.")
        return found

    # -- what is drawn -------------------------------------------------------------------

    def _view(self, ax) -> Bbox:
        return ax.bbox

    def _line_drawn(self, line: Line2D, ax) -> str | None:
        """None if the line draws something inside the axes, else why not."""
        if not line.get_visible() or line.get_alpha() == 0:
            return "it is hidden"
        has_line = (line.get_linestyle() not in ("None", "none", "", " ")
                    and line.get_linewidth() > 0)
        has_marker = line.get_marker() not in ("None", "none", "", " ", None)
        if not has_line and not has_marker:
            return "it draws neither a line nor markers"
        xy = np.asarray(line.get_xydata(), dtype=float).reshape(-1, 2)
        if not len(xy):
            return "it has no data"
        with np.errstate(all="ignore"):
            points = line.get_transform().transform(xy)
        finite = np.all(np.isfinite(points), axis=1)
        view = self._view(ax) if line.get_clip_on() else self.fig.bbox
        inside = finite & _inside(points, view)
        if has_marker and inside.any():
            return None
        if has_line:
            # A segment may cross the view with both its ends outside: test each segment.
            if _segments_meet(points, view):
                return None
        return "its line has no point inside the axes' limits"

    def _collection_marks(self, coll: Collection, ax) -> list[tuple]:
        """(face RGB, edge RGB) of each part of a collection drawn inside the axes."""
        if not coll.get_visible() or coll.get_alpha() == 0:
            return []
        view = self._view(ax) if coll.get_clip_on() else self.fig.bbox
        faces, edges = coll.get_facecolor(), coll.get_edgecolor()

        def colors(i, j=None):
            j = i if j is None else j
            face = _rgb(faces[i % len(faces)]) if len(faces) else None
            edge = _rgb(edges[j % len(edges)]) if len(edges) else None
            return face, edge

        marks = []
        if isinstance(coll, PathCollection):  # scatter: marker paths at data offsets
            sizes = coll.get_sizes()
            with np.errstate(all="ignore"):
                offsets = coll.get_offset_transform().transform(
                    np.asarray(coll.get_offsets(), dtype=float).reshape(-1, 2))
            shown = np.all(np.isfinite(offsets), axis=1) & _inside(offsets, view)
            if len(sizes):
                shown &= sizes[np.arange(len(offsets)) % len(sizes)] > 0
            index = np.flatnonzero(shown)
            # One mark per distinct colour pair, not per point (a scatter may hold 10^5).
            pairs = np.unique(np.stack([index % max(1, len(faces)), index % max(1, len(edges))],
                                       axis=1), axis=0) if len(index) else []
            return [colors(int(f), int(e)) for f, e in pairs]
        filled = not isinstance(coll, LineCollection)
        transform = coll.get_transform()
        for i, path in enumerate(coll.get_paths()):
            with np.errstate(all="ignore"):
                vertices = transform.transform(path.vertices)
            vertices = vertices[np.all(np.isfinite(vertices), axis=1)]
            if not len(vertices):
                continue
            box = Bbox.intersection(Bbox([vertices.min(0), vertices.max(0)]), view)
            if box is None:
                continue
            face, edge = colors(i)
            if filled and face is not None:
                if box.width >= MIN_VISIBLE_PX and box.height >= MIN_VISIBLE_PX:
                    marks.append((face, edge))
            elif edge is not None and max(box.width, box.height) >= MIN_VISIBLE_PX:
                if _segments_meet(vertices, view):
                    marks.append((None, edge))
        return marks

    def _patch_drawn(self, patch: Patch, ax) -> str | None:
        """None if the patch covers something inside the axes, else why not."""
        if not patch.get_visible() or patch.get_alpha() == 0:
            return "it is hidden"
        box = patch.get_window_extent(self.renderer)
        if not np.all(np.isfinite(box.get_points())):
            return "it lies outside the axes' limits"
        filled = patch.get_fill() and _rgb(patch.get_facecolor()) is not None
        if filled and (box.width < MIN_VISIBLE_PX or box.height < MIN_VISIBLE_PX):
            return "it has zero length"
        if not filled and max(box.width, box.height) < MIN_VISIBLE_PX:
            return "it has zero length"
        view = self._view(ax) if patch.get_clip_on() else self.fig.bbox
        inside = Bbox.intersection(box, view)
        if inside is None or (filled and min(inside.width, inside.height) < MIN_VISIBLE_PX):
            return "it lies outside the axes' limits"
        return None

    def _why_not_drawn(self, artist, ax) -> str | None:
        """None if ``artist`` (or, for a container, one of its parts) is drawn, else why not."""
        if isinstance(artist, BarContainer):
            reasons = [self._patch_drawn(p, ax) for p in artist.patches]
            if any(r is None for r in reasons):
                return None
            if reasons and all(r == "it has zero length" for r in reasons):
                return "all its bars are zero"
            return "none of its bars shows inside the axes' limits"
        if isinstance(artist, Container):
            parts = [p for p in _flatten(artist) if p is not None]
            reasons = [self._why_not_drawn(p, ax) for p in parts]
            return None if any(r is None for r in reasons) else "none of its parts is drawn"
        if isinstance(artist, Line2D):
            return self._line_drawn(artist, ax)
        if isinstance(artist, Collection):
            if self._collection_marks(artist, ax):
                return None
            if not len(artist.get_offsets() if isinstance(artist, PathCollection)
                       else artist.get_paths()):
                return "it has no data"
            return ("its markers all lie outside the axes' limits"
                    if isinstance(artist, PathCollection)
                    else "it has no area inside the axes' limits")
        if isinstance(artist, Patch):
            return self._patch_drawn(artist, ax)
        if isinstance(artist, AxesImage):
            return None if artist.get_visible() else "it is hidden"
        return None  # an artist of a kind not checked counts as drawn

    # -- legends -------------------------------------------------------------------------

    def _legends(self):
        for ax in self.fig.axes:
            if ax.get_legend() is not None:
                yield ax.get_legend(), [ax]
        for legend in self.fig.legends:
            yield legend, list(self.fig.axes)

    @staticmethod
    def _labelled(ax) -> list:
        return [*ax.containers, *(a for a in ax.get_children()
                                  if isinstance(a, Line2D | Collection | Patch | AxesImage))]

    def legend_problems(self) -> list[str]:
        """Sentences for legend entries that name nothing drawn."""
        found = []
        for legend, axes in self._legends():
            if not legend.get_visible():
                continue
            owner = axes[0] if len(axes) == 1 else None
            where = self.name(owner) if owner is not None else "the figure legend"
            for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=False):
                label = text.get_text()
                if not text.get_visible() or not label.strip():
                    continue
                named = [(a, ax) for ax in axes for a in self._labelled(ax)
                         if a.get_label() == label]
                if named:
                    reasons = [self._why_not_drawn(a, ax) for a, ax in named]
                    if all(r is not None for r in reasons):
                        found.append(f"In {where}, the legend names '{_shown(label)}', but "
                                     f"{reasons[0]}.")
                elif not self._proxy_drawn(handle, axes):
                    found.append(f"In {where}, the legend names '{_shown(label)}', but no artist "
                                 f"drawn in the axes has that label or the colour of its key.")
        return found

    def covered_data(self) -> list[str]:
        """Sentences for legends drawn over data of their axes."""
        found = []
        for legend, axes in self._legends():
            if not legend.get_visible():
                continue
            parts = [*legend.get_texts(), *legend.legend_handles, legend.get_title()]
            boxes = [p.get_window_extent(self.renderer) for p in parts if p is not None
                     and p.get_visible() and not (isinstance(p, Text) and not p.get_text())]
            boxes = [b for b in boxes if np.all(np.isfinite(b.get_points()))]
            if not boxes:
                continue
            key = Bbox.union(boxes)
            for ax in axes:
                area = Bbox.intersection(key, self._view(ax))
                if area is None or min(area.width, area.height) < MIN_VISIBLE_PX:
                    continue
                in_bars = {id(p) for c in ax.containers if isinstance(c, BarContainer)
                           for p in c.patches}
                hidden = [what for what in (self._under(a, ax, area) for a in self._labelled(ax)
                                            if id(a) not in in_bars) if what]
                if hidden:
                    where = self.name(ax) if len(axes) == 1 else "the figure"
                    found.append(f"In {where}, the legend is drawn over "
                                 f"{', '.join(dict.fromkeys(hidden))}.")
        return found

    def text_over_data(self) -> list[str]:
        """Sentences for annotations and texts written across data lines or markers."""
        found = []
        for text, owner, role, corners in self.texts:
            if owner is None or role not in ("annotation", "text") or owner in self.colorbars:
                continue
            box = Bbox([corners.min(0), corners.max(0)])
            area = Bbox.intersection(box, self._view(owner))
            if area is None or min(area.width, area.height) < MIN_VISIBLE_PX:
                continue
            hidden = [self._under(a, owner, area) for a in [*owner.lines, *owner.collections]
                      if isinstance(a, Line2D | PathCollection)]
            hidden = [h for h in hidden if h]
            if hidden:
                found.append(f"In {self.name(owner)}, the {role} '{_shown(text.get_text())}' "
                             f"is written across {', '.join(dict.fromkeys(hidden))}.")
        return found

    def _under(self, artist, ax, area: Bbox) -> str | None:
        """What of ``artist`` (data drawn in data coordinates) lies in ``area``, if any."""
        label = artist.get_label()
        named = f" '{_shown(label)}'" if label and not label.startswith("_") else ""
        if isinstance(artist, BarContainer):
            bars = [self._under(p, ax, area) for p in artist.patches]
            return f"the bars{named}" if any(bars) else None
        if isinstance(artist, Container) or not artist.get_visible():
            return None
        if isinstance(artist, Line2D):
            if artist.get_transform() != ax.transData or self._line_drawn(artist, ax):
                return None
            with np.errstate(all="ignore"):
                points = artist.get_transform().transform(
                    np.asarray(artist.get_xydata(), dtype=float).reshape(-1, 2))
            marker = artist.get_marker() not in ("None", "none", "", " ", None)
            line = artist.get_linestyle() not in ("None", "none", "", " ")
            if (marker and _inside(points[np.all(np.isfinite(points), axis=1)], area, 0).any()) \
                    or (line and _segments_meet(points, area)):
                return f"the line{named}"
            return None
        if isinstance(artist, PathCollection):
            if artist.get_offset_transform() != ax.transData:
                return None
            with np.errstate(all="ignore"):
                offsets = artist.get_offset_transform().transform(
                    np.asarray(artist.get_offsets(), dtype=float).reshape(-1, 2))
            inside = _inside(offsets[np.all(np.isfinite(offsets), axis=1)], area, 0)
            return f"the markers{named}" if inside.any() else None
        if isinstance(artist, Collection):
            if artist.get_transform() != ax.transData:
                return None
            filled = not isinstance(artist, LineCollection)
            for path in artist.get_paths():
                if artist.get_transform().transform_path(path).intersects_bbox(area, filled):
                    return f"the {'area' if filled else 'lines'}{named}"
            return None
        if isinstance(artist, Patch) and artist.get_transform() == (
                artist.get_patch_transform() + ax.transData):
            box = Bbox.intersection(artist.get_window_extent(self.renderer), area)
            if box is not None and min(box.width, box.height) >= MIN_VISIBLE_PX and (
                    self._patch_drawn(artist, ax) is None):
                return f"the patch{named}"
        return None

    def _proxy_drawn(self, handle, axes) -> bool:
        """Whether something drawn in ``axes`` looks like the legend key ``handle``."""
        if handle is None:
            return False
        if isinstance(handle, Line2D):
            has_line = handle.get_linestyle() not in ("None", "none", "", " ")
            face = _rgb(handle.get_markerfacecolor())
            color = _rgb(handle.get_color() if has_line else (
                face if face is not None else handle.get_markeredgecolor()))
            for ax in axes:
                for line in ax.lines:
                    if (_same_color(_rgb(line.get_color()), color)
                            and (not has_line or line.get_linestyle() == handle.get_linestyle())
                            and self._line_drawn(line, ax) is None):
                        return True
                if not has_line and any(_same_color(face, color) or _same_color(edge, color)
                                        for coll in ax.collections
                                        for face, edge in self._collection_marks(coll, ax)):
                    return True
            return False
        if isinstance(handle, Patch):
            filled = handle.get_fill() and _rgb(handle.get_facecolor()) is not None
            color = _rgb(handle.get_facecolor() if filled else handle.get_edgecolor())
            pick = 0 if filled else 1
        elif isinstance(handle, Collection) and len(handle.get_facecolor()):
            color, pick = _rgb(handle.get_facecolor()[0]), 0
        else:
            return True  # a key of a kind not checked counts as drawn
        for ax in axes:
            for patch in ax.patches:
                colors = (_rgb(patch.get_facecolor()) if patch.get_fill() else None,
                          _rgb(patch.get_edgecolor()))
                if _same_color(colors[pick], color) and self._patch_drawn(patch, ax) is None:
                    return True
            for coll in ax.collections:
                if any(_same_color(mark[pick], color) for mark in self._collection_marks(coll, ax)):
                    return True
        return False

    # -- axis labels ---------------------------------------------------------------------

    def _tick_texts(self, ax, name: str) -> list[str]:
        return [_shown(t.get_text()) for t, owner, role, _ in self.texts
                if owner is ax and role == f"{name} tick label"]

    def label_problems(self) -> list[str]:
        """Sentences for axes that draw data without tick numbers or an axis label."""
        found = []
        for ax in self.fig.axes:
            if not ax.get_visible() or not ax.axison or ax in self.colorbars or not ax.has_data():
                continue
            for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                shared = ax.get_shared_x_axes() if name == "x" else ax.get_shared_y_axes()
                neighbours = [a for a in shared.get_siblings(ax)
                              if a is not ax and a in self.fig.axes and a.get_visible()]
                numbered = [a for a in neighbours if self._tick_texts(a, name)]
                labelled = [a for a in neighbours if (a.xaxis if name == "x" else a.yaxis)
                            .get_label_text().strip()]
                ticks = self._tick_texts(ax, name)
                has_label = axis.label.get_visible() and axis.get_label_text().strip()
                if not ticks:
                    if not numbered:
                        found.append(f"{_cap(self.name(ax))} draws data but shows no {name} tick "
                                     f"labels (and shares its {name} axis with no axes that does).")
                    continue
                if has_label or labelled or not any(_is_number(t) for t in ticks):
                    continue
                found.append(f"{_cap(self.name(ax))} draws data but its {name} axis has no "
                             f"label (ticks {', '.join(repr(t) for t in ticks[:3])}...).")
        return found

    # -- zeros ---------------------------------------------------------------------------

    def zero_problems(self) -> list[str]:
        """Sentences for zero bars with no "0" written at them."""
        found = []
        zeros = [(corners, text) for text, _, role, corners in self.texts
                 if role in ("annotation", "text") and _ZERO.match(_shown(text.get_text()))]
        for ax in self.fig.axes:
            if not ax.get_visible():
                continue
            containers = [c for c in ax.containers if isinstance(c, BarContainer)]
            spans = {id(c): [self._span(p, c.orientation) for p in c.patches
                             if p.get_visible()] for c in containers}
            slots = {id(c): [span for other in containers if other is not c
                             and other.orientation == c.orientation for span in spans[id(other)]]
                     for c in containers}
            for bars in containers:
                vertical = bars.orientation == "vertical"
                missing = []
                for patch, value in zip(bars.patches, np.asarray(bars.datavalues, dtype=float),
                                        strict=False):
                    if value != 0 or not patch.get_visible():
                        continue
                    box = patch.get_window_extent(self.renderer)
                    lo, hi = (box.x0, box.x1) if vertical else (box.y0, box.y1)
                    centre = (box.x0 + box.x1) / 2 if vertical else (box.y0 + box.y1) / 2
                    if not (self._view(ax).x0 - 1 <= centre <= self._view(ax).x1 + 1
                            if vertical else self._view(ax).y0 - 1 <= centre
                            <= self._view(ax).y1 + 1):
                        continue
                    if any(abs(a - lo) <= 0.5 and abs(b - hi) <= 0.5 for a, b in slots[id(bars)]):
                        continue  # stacked: the other series' segments fill the slot
                    if not any(lo - 1 <= corners[:, 0 if vertical else 1].mean() <= hi + 1
                               for corners, _ in zeros):
                        missing.append(self._category(ax, "x" if vertical else "y", centre))
                if missing:
                    label = bars.get_label()
                    series = f"'{_shown(label)}'" if label and not label.startswith("_") \
                        else "a bar series"
                    at = ", ".join(f"'{m}'" for m in missing[:5]) + (
                        ", ..." if len(missing) > 5 else "")
                    found.append(f"In {self.name(ax)}, {len(missing)} bar"
                                 f"{'s' if len(missing) > 1 else ''} of {series} "
                                 f"{'are' if len(missing) > 1 else 'is'} zero with no '0' "
                                 f"written there (at {at}).")
        return found

    def _span(self, patch: Patch, orientation: str) -> tuple[float, float]:
        """A bar's slot along its category axis, in display pixels."""
        box = patch.get_window_extent(self.renderer)
        return (box.x0, box.x1) if orientation == "vertical" else (box.y0, box.y1)

    def _category(self, ax, name: str, centre: float) -> str:
        """The drawn tick label nearest a display position along one axis."""
        best, where = None, np.inf
        for text, owner, role, corners in self.texts:
            if owner is ax and role == f"{name} tick label":
                distance = abs(corners[:, 0 if name == "x" else 1].mean() - centre)
                if distance < where:
                    best, where = _shown(text.get_text()), distance
        return best if best is not None else f"{name}={centre:.0f} px"


def _cap(words: str) -> str:
    return words[0].upper() + words[1:]


def _flatten(container):
    for part in container:
        if isinstance(part, list | tuple):
            yield from _flatten(part)
        else:
            yield part


def _inside(points: np.ndarray, box: Bbox, pad: float = 0.5) -> np.ndarray:
    return ((points[:, 0] >= box.x0 - pad) & (points[:, 0] <= box.x1 + pad)
            & (points[:, 1] >= box.y0 - pad) & (points[:, 1] <= box.y1 + pad))


def _segments_meet(points: np.ndarray, box: Bbox) -> bool:
    """Whether the polyline through ``points`` passes through the box (Liang-Barsky clipping).

    Segments with a non-finite end (gaps in the data) are left out.
    """
    a, b = points[:-1], points[1:]
    keep = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
    a, b = a[keep], b[keep]
    if not len(a):
        return False
    d = b - a
    t0, t1 = np.zeros(len(a)), np.ones(len(a))
    ok = np.ones(len(a), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for p, q in ((-d[:, 0], a[:, 0] - box.x0), (d[:, 0], box.x1 - a[:, 0]),
                     (-d[:, 1], a[:, 1] - box.y0), (d[:, 1], box.y1 - a[:, 1])):
            ok &= ~((p == 0) & (q < 0))
            t = q / p
            t0 = np.where(p < 0, np.maximum(t0, t), t0)
            t1 = np.where(p > 0, np.minimum(t1, t), t1)
    return bool(np.any(ok & (t0 <= t1)))
