"""Time one ``evaluate`` call (train + predict + evaluate: the evaluate part) on Kang 2018.

Kang 2018 (``--dataset``), 2,000 HVGs chosen on training cells, stimulated CD4+ T cells held
out, the ``mean_shift`` prediction; ``evaluate`` with 100 resamples for the per-gene metrics and
distances and ``--degs`` resamples for the DEG overlap, with the shared PCA fitted inside the call
(``space="pca"``, as every call did before) and passed in (fitted once per comparison).
Run it with another checkout first on ``PYTHONPATH`` to compare library versions side by side.
``--pca-check`` also compares the E-distance (1,000 cells per group, as ``evaluate``) in the
space of the exact SVD, of sklearn's default randomized SVD and of ``fit_shared_pca``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from course_tools.methods import get_method
from course_tools.scoring.evaluate import evaluate
from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
from tutorial_lib.metrics import fit_shared_pca


def pca_check(parts, pred) -> None:
    import numpy as np
    from sklearn.decomposition import PCA

    from tutorial_lib.metrics import e_distance
    from tutorial_lib.metrics._inputs import to_dense

    real, ctrl, pr = to_dense(parts.test.X), to_dense(parts.ctrl.X), to_dense(pred.X)
    x = np.vstack([real, ctrl])
    rng = np.random.default_rng(0)
    ir = np.sort(rng.choice(real.shape[0], min(1000, real.shape[0]), replace=False))
    ip = np.sort(rng.choice(pr.shape[0], min(1000, pr.shape[0]), replace=False))
    for label, pca in [
        ("exact SVD", PCA(50, svd_solver="full")),
        ("randomized, sklearn defaults", PCA(50, svd_solver="randomized", random_state=0)),
    ]:
        start = time.perf_counter()
        pca.fit(x)
        wall = time.perf_counter() - start
        e = e_distance((real[ir] - pca.mean_) @ pca.components_.T, (pr[ip] - pca.mean_) @ pca.components_.T)
        print(f"PCA {label}: {wall:.1f} s, e_distance {e:.4f}")
    start = time.perf_counter()
    space = fit_shared_pca(parts.test, parts.ctrl, seed=0)
    wall = time.perf_counter() - start
    e = e_distance(space.transform(real[ir]), space.transform(pr[ip]))
    print(f"PCA fit_shared_pca: {wall:.1f} s, e_distance {e:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="full", choices=["full", "mini"])
    p.add_argument("--degs", type=int, default=10, help="DEG overlap resamples")
    p.add_argument("--pca-check", action="store_true", help="exact vs randomized PCA: E-distance")
    args = p.parse_args()
    parts = split_views(prepare_holdout(load_kang2018(args.dataset), n_top_genes=2000))
    pred = get_method("mean_shift")(parts.train, parts.ctrl, cell_type="CD4+ T cells")
    print(
        f"{parts.test.n_obs} real, {pred.n_obs} predicted, {parts.ctrl.n_obs} control cells"
        f" x {parts.test.n_vars} genes; "
        f"{platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    if args.pca_check:
        pca_check(parts, pred)
    start = time.perf_counter()
    space = fit_shared_pca(parts.test, parts.ctrl, seed=0)
    print(f"fit_shared_pca: {time.perf_counter() - start:.1f} s")
    for label, kw in [("space='pca' (fitted in the call)", {}), ("space passed in", {"space": space})]:
        for degs in (0, args.degs):
            start = time.perf_counter()
            table = evaluate(parts.test, pred, parts.ctrl, n_bootstrap=100, n_bootstrap_degs=degs, seed=0, **kw)
            wall = time.perf_counter() - start
            e = table.set_index("metric").loc["e_distance"]
            print(
                f"evaluate, {label}, {degs} DEG resamples: {wall:.1f} s "
                f"(e_distance {e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}])"
            )


if __name__ == "__main__":
    main()
