"""What the benchmark table shows, in sentences checked against it: notebook 03's "What we found".

Each finding is a claim declared here, before the table is read (as
:data:`course_tools.verdicts.PRIMARY` declares the primary question), and a function that reads a
benchmark table (:func:`course_tools.grid_results.load_grid`) and returns a :class:`Finding`: the
claim in words with the table's numbers in it, whether the table supports it (``holds``) and
those numbers (``evidence``). A finding the table does not support is shown as such, and
``tests/test_findings.py`` fails on the committed table until the claim is rewritten, so the
notebook cannot go on stating what its table stopped saying.

- :func:`pearson_delta_finding`: the models beat the baseline on Pearson-Δ (primary, Holm-corrected);
- :func:`e_distance_finding`: on E-distance the primary verdicts are inconclusive, and the held-out
  cell types disagree (the model is closer to the real cells than the baseline in some, farther in others);
- :func:`models_finding`: scGen against scPRAM (exploratory): no clear difference on the key metrics;
- :func:`development_finding`: the primary verdicts without the cell types used in development;
- :func:`training_finding`: the models' training ended at its step cap, not by early stopping;
- :func:`imbalance_finding`: what the table says about unbalanced training (or that it cannot say);
- :func:`what_we_found`: all of them, as :class:`Findings`;
- :func:`count_verdicts`: per-group verdicts counted, one line per method pair and metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from course_tools.grid_results import (
    DEVELOPMENT_CELL_TYPES,
    WITHDRAWN_METRICS,
    WORSE_FOR,
    imbalance_design,
    imbalance_effects,
    imbalance_interactions,
    same_gene_panels,
    scored_in_both,
    tally_verdicts,
)
from course_tools.verdicts import (
    IDENTICAL,
    MIN_RANK_UNITS,
    PRIMARY,
    PrimaryQuestion,
    format_estimate,
    is_distance,
    primary_units,
    primary_verdicts,
    verdict_table,
)
from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.metrics import KEY_METRICS

#: How findings name methods and metrics in a sentence.
NAMES = {
    "scgen": "scGen",
    "scpram": "scPRAM",
    "mean_shift": "mean shift",
    "no_change": "no change",
    "pearson_delta": "Pearson-Δ",
    "r2_pearson_mean": "R² of means",
    "e_distance": "E-distance",
    "deg_overlap_by_change": "DEG overlap by predicted change",
    "all": "all genes",
}

#: The models whose training :func:`training_finding` reads.
MODELS = ("scgen", "scpram")


def name(key: str) -> str:
    """A method's, metric's or gene set's name in a sentence; other keys unchanged.

    ``"scgen"`` -> ``"scGen"``, ``"top100_degs"`` -> ``"top-100 DEGs"``.
    """
    top = re.fullmatch(r"top(\d+)_degs", key)
    return f"top-{top.group(1)} DEGs" if top else NAMES.get(key, key)


def join_words(items: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"`` (``"none"`` for no items)."""
    items = list(items)
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class Finding:
    """One claim about a benchmark table, and whether the table supports it.

    Attributes
    ----------
    topic
        A few words naming what the claim is about (the heading of its bullet).
    statement
        The claim in words, with the table's numbers.
    holds
        Whether the table supports the claim.
    evidence
        The numbers the claim rests on, by name.
    """

    topic: str
    statement: str
    holds: bool
    evidence: dict[str, float]

    def __str__(self) -> str:
        return f"{self.topic}: {self.statement}" if self.holds else f"{self.topic} (NOT SUPPORTED): {self.statement}"

    def _repr_markdown_(self) -> str:
        if self.holds:
            return f"- **{self.topic}.** {self.statement}"
        return f"- **{self.topic}: not supported by this table.** The claim was: {self.statement}"


@dataclass(frozen=True)
class Findings:
    """Several findings (:class:`Finding`), shown as a markdown list."""

    items: tuple[Finding, ...]

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def holds(self) -> bool:
        """Whether the table supports every finding."""
        return all(f.holds for f in self.items)

    def __str__(self) -> str:
        return "\n".join(f"- {f}" for f in self.items)

    def _repr_markdown_(self) -> str:
        return "\n".join(f._repr_markdown_() for f in self.items)


