"""Benchmark runner: tidy results, identical genes per comparison, cache and interrupted runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import course_tools.scoring.evaluate as evaluate_module
from course_tools.benchmark import BenchmarkConfig, Setting, read_results, run_benchmark, shared_genes, summarise
from tutorial_lib.data import DataValidationError, normalise_log

SETTINGS = [
    Setting("CD4 balanced", "CD4+ T cells"),
    Setting("CD4 20%", "CD4+ T cells", stimulated_fraction=0.2),
    Setting("B", "B"),
]
CONFIG = BenchmarkConfig(n_top_genes=200, max_epochs=1, n_bootstrap=3, n_top_degs=20)
METHODS = ["no_change", "mean_shift"]


def test_results_table_is_tidy_and_complete(mini_counts, tmp_path):
    path = tmp_path / "results.csv"
    table = run_benchmark(
        mini_counts, METHODS, SETTINGS, seeds=[0, 1], config=CONFIG, results_path=path, progress=False
    )
    runs = table[["method", "setting", "seed"]].drop_duplicates()
    assert len(runs) == len(METHODS) * len(SETTINGS) * 2
    assert {"metric", "gene_set", "value", "ci_low", "ci_high"} <= set(table.columns)
    reloaded = read_results(path)
    assert len(reloaded) == len(table)
    pd.testing.assert_series_equal(reloaded["value"], table["value"], check_names=False)
    summary = summarise(table)
    assert (summary["n_runs"] == 2).all()
    undefined = summary[summary["n_defined"] == 0]
    assert set(undefined["method"]) == {"no_change"}  # pearson_delta / DEG overlap of no change
    assert undefined["note"].str.startswith("undefined").all()
    assert (summary.loc[summary["n_defined"] > 0, "note"] == "").all()


def test_finished_runs_are_not_recomputed(mini_counts, tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    first = run_benchmark(
        mini_counts, METHODS, SETTINGS[:1], seeds=[0], config=CONFIG, results_path=path, progress=False
    )

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(evaluate_module, "evaluate", must_not_run)
    again = run_benchmark(
        mini_counts, METHODS, SETTINGS[:1], seeds=[0], config=CONFIG, results_path=path, progress=False
    )
    pd.testing.assert_frame_equal(first, again)


def test_interrupted_run_keeps_finished_results(mini_counts, tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    real_evaluate = evaluate_module.evaluate
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(mini_counts, METHODS, SETTINGS[:2], seeds=[0], config=CONFIG, results_path=path, progress=False)
    partial = read_results(path)
    assert len(partial[["method", "setting"]].drop_duplicates()) == 2
    assert not (tmp_path / "results.csv.part").exists()
    monkeypatch.setattr(evaluate_module, "evaluate", real_evaluate)
    full = run_benchmark(
        mini_counts, METHODS, SETTINGS[:2], seeds=[0], config=CONFIG, results_path=path, progress=False
    )
    assert len(full[["method", "setting"]].drop_duplicates()) == 4


def test_shared_genes_ignore_every_held_out_group(mini_counts):
    a = normalise_log(mini_counts)
    genes = shared_genes(a, SETTINGS, 200)
    held = (a.obs["condition"] == "stimulated").to_numpy() & a.obs["cell_type"].isin(["CD4+ T cells", "B"]).to_numpy()
    x = a.X.toarray()
    rng = np.random.default_rng(0)
    x[held] = rng.permutation(x[held].ravel()).reshape(x[held].shape) * 2
    a.X = x
    assert shared_genes(a, SETTINGS, 200) == genes


def test_bad_inputs(mini_counts, tmp_path):
    with pytest.raises(ValueError, match="unique"):
        run_benchmark(mini_counts, METHODS, [Setting("x"), Setting("x")], config=CONFIG, progress=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataValidationError, match="not a benchmark results file"):
        read_results(bad)


def test_evaluate_methods_shares_space_and_degs_and_formats(mini_counts):
    from course_tools.benchmark import evaluate_methods, format_scores
    from course_tools.methods import get_method
    from course_tools.scoring.evaluate import evaluate
    from tutorial_lib.data import prepare_holdout, split_views
    from tutorial_lib.metrics import fit_shared_pca, rank_degs

    parts = split_views(prepare_holdout(mini_counts, n_top_genes=200))
    preds = {m: get_method(m)(parts.train, parts.ctrl, cell_type="CD4+ T cells") for m in METHODS}
    scores = evaluate_methods(parts.test, parts.ctrl, preds, n_top_degs=20, n_bootstrap=3, seed=0)
    alone = evaluate(
        parts.test,
        preds["mean_shift"],
        parts.ctrl,
        degs=rank_degs(parts.test, parts.ctrl, k=20),
        n_top_degs=20,
        n_bootstrap=3,
        seed=0,
        space=fit_shared_pca(parts.test, parts.ctrl, seed=0),
    )
    mine = scores[scores["method"] == "mean_shift"].drop(columns="method").reset_index(drop=True)
    pd.testing.assert_series_equal(mine["value"], alone["value"])
    # each row carries its metric's direction, which the bar plots read for their labels
    direction = scores.drop_duplicates("metric").set_index("metric")["lower_is_better"]
    assert direction["e_distance"] and not direction["pearson_delta"] and not direction["r2_pearson_mean"]
    wide = format_scores(scores)
    assert list(wide.columns) == METHODS
    assert wide.loc[("pearson_delta", "top20_degs"), "no_change"] == "undefined"
    assert wide.loc[("e_distance", "all"), "mean_shift"].count("[") == 1
    with pytest.raises(ValueError, match="empty"):
        evaluate_methods(parts.test, parts.ctrl, {})


def _runs(rows):
    cols = ["method", "setting", "seed", "metric", "gene_set", "value", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=cols)


def test_rank_methods_orders_by_direction_and_measures_spread():
    from course_tools.benchmark import describe_ranking, rank_methods

    table = _runs(
        [
            ("a", "s", 0, "e_distance", "all", 1.0, 0.9, 1.1),
            ("a", "s", 1, "e_distance", "all", 1.2, 1.0, 1.4),
            ("b", "s", 0, "e_distance", "all", 0.5, 0.4, 0.6),
            ("b", "s", 1, "e_distance", "all", 0.7, 0.6, 0.8),
            ("c", "s", 0, "e_distance", "all", np.nan, np.nan, np.nan),
            ("a", "s", 0, "pearson_delta", "all", 0.9, 0.8, 1.0),
            ("b", "s", 0, "pearson_delta", "all", 0.8, 0.7, 0.9),
        ]
    )
    ranked = rank_methods(table, "e_distance")
    assert list(ranked["method"]) == ["b", "a"]  # lower is better; c is undefined and left out
    np.testing.assert_allclose(ranked["mean"], [0.6, 1.1])
    np.testing.assert_allclose(ranked["sd"], [np.sqrt(0.02), np.sqrt(0.02)])
    np.testing.assert_allclose(ranked["half_width"], [0.1, 0.15])
    assert list(rank_methods(table, "pearson_delta")["method"]) == ["a", "b"]  # higher is better
    text = describe_ranking(table, "e_distance", setting="s")
    assert text.startswith("[s] e_distance (all, lower is better): b 0.600 ± 0.141 > a 1.100 ± 0.141")
    # two matched runs: the paired verdict refuses to judge
    assert "b - a = -0.500" in text and "too few matched runs to judge (n=2, need 3)" in text
    three = pd.concat(
        [
            table,
            _runs(
                [("a", "s", 2, "e_distance", "all", 1.1, 1.0, 1.2), ("b", "s", 2, "e_distance", "all", 0.55, 0.5, 0.6)]
            ),
        ]
    )
    assert describe_ranking(three, "e_distance", setting="s").endswith("-> b better")
    close = _runs(
        [
            ("a", "s", 0, "pearson_delta", "all", 0.80, 0.70, 0.90),
            ("b", "s", 0, "pearson_delta", "all", 0.79, 0.69, 0.89),
        ]
    )
    one_run = describe_ranking(close.drop(columns=["setting", "seed"]), "pearson_delta")
    assert "over 1 matched runs -> too few matched runs to judge (n=1, need 3)" in one_run


def test_rank_methods_refuses_ambiguous_or_missing_rows():
    from course_tools.benchmark import rank_methods

    table = _runs(
        [("a", "s1", 0, "e_distance", "all", 1.0, 0.9, 1.1), ("a", "s2", 0, "e_distance", "all", 2.0, 1.9, 2.1)]
    )
    with pytest.raises(DataValidationError, match="several settings"):
        rank_methods(table, "e_distance")
    assert rank_methods(table, "e_distance", setting="s2")["mean"].iloc[0] == 2.0
    with pytest.raises(DataValidationError, match="no rows for metric 'mmd'"):
        rank_methods(table, "mmd")
    with pytest.raises(DataValidationError, match="lacks the columns"):
        rank_methods(table.drop(columns="gene_set"), "e_distance")


def test_mean_sd_table_of_a_benchmark(mini_counts):
    from course_tools.benchmark import mean_sd_table

    table = run_benchmark(mini_counts, METHODS, SETTINGS[:1], seeds=[0, 1], config=CONFIG, progress=False)
    summary = summarise(table)
    wide = mean_sd_table(summary, [("e_distance", "all"), ("pearson_delta", "top20_degs"), ("pearson_delta", "all")])
    assert list(wide.index) == METHODS
    assert list(wide.columns.get_level_values("gene_set")) == ["all", "top20_degs", "all"]
    assert wide.loc["no_change", ("pearson_delta", "top20_degs", "CD4 balanced")] == "undefined"
    row = summary.query("method == 'mean_shift' and metric == 'e_distance'").iloc[0]
    assert wide.loc["mean_shift", ("e_distance", "all", "CD4 balanced")] == f"{row['mean']:.3f} ± {row['std']:.3f}"
    both = summary.query("method == 'mean_shift' and metric == 'pearson_delta'").set_index("gene_set")["mean"]
    assert wide.loc["mean_shift", ("pearson_delta", "all", "CD4 balanced")].startswith(f"{both['all']:.3f}")
    assert wide.loc["mean_shift", ("pearson_delta", "top20_degs", "CD4 balanced")].startswith(
        f"{both['top20_degs']:.3f}"
    )
    with pytest.raises(DataValidationError, match="no rows for metric"):
        mean_sd_table(summary, [("e_distance", "top20_degs")])


def test_an_unbalanced_setting_is_scored_on_its_balanced_twins_gene_panel(mini_counts, monkeypatch):
    """Genes are chosen on the setting's training cells before stimulated cells are dropped: the 20%
    setting and the balanced one share one panel, so a method whose predictions and test cells are the
    same in both (no_change) scores exactly the same in both."""
    import course_tools.benchmark as bm
    from tutorial_lib.data.split import SPLIT_KEY

    seen = []
    real_run_genes = bm.run_genes

    def spy(adata, n_top_genes):
        train = adata.obs[SPLIT_KEY] == "train"
        seen.append((int(train.sum()), int((train & (adata.obs["condition"] == "stimulated")).sum())))
        return real_run_genes(adata, n_top_genes)

    monkeypatch.setattr(bm, "run_genes", spy)
    table = run_benchmark(
        mini_counts, ["no_change", "mean_shift"], SETTINGS[:2], seeds=[0], config=CONFIG, progress=False
    )
    assert seen[0] == seen[1]  # the same training cells chose both panels: before subsampling
    keys = table.groupby("setting")["key"].first()
    assert keys["CD4 balanced"] != keys["CD4 20%"]
    scores = table.set_index(["method", "setting", "metric", "gene_set"])["value"].unstack("setting")
    unchanged = scores.loc["no_change"]
    np.testing.assert_array_equal(unchanged["CD4 balanced"], unchanged["CD4 20%"])
    # mean shift's training cells differ (fewer stimulated cells): its scores move
    assert not np.allclose(
        scores.loc["mean_shift", "CD4 balanced"], scores.loc["mean_shift", "CD4 20%"], equal_nan=True
    )
    assert {"fit_predict_s", "evaluate_s"} <= set(table.columns)
    assert (table["evaluate_s"] > 0).all() and (table["fit_predict_s"] >= 0).all()
    assert (table["score_group"] == "all").all()
    shared = run_benchmark(
        mini_counts,
        ["mean_shift"],
        SETTINGS[:2],
        seeds=[0],
        progress=False,
        config=BenchmarkConfig(**{**CONFIG.__dict__, "gene_selection": "shared"}),
    )
    assert len(seen) == 2  # "shared" does not choose genes per run
    assert shared["key"].nunique() == 2
    with pytest.raises(ValueError, match="gene_selection"):
        run_benchmark(
            mini_counts,
            ["mean_shift"],
            SETTINGS[:1],
            seeds=[0],
            progress=False,
            config=BenchmarkConfig(gene_selection="pooled"),
        )


def test_donor_setting_is_scored_within_cell_types(mini_counts):
    from course_tools.benchmark import MIN_GROUP_CELLS

    donors = tuple(sorted(mini_counts.obs["donor"].astype(str).unique())[:2])
    setting = Setting("donors", donors=donors, score_by="cell_type")
    table = run_benchmark(mini_counts, ["mean_shift"], [setting], seeds=[0], config=CONFIG, progress=False)
    held = mini_counts[mini_counts.obs["donor"].astype(str).isin(donors)].obs
    counts = held.groupby(["cell_type", "condition"], observed=True).size().unstack()
    expected = {str(g) for g, r in counts.iterrows() if r.min() >= MIN_GROUP_CELLS}
    assert set(table["score_group"]) == expected and len(expected) >= 2
    per_group = table.query("metric == 'e_distance'")
    assert len(per_group) == len(expected)  # one score per cell type, none pooled


def test_custom_fit_predict_replaces_the_registry_one(mini_counts):
    from course_tools.methods import get_method

    calls = []

    def wrapped(train, ctrl, **kw):
        calls.append(kw["seed"])
        return get_method("mean_shift")(train, ctrl, **kw)

    table = run_benchmark(
        mini_counts,
        ["no_change", "shifted"],
        SETTINGS[:1],
        seeds=[3],
        config=CONFIG,
        progress=False,
        fit_predicts={"shifted": wrapped},
    )
    assert calls == [3] and set(table["method"]) == {"no_change", "shifted"}
    with pytest.raises(ValueError, match="Unknown method"):
        run_benchmark(mini_counts, ["nope"], SETTINGS[:1], config=CONFIG, progress=False)


def test_run_key_changes_with_the_models_training_defaults(monkeypatch):
    from course_tools.benchmark import BenchmarkConfig, Setting, run_key
    from tutorial_lib.models import SCGEN

    setting, config, genes = Setting("s", cell_type="B"), BenchmarkConfig(), ["g1", "g2"]
    before = run_key("scgen", setting, 0, config, genes)
    baseline = run_key("mean_shift", setting, 0, config, genes)
    monkeypatch.setattr(SCGEN, "train_defaults", SCGEN.train_defaults.replace(lr=123.0))
    assert run_key("scgen", setting, 0, config, genes) != before  # cached results of the old default are not reused
    assert run_key("mean_shift", setting, 0, config, genes) == baseline  # nothing to train: unchanged


def test_default_params_resolve_the_variant_settings():
    from course_tools.tuning.study import default_params
    from tutorial_lib.models.scpram import VARIANTS

    assert default_params("scpram")["ratio"] == VARIANTS["released"].ratio
