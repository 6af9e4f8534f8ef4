"""Print the committed benchmark grid's verdicts as markdown (for the results page and closing notes).

Usage (from the repository root, course environment)::

    python benchmarks/report_grid.py [results/grid.csv.gz]

Everything printed is computed from the table by :mod:`tutorial_lib.verdicts` (paired over matched
runs: same setting, seed and score group); nothing is typed by hand. Sections: what the table holds
(settings, seeds, methods, provenance, compute), models against baselines and against each other
per design, scPRAM's named variants against the released ``scpram``, and the imbalance
interaction (stim20 vs balanced) where both designs are present.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from tutorial_lib.verdicts import interaction, verdict_table

METRICS = [
    ("pearson_delta", "top100_degs"),
    ("r2_pearson_mean", "top100_degs"),
    ("e_distance", "all"),
    ("deg_jaccard", "top100_degs"),
]
PAIRS = [
    ("scgen", "mean_shift"),
    ("scgen", "no_change"),
    ("scpram", "mean_shift"),
    ("scpram", "no_change"),
    ("scgen", "scpram"),
    ("pca_arithmetic", "mean_shift"),
    ("mean_shift", "no_change"),
    ("scpram_percell", "scpram"),
    ("scpram_percell_exact", "scpram"),
    ("scpram_percell_exact", "scpram_percell"),
    ("scgen_residual", "scgen"),
    ("scpram_percell_residual", "scpram_percell"),
]


def _fmt(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:+.3f}"


def markdown_verdicts(v: pd.DataFrame, by: str) -> str:
    """One markdown table of :func:`verdict_table` rows."""
    lines = [
        f"| {by} | A | B | metric (gene set) | better | n | mean A | mean B | A − B [95% CI] | verdict |",
        "|---|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in v.itertuples(index=False):
        r = r._asdict()
        ci = f"{_fmt(r['diff'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        lines.append(
            f"| {r[by]} | {r['method_a']} | {r['method_b']} | {r['metric']} ({r['gene_set']}) | {r['direction']} "
            f"| {r['n']} | {r['mean_a']:.3f} | {r['mean_b']:.3f} | {ci} | {r['verdict']} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "results/grid.csv.gz")
    if not path.exists():
        print(f"{path} not found; make it with `python -m tutorial_lib.grid --out {path}`", file=sys.stderr)
        return 2
    table = pd.read_csv(path)
    n_top = table.loc[table["gene_set"].str.endswith("_degs"), "gene_set"].iloc[0]  # e.g. top100_degs
    global METRICS
    METRICS = [(m, n_top if g.endswith("_degs") else g) for m, g in METRICS]
    runs = table.drop_duplicates("key")
    print(f"## What `{path}` holds\n")
    print(f"- settings: {', '.join(sorted(table['setting'].unique()))}")
    print(f"- seeds: {sorted(table['seed'].unique().tolist())}; methods: {', '.join(table['method'].unique())}")
    print(f"- {len(runs)} method runs; commits {', '.join(sorted(runs['git_commit'].astype(str).unique()))}")
    print(
        f"- machine: {'; '.join(sorted(runs['machine'].astype(str).unique()))}; device: "
        f"{'; '.join(sorted(runs['device'].astype(str).unique()))}"
    )
    print(f"- finished {runs['finished_at'].min()} to {runs['finished_at'].max()}")
    fit, ev = runs["fit_predict_s"].sum(), runs["evaluate_s"].sum()
    print(
        f"- compute: {fit / 60:.1f} min training + prediction, {ev / 60:.1f} min evaluation "
        f"({(fit + ev) / 3600:.2f} h in all, summed over processes)"
    )
    if "train_steps" in runs.columns:
        trained = runs.dropna(subset=["train_steps"])
        per = trained.groupby("method")[["train_steps", "best_val_loss", "stopped_early", "fit_predict_s"]].mean()
        print("\nTrained models, mean over their runs:\n")
        print(per.round(2).to_markdown())
    for design, part in table.groupby("design", sort=False):
        pairs = [p for p in PAIRS if set(p) <= set(part["method"])]
        by = "score_group" if design == "donors" else "setting"  # donors: one verdict per cell type, never pooled
        v = verdict_table(part, METRICS, pairs, by=(by,))
        print(
            f"\n## Paired verdicts, design `{design}`"
            + (" (per cell type of the held-out donors)" if by == "score_group" else "")
            + "\n"
        )
        print(markdown_verdicts(v, by))
    if {"balanced", "stim20"} <= set(table["design"]):
        both = table[table["held_out"].isin(table.loc[table["design"] == "stim20", "held_out"])]
        print("\n## Imbalance: does keeping 20% of the stimulated training cells change A − B?\n")
        print("| A | B | metric | n | A − B stim20 | A − B balanced | change [95% CI] | verdict |")
        print("|---|---|---|---:|---:|---:|---|---|")
        for a, b in [
            ("scgen", "mean_shift"),
            ("scpram", "mean_shift"),
            ("scpram", "scgen"),
            ("scpram_percell", "mean_shift"),
        ]:
            if not {a, b} <= set(both["method"]):
                continue
            for metric, gene_set in METRICS[:3]:
                if not ((both["metric"] == metric) & (both["gene_set"] == gene_set)).any():
                    continue
                r = interaction(both, a, b, metric, gene_set, factor="design", levels=("stim20", "balanced"))
                print(
                    f"| {a} | {b} | {metric} ({gene_set}, {r['direction']} is better) | {r['n']} | "
                    f"{_fmt(r['diff_0'])} | {_fmt(r['diff_1'])} | {_fmt(r['interaction'])} "
                    f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {r['verdict']} |"
                )
        print("\nPer method, stim20 − balanced (paired by held-out type and seed):\n")
        rows = []
        for method in both["method"].unique():
            m = both[both["method"] == method].copy()
            m["method"] = m["design"]
            v = verdict_table(m, METRICS[:3], [("stim20", "balanced")], by=(), match_on=("held_out", "seed"))
            v.insert(0, "model", method)
            rows.append(v)
        if rows:
            print(markdown_verdicts(pd.concat(rows, ignore_index=True).rename(columns={"model": "method"}), "method"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