def key_metrics(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The course's key metrics (:data:`tutorial_lib.metrics.KEY_METRICS`) that the table holds and reports."""
    held = set(zip(table["metric"], table["gene_set"]))
    return [
        (k.metric, k.gene_set)
        for k in KEY_METRICS
        if (k.metric, k.gene_set) in held and k.metric not in WITHDRAWN_METRICS
    ]


def _row(verdicts: pd.DataFrame, model: str, metric: str) -> dict:
    rows = verdicts[(verdicts["model"] == model) & (verdicts["metric"] == metric)]
    if rows.empty:
        raise DataValidationError(f"the primary question has no comparison of {model!r} on {metric!r}")
    return rows.iloc[0].to_dict()


def _estimate(row: dict, digits: int = 3) -> str:
    return format_estimate(row["estimate"], row["ci_low"], row["ci_high"], row["scale"], digits)


def _evidence(rows: Sequence[dict], prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}{r['model']}_{key}": float(r[key])
        for r in rows
        for key in ("estimate", "ci_low", "ci_high", "p_holm")
    }


def pearson_delta_finding(
    table: pd.DataFrame, question: PrimaryQuestion = PRIMARY, metric: str = "pearson_delta"
) -> Finding:
    """Claim: every model of the primary question beats its baseline on ``metric`` (primary verdict "better")."""
    rows = [_row(primary_verdicts(table, question), m, metric) for m in question.models]
    parts = [f"{name(r['model'])} by {_estimate(r)} ({r['level']:.2%} interval)" for r in rows]
    statement = (
        f"{join_words([name(m) for m in question.models])} beat {name(question.baseline)} on {name(metric)} "
        f"({name(rows[0]['gene_set'])}), pooled over the {int(rows[0]['n'])} held-out cell types of the "
        f"{question.design} design: {'; '.join(parts)}. This is the primary question, Holm-corrected over its "
        f"{question.family_size} comparisons; each interval is at the level of its step of Holm's procedure."
    )
    return Finding(f"{name(metric)} (primary)", statement, all(r["verdict"] == "better" for r in rows), _evidence(rows))


def e_distance_finding(table: pd.DataFrame, question: PrimaryQuestion = PRIMARY, metric: str = "e_distance") -> Finding:
    """Claim: the primary verdicts on ``metric`` are inconclusive, and the held-out cell types disagree.

    Holds when every model's verdict is "inconclusive" and each model is worse than the baseline
    (its mean over seeds, in the metric's direction) in some held-out cell types and better in others.
    """
    rows = [_row(primary_verdicts(table, question), m, metric) for m in question.models]
    units = primary_units(table, question)
    units = units[units["metric"] == metric]
    lower = is_distance(metric)
    evidence = _evidence(rows)
    counts, mixed = [], True
    for i, r in enumerate(rows):
        u = units[units["model"] == r["model"]]
        worse = u["mean_model"] > u["mean_baseline"] if lower else u["mean_model"] < u["mean_baseline"]
        k, n = int(worse.sum()), len(u)
        mixed = mixed and 0 < k < n
        of = f"{k} of the {n} held-out cell types" if i == 0 else f"{k} of {n}"
        counts.append(
            f"{name(r['model'])} is farther in {of} and closer in {join_words(list(u.loc[~worse, 'held_out']))}"
        )
        evidence[f"{r['model']}_worse_types"] = float(k)
        evidence[f"{r['model']}_types"] = float(n)
    scale = "ratios of the distances" if rows[0]["scale"] == "ratio" else "differences"
    levels = join_words([format(r["level"], ".2%") for r in rows])
    statement = (
        f"On {name(metric)} ({name(rows[0]['gene_set'])}) the primary verdicts are inconclusive: "
        + "; ".join(f"{name(r['model'])} / {name(question.baseline)} {_estimate(r)}" for r in rows)
        + f" ({scale}, {levels} intervals). The held-out cell types disagree. By the mean {name(metric)} over "
        f"seeds, compared with {name(question.baseline)}, " + "; ".join(counts) + "."
    )
    holds = all(r["verdict"] == "inconclusive" for r in rows) and mixed
    return Finding(f"{name(metric)} (primary)", statement, holds, evidence)


