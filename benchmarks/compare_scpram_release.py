"""Our ``SCPRAM.predict(variant="released")`` against scpram 0.0.3's ``SCPRAM.predict``, same weights.

Run in an environment where both ``tutorial_lib`` and ``scpram==0.0.3`` import (the release pins
torch 1.13 / POT 0.9.1; this was run with torch 2.13 CPU, POT 0.9.1, numpy 1.26, scipy 1.11,
``pip install --no-deps scpram==0.0.3``)::

    PYTHONPATH=. /work/venvs/scpram/bin/python benchmarks/compare_scpram_release.py \
        > benchmarks/recorded/<date>_compare_scpram_release.log

What is compared: the *prediction step* only. One scPRAM is trained with the library (committed
mini subset of Kang 2018, 2,000 HVGs chosen on the training cells, CD4+ T cells held out, capped
preset, seed 0); its weights are copied into the release's ``SCPRAM`` module (encoder: our two
hidden layers, then ``[mean; logvar]`` stacked as the release's last ``Linear(hidden, 2 ·
latent)``; decoder: our two hidden layers and output layer). Both then predict the held-out
control cells from the same training cells. The release draws its posterior samples with
``torch.randn_like`` inside ``reparameterize``; here that function is replaced by one that
draws from ``numpy.random.default_rng(seed)`` in the same order as ours (reference controls,
stimulated cells, targets), so that both use the same samples. Everything else runs as released
(its ``ot.dist``, ``ot.emd`` with ``numItermax=100000``, ``torch.max`` over the plan's columns,
sklearn's ``cosine_similarity``, the first target's top ``ceil(0.05 n)`` weights).

Printed per seed: the largest absolute difference of the predicted expression, the largest
difference relative to the largest predicted value, and the difference of the per-gene means;
as a check that the comparison can fail, the same figure for our ``"percell"`` variant.
Tolerance: float32 arithmetic in a different order (batched encoding, cosines in float64 here,
sklearn in float32 there) leaves differences of order 1e-6 of the expression scale; the check
fails above ``--tolerance`` (default 1e-4 of the largest predicted value).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch


def copy_weights(ours, theirs) -> None:
    """Load the library's VAE weights into scpram 0.0.3's ``SCPRAM`` module."""
    m = ours.module
    state = {
        "encoder.0.weight": m.encoder[0].weight,
        "encoder.0.bias": m.encoder[0].bias,
        "encoder.2.weight": m.encoder[2].weight,
        "encoder.2.bias": m.encoder[2].bias,
        "encoder.4.weight": torch.cat([m.mean.weight, m.logvar.weight]),
        "encoder.4.bias": torch.cat([m.mean.bias, m.logvar.bias]),
        "decoder.0.weight": m.decoder[0].weight,
        "decoder.0.bias": m.decoder[0].bias,
        "decoder.2.weight": m.decoder[2].weight,
        "decoder.2.bias": m.decoder[2].bias,
        "decoder.4.weight": m.out.weight,
        "decoder.4.bias": m.out.bias,
    }
    theirs.load_state_dict({k: v.detach().clone() for k, v in state.items()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    from importlib.metadata import version

    import ot
    import scpram
    from scpram.models import SCPRAM as Released

    from course_tools.presets import train_preset
    from tutorial_lib.data import load_kang2018, prepare_holdout, split_views
    from tutorial_lib.models import SCPRAM

    torch.set_num_threads(1)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, POT {ot.__version__}, "
        f"numpy {np.__version__}, scpram {version('scpram')} ({scpram.__file__})"
    )
    held_out = "CD4+ T cells"
    data = prepare_holdout(load_kang2018("mini"), held_out, n_top_genes=2000)
    parts = split_views(data)
    train = parts.train
    print(f"mini Kang 2018: {train.n_obs} training cells, {parts.ctrl.n_obs} held-out controls, {train.n_vars} genes")
    ours = SCPRAM(train, device="cpu")
    ours.train(**train_preset("scpram", "capped", max_epochs=args.epochs), seed=0, progress_bar=False)
    theirs = Released(
        input_dim=train.n_vars, latent_dim=100, hidden_dim=1000, noise_rate=0.1, kl_weight=5e-4, device="cpu"
    )
    copy_weights(ours, theirs)
    theirs.eval()
    key_dic = {
        "condition_key": "condition",
        "cell_type_key": "cell_type",
        "ctrl_key": "control",
        "stim_key": "stimulated",
        "pred_key": "predicted",
    }
    targets = train[(train.obs["cell_type"] == held_out).to_numpy() & (train.obs["condition"] == "control").to_numpy()]
    if not targets.obs_names.equals(parts.ctrl.obs_names):
        raise SystemExit(
            "the release predicts the held-out controls inside the training data; they differ from parts.ctrl"
        )

    worst = 0.0
    for seed in args.seeds:
        rng = np.random.default_rng(seed)

        def reparameterize(mu, logvar, rng=rng):
            eps = torch.as_tensor(rng.standard_normal(tuple(mu.shape)).astype(np.float32))
            return mu + eps * torch.exp(0.5 * logvar)

        theirs.reparameterize = reparameterize
        t0 = time.perf_counter()
        with torch.no_grad():
            ref = theirs.predict(train, held_out, key_dic, ratio=0.05)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = ours.predict(held_out, adata_to_predict=parts.ctrl, variant="released", seed=seed)
        t_ours = time.perf_counter() - t0
        x_ref, x_ours = np.asarray(ref.X), np.asarray(pred.X)
        diff = np.abs(x_ref - x_ours)
        rel = diff.max() / np.abs(x_ref).max()
        mean_diff = np.abs(x_ref.mean(0) - x_ours.mean(0)).max()
        worst = max(worst, rel)
        percell = np.asarray(ours.predict(held_out, adata_to_predict=parts.ctrl, variant="percell", seed=seed).X)
        sanity = np.abs(x_ref - percell).max() / np.abs(x_ref).max()
        info = pred.uns["scpram"]["plan"]
        print(
            f"seed {seed}: max |diff| {diff.max():.3g}, relative to max value {rel:.3g}, "
            f"max |diff of gene means| {mean_diff:.3g}; EMD converged (ours) {info['converged']}; "
            f"predict seconds: release {t_ref:.1f}, ours {t_ours:.1f} (loaded 2-core machine); "
            f"sanity check, our 'percell' variant vs the release: relative max |diff| {sanity:.3g}"
        )
    ok = worst <= args.tolerance
    print(
        f"largest relative difference {worst:.3g} {'<=' if ok else '>'} tolerance {args.tolerance:g}: "
        f"{'MATCH' if ok else 'MISMATCH'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
