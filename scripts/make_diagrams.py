"""Diagrams of the two models and of the evaluation design, drawn with matplotlib (book/figures/).

    python scripts/make_diagrams.py            # write book/figures/scgen.svg, scpram.svg, evaluation_design.svg
    python scripts/make_diagrams.py --check    # exit 1 if a committed SVG differs from what would be written
    python scripts/make_diagrams.py --png DIR  # also write PNG previews into DIR (to look at them)

scGen follows Lotfollahi et al. 2019 (Nat Methods), scPRAM Jiang et al. 2024 (Bioinformatics), the
evaluation design book/theory_benchmarking.md. The points in the sketches are drawn from a seeded
generator and are illustrations, not data. The SVG bytes depend only on this code and on the
matplotlib version (fixed hash salt, no date; text drawn as paths, so it looks the same in every
browser), which lets ``--check`` and tests/test_diagrams.py find a stale figure.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parents[1]
FIGURES_DIR = REPO / "book" / "figures"

# Okabe & Ito colours (distinguishable with the common colour-vision deficiencies); the
# conditions also differ in marker shape where it matters (held-out cells are triangles).
CTRL = "#0072B2"  # control cells: blue
STIM = "#D55E00"  # stimulated cells: vermillion
PRED = "#009E73"  # predictions: bluish green
ATTN = "#CC79A7"  # attention weights: reddish purple
INK = "#222222"
MUTED = "#666666"
PANEL = "#F4F4F4"
NET = "#D9D9D9"

RC = {
    "svg.hashsalt": "course-diagrams",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8,
}
WIDTH, HEIGHT = 8.0, 3.5  # inches: the book's text width


# ---------------------------------------------------------------------------------------------
# drawing kit: one axes over the whole figure, coordinates in inches


def canvas(height: float = HEIGHT) -> tuple[Figure, Axes]:
    """A figure of book width whose single axes measures in inches (origin bottom left)."""
    fig = Figure(figsize=(WIDTH, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def text(ax: Axes, x: float, y: float, s: str, *, size: float = 8, weight: str = "normal", **kw) -> None:
    kw.setdefault("ha", "center")
    kw.setdefault("va", "center")
    kw.setdefault("color", INK)
    ax.text(x, y, s, fontsize=size, fontweight=weight, linespacing=1.25, **kw)


def panel(ax: Axes, x: float, y: float, w: float, h: float, title: str = "", *, face: str = PANEL) -> None:
    """A rounded panel with a bold title inside its top edge."""
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08", fc=face, ec="#BBBBBB", lw=0.8, zorder=0)
    )
    if title:
        text(ax, x + w / 2, y + h - 0.15, title, size=8.5, weight="bold", va="top")


def network(ax: Axes, x: float, y: float, w: float, h: float, label: str, *, narrowing: bool) -> None:
    """Encoder (narrowing to the latent code) or decoder (widening back to genes) as a trapezoid."""
    short = 0.35 * h
    inset = (h - short) / 2
    if narrowing:
        corners = [(x, y), (x + w, y + inset), (x + w, y + h - inset), (x, y + h)]
    else:
        corners = [(x, y + inset), (x + w, y), (x + w, y + h), (x, y + h - inset)]
    ax.add_patch(Polygon(corners, closed=True, fc=NET, ec=MUTED, lw=0.8, zorder=1))
    text(ax, x + w / 2, y + h / 2, label, size=8, weight="bold", rotation=90)


def arrow(ax: Axes, start, end, *, color: str = INK, lw: float = 1.2, rad: float = 0.0, ls: str = "-") -> None:
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>,head_length=5,head_width=2.5",
            connectionstyle=f"arc3,rad={rad}",
            color=color,
            lw=lw,
            ls=ls,
            shrinkA=0,
            shrinkB=0,
            zorder=4,
        )
    )


def cloud(
    ax: Axes,
    rng: np.random.Generator,
    center,
    n: int,
    spread: float,
    *,
    marker: str,
    color: str,
    size: float = 14,
    zorder: int = 3,
) -> np.ndarray:
    """``n`` points around ``center`` (an illustration of cells, not data); returns them."""
    pts = np.asarray(center) + spread * np.clip(rng.normal(size=(n, 2)), -1.6, 1.6)
    ax.scatter(pts[:, 0], pts[:, 1], s=size, marker=marker, c=color, edgecolors="white", linewidths=0.4, zorder=zorder)
    return pts


def mean_marker(ax: Axes, xy, color: str) -> None:
    ax.scatter([xy[0]], [xy[1]], s=70, marker="X", c=color, edgecolors=INK, linewidths=0.8, zorder=6)


def swatch(ax: Axes, x: float, y: float, marker: str, color: str, label: str, *, size: float = 22) -> None:
    """One legend entry: a marker and its words."""
    ax.scatter([x], [y], s=size, marker=marker, c=color, edgecolors="white", linewidths=0.4, zorder=5)
    text(ax, x + 0.1, y, label, ha="left", size=7.5)


# ---------------------------------------------------------------------------------------------
# the figures


def draw_scgen() -> Figure:
    """scGen: encode, average the latent codes of each condition, shift the held-out controls by δ, decode.

    After Lotfollahi et al. 2019 (Nat Methods); δ from cell-type-balanced training cells as in
    ``tutorial_lib.models.scgen``.
    """
    fig, ax = canvas()
    rng = np.random.default_rng(1)

    # inputs: the cells of the split
    panel(ax, 0.05, 1.85, 1.55, 1.55, "Training cell types")
    cloud(ax, rng, (0.55, 2.95), 6, 0.06, marker="o", color=CTRL)
    cloud(ax, rng, (1.1, 2.95), 6, 0.06, marker="o", color=STIM)
    text(ax, 0.82, 2.7, "control and\nstimulated cells\nof every type\nbut one", size=7.5, va="top")
    panel(ax, 0.05, 0.1, 1.55, 1.55, "Held-out type")
    cloud(ax, rng, (0.82, 1.2), 7, 0.07, marker="^", color=CTRL, size=18)
    text(ax, 0.82, 0.95, "its control cells\nonly; its stimulated\ncells are never\nseen", size=7.5, va="top")
    network(ax, 1.85, 0.35, 0.5, 2.8, "encoder", narrowing=True)
    arrow(ax, (1.6, 2.6), (1.85, 2.45))
    arrow(ax, (1.6, 0.9), (1.85, 1.05))

    # latent space
    x0, y0, w, h = 2.55, 0.1, 3.6, 3.3
    panel(ax, x0, y0, w, h, "Latent space z")
    arrow(ax, (2.35, 1.75), (2.55, 1.75))
    swatch(ax, 2.8, 2.98, "o", CTRL, "control")
    swatch(ax, 3.55, 2.98, "o", STIM, "stimulated")
    ax.scatter([4.5], [2.98], s=45, marker="X", c="white", edgecolors=INK, linewidths=0.8, zorder=5)
    text(ax, 4.6, 2.98, "mean over the\ntraining types", ha="left", size=7.5)
    delta = np.array([1.45, 0.25])
    ctrl_centres = np.array([[3.0, 2.05], [3.3, 2.5], [3.55, 1.95]])
    stim_wobble = np.array([[0.05, 0.04], [-0.06, -0.06], [0.02, 0.05]])
    ctrl = [cloud(ax, rng, c, 8, 0.07, marker="o", color=CTRL) for c in ctrl_centres]
    stim = [cloud(ax, rng, c + delta + s, 8, 0.07, marker="o", color=STIM) for c, s in zip(ctrl_centres, stim_wobble)]
    m_ctrl = np.mean([p.mean(axis=0) for p in ctrl], axis=0)
    m_stim = np.mean([p.mean(axis=0) for p in stim], axis=0)
    mean_marker(ax, m_ctrl, CTRL)
    mean_marker(ax, m_stim, STIM)
    arrow(ax, m_ctrl, m_stim, lw=1.8)
    mid = (m_ctrl + m_stim) / 2
    text(ax, mid[0], mid[1] + 0.17, "δ", size=11, weight="bold")
    held = cloud(ax, rng, (3.2, 1.05), 9, 0.07, marker="^", color=CTRL, size=18)
    pred = held + delta
    ax.scatter(pred[:, 0], pred[:, 1], s=18, marker="^", c=PRED, edgecolors="white", linewidths=0.4, zorder=3)
    hm, pm = held.mean(axis=0), pred.mean(axis=0)
    arrow(ax, hm + (0.2, 0.035), pm - (0.2, 0.035), lw=1.2, ls="--")
    text(ax, (hm[0] + pm[0]) / 2, (hm[1] + pm[1]) / 2 + 0.17, "+ δ", size=9, weight="bold")
    text(ax, hm[0], hm[1] - 0.3, "held-out control", size=7.5, color=CTRL)
    text(ax, pm[0], pm[1] - 0.3, "held-out control + δ", size=7.5, color=PRED)
    text(
        ax,
        x0 + w / 2,
        0.28,
        "δ = mean(stimulated) − mean(control) over the training types,\neach type with the same number of cells",
        size=7,
    )

    # decoder and output
    arrow(ax, (pm[0] + 0.25, pm[1]), (6.35, pm[1]))
    network(ax, 6.35, 0.35, 0.5, 2.8, "decoder", narrowing=False)
    arrow(ax, (6.85, 1.75), (7.0, 1.75))
    panel(ax, 7.0, 0.95, 0.95, 1.6, "")
    text(ax, 7.475, 2.4, "Predicted\nstimulated\ncells of the\nheld-out\ntype", size=7.5, va="top", weight="bold")
    cloud(ax, rng, (7.475, 1.3), 7, 0.07, marker="^", color=PRED, size=18)
    return fig


# Latent codes of the scPRAM sketch (unit square of a panel): five reference control cells and
# five stimulated cells, listed in shuffled order, so that the exact OT plan with uniform weights
# is a one-to-one matching that is not the diagonal. Latent codes are centred on the prior's
# mean, so cosine similarities are taken about the centre of the sketch's cells.
SKETCH_CTRL = np.array([[0.10, 0.70], [0.22, 0.45], [0.10, 0.20], [0.30, 0.88], [0.36, 0.25]])
SKETCH_STIM = np.array([[0.72, 0.93], [0.55, 0.88], [0.86, 0.12], [0.72, 0.37], [0.60, 0.10]])
SKETCH_QUERY = np.array([0.20, 0.60])  # one held-out control cell
TOP_K = 3  # reference cells kept by the attention in the sketch (the method keeps the most similar 5%)


class Frame:
    """Maps the unit square onto an area of the figure (for sketches of latent codes)."""

    def __init__(self, x: float, y: float, w: float, h: float):
        self.x, self.y, self.w, self.h = x, y, w, h

    def __call__(self, pts) -> np.ndarray:
        pts = np.asarray(pts, dtype=float)
        return np.stack([self.x + pts[..., 0] * self.w, self.y + pts[..., 1] * self.h], axis=-1)

    def vector(self, v) -> np.ndarray:
        return np.asarray(v, dtype=float) * (self.w, self.h)


def ot_sketch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cost matrix, exact OT plan, matched stimulated cell of each control cell, attention weights of the query.

    Computed, not drawn by hand: Euclidean cost; exact OT with uniform weights (for equal numbers of
    cells a permutation, found by linear assignment); each control cell matched to the stimulated
    cell that receives its mass; weights = cosine similarity / their sum over the ``TOP_K`` most
    similar reference control cells.
    """
    cost = np.linalg.norm(SKETCH_CTRL[:, None, :] - SKETCH_STIM[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    plan = np.zeros_like(cost)
    plan[rows, cols] = 1.0 / len(rows)
    centre = np.vstack([SKETCH_CTRL, SKETCH_STIM]).mean(axis=0)
    ref, q = SKETCH_CTRL - centre, SKETCH_QUERY - centre
    cos = ref @ q / (np.linalg.norm(ref, axis=1) * np.linalg.norm(q))
    keep = np.argsort(-cos)[:TOP_K]
    weights = np.zeros_like(cos)
    weights[keep] = cos[keep] / cos[keep].sum()
    return cost, plan, plan.argmax(axis=1), weights


def matrix(ax: Axes, x: float, y: float, size: float, values: np.ndarray) -> None:
    """A small grey heat map (darker = larger), rows = control cells, columns = stimulated cells."""
    n = values.shape[0]
    cell = size / n
    colours = matplotlib.colormaps["Greys"](0.08 + 0.92 * values / values.max())
    for i in range(n):
        for j in range(n):
            ax.add_patch(
                Rectangle(
                    (x + j * cell, y + size - (i + 1) * cell),
                    cell,
                    cell,
                    fc=colours[i, j],
                    ec="white",
                    lw=0.8,
                    zorder=2,
                )
            )
    text(ax, x + size / 2, y + size + 0.05, "stimulated cells", size=6.5, va="bottom", color=STIM)
    text(ax, x - 0.05, y + size / 2, "control cells", size=6.5, rotation=90, ha="right", color=CTRL)


def dots(
    ax: Axes, pts: np.ndarray, color: str, *, marker: str = "o", size: float = 22, edge: str = "white", zorder: int = 3
) -> None:
    ax.scatter(
        pts[:, 0],
        pts[:, 1],
        s=size,
        marker=marker,
        c=color,
        edgecolors=edge,
        linewidths=0.8 if edge == INK else 0.4,
        zorder=zorder,
    )


def draw_scpram() -> Figure:
    """scPRAM: encode, match control to stimulated cells by OT, attend over the pairs, shift, decode.

    After Jiang et al. 2024 (Bioinformatics), with the per-cell attention of the course variant
    ``scpram_percell`` (the release uses the first held-out cell's weights for every cell).
    """
    fig, ax = canvas()
    rng = np.random.default_rng(2)
    cost, plan, match, weights = ot_sketch()
    d = SKETCH_STIM[match] - SKETCH_CTRL
    shift = weights @ d

    top, bottom, row_h = 1.85, 0.05, 1.6
    mid_top, mid_bottom = top + row_h / 2, bottom + row_h / 2
    # top row: the responses, learnt from the training cells
    panel(ax, 0.05, top, 1.1, row_h, "Training\ncells")
    cloud(ax, rng, (0.38, top + 0.72), 6, 0.06, marker="o", color=CTRL)
    cloud(ax, rng, (0.82, top + 0.72), 6, 0.06, marker="o", color=STIM)
    text(ax, 0.6, top + 0.38, "control and\nstimulated", size=7.5)
    network(ax, 1.25, top + 0.2, 0.35, row_h - 0.4, "encoder", narrowing=True)
    arrow(ax, (1.15, mid_top), (1.25, mid_top))

    panel(ax, 1.7, top, 1.45, row_h, "1 Latent codes")
    arrow(ax, (1.6, mid_top), (1.7, mid_top))
    f1 = Frame(1.9, top + 0.12, 1.1, 1.05)
    dots(ax, f1(SKETCH_CTRL), CTRL)
    dots(ax, f1(SKETCH_STIM), STIM)

    panel(ax, 3.25, top, 1.45, row_h, "2 Cost matrix")
    arrow(ax, (3.15, mid_top), (3.25, mid_top))
    matrix(ax, 3.65, top + 0.37, 0.72, cost)
    text(ax, 3.975, top + 0.19, "distance (dark = far)", size=7)

    panel(ax, 4.8, top, 1.45, row_h, "3 Exact OT plan")
    arrow(ax, (4.7, mid_top), (4.8, mid_top))
    matrix(ax, 5.2, top + 0.37, 0.72, plan)
    text(ax, 5.525, top + 0.19, "the cheapest pairing", size=7)

    panel(ax, 6.35, top, 1.6, row_h, "4 Matched pairs")
    arrow(ax, (6.25, mid_top), (6.35, mid_top))
    f4 = Frame(6.5, top + 0.3, 1.35, 0.9)
    dots(ax, f4(SKETCH_CTRL), CTRL)
    dots(ax, f4(SKETCH_STIM), STIM)
    for a, b in zip(f4(SKETCH_CTRL), f4(SKETCH_STIM[match])):
        arrow(ax, a + 0.07 * (b - a), b - 0.07 * (b - a), color=MUTED, lw=0.9)
    text(ax, 7.15, top + 0.15, "response d of each pair", size=7)

    # bottom row: the prediction for each held-out control cell
    panel(ax, 0.05, bottom, 1.1, row_h, "Held-out\ntype")
    cloud(ax, rng, (0.6, bottom + 0.72), 7, 0.07, marker="^", color=CTRL, size=18)
    text(ax, 0.6, bottom + 0.35, "control\ncells only", size=7.5)
    network(ax, 1.25, bottom + 0.2, 0.35, row_h - 0.4, "encoder", narrowing=True)
    arrow(ax, (1.15, mid_bottom), (1.25, mid_bottom))

    panel(ax, 1.7, bottom, 2.45, row_h, "5 Attention")
    arrow(ax, (1.6, mid_bottom), (1.7, mid_bottom))
    arrow(ax, (2.45, top), (2.45, bottom + row_h), color=MUTED)
    f5 = Frame(1.8, bottom + 0.38, 1.05, 0.85)
    ref, q = f5(SKETCH_CTRL), f5(SKETCH_QUERY)
    for r, wgt in zip(ref, weights):
        if wgt > 0:
            ax.plot([q[0], r[0]], [q[1], r[1]], color=ATTN, lw=6 * wgt, solid_capstyle="round", zorder=2)
    dots(ax, ref, CTRL)
    dots(ax, q[None], CTRL, marker="^", size=40, edge=INK, zorder=4)
    text(
        ax,
        2.88,
        bottom + 0.85,
        "weights: cosine\nsimilarity to the\nheld-out cell / sum,\nover the 5% most\nsimilar controls",
        size=7,
        ha="left",
    )
    swatch(ax, 1.85, bottom + 0.2, "^", CTRL, "held-out cell")
    swatch(ax, 2.8, bottom + 0.2, "o", CTRL, "training controls")

    panel(ax, 4.25, bottom, 1.5, row_h, "6 Shift")
    arrow(ax, (4.15, mid_bottom), (4.25, mid_bottom))
    f6 = Frame(4.45, bottom + 0.4, 1.2, 1.2)
    q6 = f6((0.0, 0.3))
    for di, wgt in zip(d, weights):
        if wgt > 0:
            arrow(ax, q6, q6 + f6.vector(di), color=ATTN, lw=4 * wgt)
    end = q6 + f6.vector(shift)
    arrow(ax, q6, end, lw=1.5)
    dots(ax, q6[None], CTRL, marker="^", size=40, edge=INK, zorder=5)
    dots(ax, end[None], PRED, marker="^", size=40, edge=INK, zorder=5)
    tip = q6 + f6.vector(d[np.argmax(d[:, 1] * (weights > 0))])
    text(ax, tip[0] + 0.05, tip[1] + 0.02, "d", size=8, weight="bold", color=ATTN, ha="left")
    text(ax, end[0] + 0.09, end[1] - 0.02, "Δ", size=8, weight="bold", ha="left")
    text(ax, 5.0, bottom + 0.26, "Δ = Σ weight × d\nnew code: z + Δ", size=7)

    arrow(ax, (6.6, top), (5.55, bottom + row_h), color=MUTED, rad=-0.25)
    network(ax, 5.85, bottom + 0.2, 0.35, row_h - 0.4, "decoder", narrowing=False)
    arrow(ax, (5.75, mid_bottom), (5.85, mid_bottom))
    arrow(ax, (6.2, mid_bottom), (6.35, mid_bottom))
    panel(ax, 6.35, bottom, 1.6, row_h, "")
    text(ax, 7.15, bottom + 1.35, "Predicted\nstimulated cells", size=7.5, weight="bold", va="top")
    cloud(ax, rng, (7.15, bottom + 0.5), 7, 0.07, marker="^", color=PRED, size=18)
    return fig


CELL_TYPES = ["CD4+ T cells", "CD14+ Monocytes", "CD16+ Monocytes", "CD8+ T cells", "NK cells", "B", "DC", "T"]
HELD_OUT = CELL_TYPES[0]  # the example split (the live slice of notebook 03)
N_SEEDS = 5
HIDDEN = dict(fc="white", ec=MUTED, hatch="/////", lw=0.8)  # cells never shown to a method


def tile(
    ax: Axes, x: float, y: float, w: float, h: float, *, label: str = "", label_color: str = "white", **style
) -> None:
    ax.add_patch(Rectangle((x, y), w, h, zorder=2, **style))
    if label:
        text(ax, x + w / 2, y + h / 2, label, size=6.5, weight="bold", color=label_color, zorder=3)


def method_box(ax: Axes, x: float, y: float, w: float, h: float, name: str, words: str, *, face: str) -> None:
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.05", fc=face, ec=MUTED, lw=0.8, zorder=2)
    )
    if words:
        text(ax, x + 0.07, y + h - 0.08, name, size=7.5, weight="bold", ha="left", va="top", zorder=3)
        text(ax, x + 0.07, y + 0.05, words, size=6.5, ha="left", va="bottom", zorder=3)
    else:
        text(ax, x + w / 2, y + h / 2, name, size=7.5, weight="bold", zorder=3)


def draw_evaluation_design() -> Figure:
    """Evaluation design: one cell type held out, baselines beside the models, paired runs over types and seeds."""
    fig, ax = canvas()
    up, up_h = 1.3, 2.15  # the split, the methods and the scoring share this band

    # the split
    panel(ax, 0.05, up, 2.85, up_h, f"One split: {HELD_OUT} held out")
    x_ctrl, x_stim, cw, rh = 1.5, 2.2, 0.6, 0.16
    y_first = up + up_h - 0.66
    text(ax, x_ctrl + cw / 2, y_first + 0.25, "control", size=7, color=CTRL, weight="bold")
    text(ax, x_stim + cw / 2, y_first + 0.25, "stimulated", size=7, color=STIM, weight="bold")
    for i, name in enumerate(CELL_TYPES):
        y = y_first - i * rh
        held = name == HELD_OUT
        text(ax, x_ctrl - 0.08, y + rh / 2 - 0.01, name, size=7, ha="right", weight="bold" if held else "normal")
        if held:
            tile(ax, x_ctrl, y + 0.012, cw, rh - 0.024, label="input", fc=CTRL, ec=INK, lw=0.8)
            tile(ax, x_stim, y + 0.012, cw, rh - 0.024, **HIDDEN)
            text(
                ax,
                x_stim + cw / 2,
                y + rh / 2,
                "hidden",
                size=6.5,
                weight="bold",
                zorder=3,
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none"),
            )
        else:
            tile(ax, x_ctrl, y + 0.012, cw, rh - 0.024, fc=CTRL, alpha=0.35, lw=0)
            tile(ax, x_stim, y + 0.012, cw, rh - 0.024, fc=STIM, alpha=0.35, lw=0)
    text(
        ax,
        1.475,
        up + 0.2,
        "pale: training cells. The stimulated cells of\nthe held-out type are never seen in training.",
        size=6.5,
    )

    # the methods
    panel(ax, 3.05, up, 2.3, up_h, "Every method, same input")
    arrow(ax, (2.9, up + up_h / 2), (3.05, up + up_h / 2))
    text(ax, 3.15, up + 1.76, "baselines", size=6.5, ha="left", color=MUTED)
    method_box(ax, 3.15, up + 1.3, 2.1, 0.4, "no change", "predicts the control cells as they are", face="white")
    method_box(
        ax,
        3.15,
        up + 0.62,
        2.1,
        0.6,
        "mean shift",
        "control cells + the average change\n(stimulated − control) of the training\ntypes, gene by gene",
        face="white",
    )
    text(ax, 3.15, up + 0.51, "models", size=6.5, ha="left", color=MUTED)
    method_box(ax, 3.15, up + 0.1, 1.0, 0.34, "scGen", "", face=NET)
    method_box(ax, 4.25, up + 0.1, 1.0, 0.34, "scPRAM", "", face=NET)

    # the scoring
    panel(ax, 5.5, up, 2.45, up_h, "Scoring")
    arrow(ax, (5.35, up + up_h / 2), (5.5, up + up_h / 2))
    tile(ax, 5.62, up + 1.64, 0.3, 0.16, fc=PRED, lw=0)
    text(ax, 6.0, up + 1.72, "predicted stimulated cells", size=7, ha="left")
    text(ax, 6.725, up + 1.53, "compared with", size=7, color=MUTED)
    tile(ax, 5.62, up + 1.26, 0.3, 0.16, **HIDDEN)
    text(ax, 6.0, up + 1.34, f"the real stimulated\n{HELD_OUT} (hidden)", size=7, ha="left")
    text(ax, 5.62, up + 1.06, "on four key metrics:", size=7, ha="left", weight="bold", va="top")
    text(
        ax,
        5.62,
        up + 0.88,
        "• direction of the change\n   (Pearson-Δ, top 100 DEGs)\n• mean of each gene (R²)\n"
        "• distribution of cells (E-distance)\n• responders found (DEG overlap)",
        size=7,
        ha="left",
        va="top",
    )

    # the paired runs
    panel(ax, 0.05, 0.05, 7.9, 1.1, "")
    text(ax, 0.2, 0.98, "Paired runs", size=8.5, weight="bold", ha="left")
    gx, gy, sq = 0.95, 0.14, 0.13
    for j in range(len(CELL_TYPES)):
        for k in range(N_SEEDS):
            current = j == 0 and k == 0
            tile(
                ax,
                gx + j * (sq + 0.04),
                gy + (N_SEEDS - 1 - k) * (sq + 0.02),
                sq,
                sq,
                fc=PRED if current else "white",
                ec=MUTED,
                lw=0.6,
            )
    text(ax, 0.88, gy + N_SEEDS * (sq + 0.02) / 2, "5 seeds", size=7, ha="right")
    text(ax, gx + len(CELL_TYPES) * (sq + 0.04) / 2, 0.98, "8 held-out cell types", size=7)
    text(
        ax,
        2.45,
        0.58,
        "One square is one run: one held-out cell type and one seed. In a run all four methods get the\n"
        "same split, the same training cells and the same seed, so two methods are compared run by run\n"
        "(method A − method B within each run). Across cell types, each held-out type counts once:\n"
        "its 5 seeds are averaged first.",
        size=7,
        ha="left",
    )
    return fig


FIGURES: dict[str, Callable[[], Figure]] = {
    "scgen.svg": draw_scgen,
    "scpram.svg": draw_scpram,
    "evaluation_design.svg": draw_evaluation_design,
}


# ---------------------------------------------------------------------------------------------
# writing and checking


def text_problems(fig: Figure) -> list[str]:
    """Pairs of labels whose boxes overlap, and labels that leave the figure (empty when the layout is clean)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes for t in ax.texts if t.get_text()]
    problems = [
        f"{s!r} leaves the figure"
        for s, b in boxes
        if b.x0 < page.x0 or b.y0 < page.y0 or b.x1 > page.x1 or b.y1 > page.y1
    ]
    for i, (s1, b1) in enumerate(boxes):
        for s2, b2 in boxes[i + 1 :]:
            if b1.x0 < b2.x1 - 1 and b2.x0 < b1.x1 - 1 and b1.y0 < b2.y1 - 1 and b2.y0 < b1.y1 - 1:
                problems.append(f"{s1!r} overlaps {s2!r}")
    return problems


def render(name: str) -> bytes:
    """The SVG bytes of figure ``name`` (one of ``FIGURES``), titled with the first line of its docstring."""
    draw = FIGURES[name]
    metadata = {"Date": None, "Title": draw.__doc__.splitlines()[0]}
    with matplotlib.rc_context(RC):
        fig = draw()
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata=metadata)
    return buf.getvalue()


def write_figures(folder: Path = FIGURES_DIR, *, png: Path | None = None) -> list[Path]:
    """Write every figure as SVG into ``folder`` (and as PNG into ``png``); returns the SVG paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in FIGURES:
        path = folder / name
        path.write_bytes(render(name))
        paths.append(path)
        if png is not None:
            png.mkdir(parents=True, exist_ok=True)
            with matplotlib.rc_context(RC):
                fig = FIGURES[name]()
                fig.savefig(png / Path(name).with_suffix(".png"), dpi=150)
    return paths


def stale(folder: Path = FIGURES_DIR) -> list[str]:
    """Names of the figures whose file in ``folder`` is missing or differs from what would be written."""
    return [name for name in FIGURES if not (folder / name).exists() or (folder / name).read_bytes() != render(name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed figure is stale")
    parser.add_argument("--png", type=Path, help="also write PNG previews into this folder")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(
                f"{FIGURES_DIR / name} is stale: run python scripts/make_diagrams.py "
                f"(matplotlib {matplotlib.__version__})"
            )
        return 1 if names else 0
    for path in write_figures(png=args.png):
        print("wrote", path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