def models_finding(
    table: pd.DataFrame,
    metrics: Sequence[tuple[str, str]] | None = None,
    *,
    pair: tuple[str, str] = ("scgen", "scpram"),
    design: str = "balanced",
) -> Finding:
    """Claim: the two models show no clear difference on ``metrics`` (exploratory, pooled over held-out cell types).

    Paired verdicts (:func:`course_tools.verdicts.verdict_table`) over the held-out cell types of
    ``design``, each the mean of its seeds, 95% intervals without multiplicity control; ``metrics``
    default to :func:`key_metrics`. "No clear difference" says the interval includes no difference,
    not that the two are equal: the statement gives the intervals.
    """
    metrics = key_metrics(table) if metrics is None else list(metrics)
    rows = table[table["design"] == design]
    if rows.empty:
        raise DataValidationError(f"no runs of design {design!r}; the table has {sorted(table['design'].unique())}")
    v = verdict_table(rows, metrics, [pair], by=())
    v = v[v["n"] > 0]
    if v.empty:
        raise DataValidationError(f"no matched runs of {pair} on {metrics} in design {design!r}")
    parts = [
        f"{name(r['metric'])} {format_estimate(r['estimate'], r['ci_low'], r['ci_high'], r['scale'])}"
        + (" (a ratio)" if r["scale"] == "ratio" else "")
        for r in v.to_dict("records")
    ]
    a, b = (name(m) for m in pair)
    statement = (
        f"{a} against {b} ({a} − {b}, or {a} / {b}; exploratory: 95% intervals over the {int(v['n'].max())} held-out "
        f"cell types, no multiplicity control): no clear difference on {join_words(parts)}. Each interval includes "
        "no difference; it also shows how large a difference the table cannot rule out, so this does not show "
        "that the two are equal."
    )
    evidence = {
        f"{r['metric']}_{key}": float(r[key]) for r in v.to_dict("records") for key in ("estimate", "ci_low", "ci_high")
    }
    holds = bool((v["verdict"] == "no clear difference").all())
    return Finding(f"{a} vs {b} (exploratory)", statement, holds, evidence)


def development_finding(table: pd.DataFrame, question: PrimaryQuestion = PRIMARY) -> Finding:
    """Claim: without the held-out cell types used in development the primary verdicts are the same.

    The cell types of :data:`course_tools.grid_results.DEVELOPMENT_CELL_TYPES` that the table holds
    are left out (``primary_verdicts(..., exclude=...)``), and the family is judged again on its own.
    """
    rows = table[table["design"] == question.design]
    dev = [c for c in dict.fromkeys(rows["held_out"]) if c in DEVELOPMENT_CELL_TYPES]
    if not dev:
        raise DataValidationError("the table holds none of the development cell types: nothing to leave out")
    full = primary_verdicts(table, question)
    without = primary_verdicts(table, question, exclude=dev)
    same = list(full["verdict"]) == list(without["verdict"])
    judged = "; ".join(
        f"{name(r['model'])} {r['verdict']} on {name(r['metric'])} ({_estimate(r)})" for r in without.to_dict("records")
    )
    statement = (
        f"{join_words([c + ' (' + DEVELOPMENT_CELL_TYPES[c] + ')' for c in dev])} were used while the course was "
        "developed, "
        f"and they are also held-out units of the primary question. Without them ({int(without['n'].max())} cell "
        f"types) its verdicts are the same: {judged}."
    )
    evidence = _evidence(without.to_dict("records"), prefix="without_")
    return Finding("Development cell types", statement, same, evidence)


def _runs(table: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """One row per run of ``methods``, with ``stopped_early`` as booleans (it may be read as 0/1 or text)."""
    needed = [c for c in ("train_steps", "stopped_early") if c not in table.columns]
    if needed:
        raise DataValidationError(f"the table lacks the columns {needed}: it does not record how training ended")
    rows = table[table["method"].isin(list(methods))].drop_duplicates(["method", "setting", "seed"])
    return rows.assign(stopped_early=rows["stopped_early"].map(lambda v: str(v).lower() in ("true", "1", "1.0")))


def training_finding(table: pd.DataFrame, design: str = "balanced", models: Sequence[str] = MODELS) -> Finding:
    """Claim: every run of the models in ``design`` ended at the step cap, none by early stopping.

    The cap is the most steps any run of the models in the table took. The claim is what a
    notebook may say about its models' training: trained to a budget, which is not the same as
    trained to convergence.
    """
    runs = _runs(table, models)
    cap = int(runs["train_steps"].max())
    part = runs[runs["design"] == design]
    if part.empty:
        raise DataValidationError(f"no runs of {list(models)} in design {design!r}")
    evidence: dict[str, float] = {"cap": float(cap)}
    words = []
    for m in models:
        r = part[part["method"] == m]
        early = int(r["stopped_early"].sum())
        at_cap = int((r["train_steps"] == cap).sum())
        evidence.update({f"{m}_runs": float(len(r)), f"{m}_stopped_early": float(early), f"{m}_at_cap": float(at_cap)})
        words.append(f"{at_cap} of {len(r)} {name(m)} runs")
    holds = all(evidence[f"{m}_at_cap"] == evidence[f"{m}_runs"] > 0 for m in models)
    statement = (
        f"In the {design} design {join_words(words)} ended at the {cap:,}-step cap, none by early stopping "
        "(the table's `stopped_early`): the models were trained to a budget, which is not the same as trained "
        "to convergence."
    )
    return Finding("Training", statement, holds, evidence)


def imbalance_finding(table: pd.DataFrame, models: Sequence[str] = MODELS) -> Finding:
    """Claim: what the table says about unbalanced training (few stimulated training cells).

    With an unbalanced design scored on the balanced runs' gene panels
    (:func:`course_tools.grid_results.same_gene_panels`) over at least
    :data:`course_tools.verdicts.MIN_RANK_UNITS` held-out cell types, the claim is that no model's key
    metrics clearly moved and that imbalance is not clearly worse for one model than for mean shift
    (:func:`~course_tools.grid_results.imbalance_interactions`; exploratory); it holds only if the
    verdicts say so. The statement also gives how many seeds the unbalanced runs cover and the
    training budgets (``stopped_early``). Without such runs the claim is that the table cannot answer.
    """
    question = "whether few stimulated training cells hurt one method more than another"
    unbalanced = imbalance_design(table)
    if unbalanced is None:
        return Finding("Imbalance", f"This table has no unbalanced design: it cannot say {question}.", True, {})
    designs = (unbalanced, "balanced")
    held = [set(table.loc[table["design"] == d, "held_out"]) for d in designs]
    n_types = len(held[0] & held[1])
    panels = same_gene_panels(table, designs)
    evidence = {"cell_types": float(n_types), "same_gene_panels": float(panels)}
    runs = _runs(table, models)
    budgets = []
    for m in models:
        early = [runs.loc[(runs["method"] == m) & (runs["design"] == d), "stopped_early"] for d in designs]
        for d, e in zip(designs, early):
            evidence[f"{m}_stopped_early_{d}"] = float(e.sum())
        budgets.append(
            f"{name(m)} stopped early in {int(early[0].sum())} of {len(early[0])} `{unbalanced}` runs and "
            f"{int(early[1].sum())} of {len(early[1])} balanced ones"
        )
    if not panels or n_types < MIN_RANK_UNITS:
        reasons = []
        if not panels:
            reasons.append(f"its `{unbalanced}` runs were scored on other gene panels than the balanced ones")
        if n_types < MIN_RANK_UNITS:
            reasons.append(f"it covers {n_types} held-out cell types (a rank test needs {MIN_RANK_UNITS})")
        statement = f"This table cannot say {question}: " + "; ".join(reasons) + "."
        return Finding("Imbalance", statement, True, evidence)
    key = scored_in_both(table, key_metrics(table), designs)
    effects = imbalance_effects(table, key, list(models), levels=designs)
    pairs = [(m, "mean_shift") for m in models]
    inter = imbalance_interactions(table, key, pairs, levels=designs)
    moved = effects[~effects["effect"].isin(["no clear change", IDENTICAL])]
    worse = inter[inter["hurt"] != "no clear difference"]
    between = imbalance_interactions(table, key, list(combinations(models, 2)), levels=designs)
    evidence.update(
        {
            "effects_moved": float(len(moved)),
            "interactions_clear": float(len(worse)),
            "model_interactions_clear": float((between["hurt"] != "no clear difference").sum()),
        }
    )
    seeds = table[table["design"] == unbalanced].groupby("held_out")["seed"].nunique()
    n_seeds = int(table.loc[table["design"] == "balanced", "seed"].nunique())
    covered = f"{int(seeds.min())}" if seeds.min() == seeds.max() else f"{int(seeds.min())}–{int(seeds.max())}"
    partial = (
        f" These runs cover {covered} of the {n_seeds} seeds per cell type, so this is a partial, exploratory result."
        if (seeds < n_seeds).any()
        else ""
    )
    statement = (
        f"On one gene panel per held-out cell type ({n_types} cell types, matched by seed), keeping 20% of the "
        f"stimulated training cells clearly moved no key metric of {join_words([name(m) for m in models])}, and "
        f"imbalance was not clearly worse for either model than for {name('mean_shift')} (exploratory intervals, no "
        f"multiplicity control). {_between_models(between)}{partial} Training budgets: " + join_words(budgets) + "."
    )
    return Finding("Imbalance (exploratory)", statement, moved.empty and worse.empty, evidence)


def _between_models(between: pd.DataFrame) -> str:
    """The model-vs-model interactions of :func:`imbalance_finding` in one sentence, from their verdicts."""
    clear = between[between["hurt"].str.startswith(WORSE_FOR)]
    if clear.empty:
        return "Nor was it clearly worse for one model than for the other."
    parts = []
    for r in clear.to_dict("records"):
        a, b = r["method_a"], r["method_b"]
        worse, other = (a, b) if r["hurt"].startswith(f"{WORSE_FOR} {a} ") else (b, a)
        unbalanced, balanced = r["levels"].split(" vs ")
        if r["scale"] == "ratio":
            contrast = f"{name(a)} / {name(b)} in `{unbalanced}` over the same in {balanced}"
        else:
            contrast = f"{name(a)} − {name(b)} in `{unbalanced}` minus the same in {balanced}"
        estimate = format_estimate(r["interaction"], r["ci_low"], r["ci_high"], r["scale"])
        parts.append(
            f"for {name(worse)} than for {name(other)} on {name(r['metric'])} of the {name(r['gene_set'])} "
            f"({contrast}: {estimate})"
        )
    rest = "" if len(clear) == len(between) else "; on the other key metrics there was no clear difference between them"
    return f"Between the models, imbalance was worse {join_words(parts)}{rest}."


def count_verdicts(verdicts: pd.DataFrame, groups: str = "held-out cell types") -> str:
    """One line per method pair and metric of a per-group verdict table: how many groups gave each verdict.

    ``verdicts`` is :func:`course_tools.verdicts.verdict_table`'s output with one row per group (e.g.
    ``by=("held_out",)``); ``groups`` names what a group is. The lines answer "where is A better than
    B" at a glance; the verdicts themselves are exploratory (no multiplicity control).
    """
    lines = []
    for r in tally_verdicts(verdicts).to_dict("records"):
        a, b = r["method_a"], r["method_b"]
        counts = [
            f"{a} better in {int(r.get(f'{a} better', 0))}",
            f"no clear difference in {int(r.get('no clear difference', 0))}",
            f"{b} better in {int(r.get(f'{b} better', 0))}",
        ]
        lines.append(f"{a} vs {b}, {r['metric']} ({r['gene_set']}): {', '.join(counts)} of {int(r['groups'])} {groups}")
    return "\n".join(lines)


def what_we_found(table: pd.DataFrame, question: PrimaryQuestion = PRIMARY) -> Findings:
    """Every finding of this module on ``table``, in the order notebook 03 shows them."""
    return Findings(
        (
            pearson_delta_finding(table, question),
            e_distance_finding(table, question),
            models_finding(table, design=question.design),
            development_finding(table, question),
            training_finding(table, design=question.design),
            imbalance_finding(table),
        )
    )
