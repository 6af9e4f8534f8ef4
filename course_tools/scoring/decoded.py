"""The predicted response measured against *decoded* controls (a diagnostic, not a metric of the papers).

``pearson_delta`` and the DEG overlap of :func:`~course_tools.scoring.evaluate.evaluate` compare a
*decoded* prediction with the *raw* control cells. A VAE's decoder does not reproduce the
controls exactly (it smooths them, and is biased gene by gene), so the "predicted change"
``mean(pred) - mean(ctrl)`` contains two parts: the change the latent shift makes,
``mean(pred) - mean(decoded ctrl)``, and the decoder's bias, ``mean(decoded ctrl) - mean(ctrl)``.
:func:`decoded_control_deltas` separates them, so one can see how much of a score comes from
the response and how much from reconstruction. Decoded controls come from the same trained
model (:meth:`tutorial_lib.models.base.BaseModel.reconstruct`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tutorial_lib.metrics._inputs import CellsLike, aligned_matrices, gene_means
from tutorial_lib.metrics.means import pearson


def decoded_control_deltas(
    real: CellsLike,
    pred: CellsLike,
    ctrl: CellsLike,
    decoded_ctrl: CellsLike,
    *,
    var_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-gene real and predicted changes, the predicted one against raw and against decoded controls.

    Parameters
    ----------
    real, pred, ctrl
        Real stimulated cells, predicted cells, and the control cells they were predicted from
        (log-normalised; AnnData or matrices on the same genes).
    decoded_ctrl
        The same control cells encoded and decoded by the model that predicted ``pred``
        (``model.reconstruct(ctrl)``).
    var_names
        Gene names when inputs are plain matrices.

    Returns
    -------
    DataFrame indexed by gene with columns ``real_delta`` (mean real − mean ctrl),
    ``pred_delta_raw`` (mean pred − mean ctrl, what ``pearson_delta`` uses),
    ``pred_delta_decoded`` (mean pred − mean decoded ctrl: the change the latent shift makes) and
    ``decoder_bias`` (mean decoded ctrl − mean ctrl; ``pred_delta_raw = pred_delta_decoded +
    decoder_bias``). ``attrs["pearson"]`` holds the Pearson correlation of each predicted
    column with ``real_delta`` (NaN where a column is constant).
    """
    mats, genes = aligned_matrices(
        {"real": real, "pred": pred, "ctrl": ctrl, "decoded_ctrl": decoded_ctrl}, var_names=var_names
    )
    means = {k: gene_means(x) for k, x in mats.items()}
    table = pd.DataFrame(
        {
            "real_delta": means["real"] - means["ctrl"],
            "pred_delta_raw": means["pred"] - means["ctrl"],
            "pred_delta_decoded": means["pred"] - means["decoded_ctrl"],
            "decoder_bias": means["decoded_ctrl"] - means["ctrl"],
        },
        index=pd.Index(np.asarray(genes, dtype=str), name="gene"),
    )
    table.attrs["pearson"] = {
        col: pearson(table[col].to_numpy(), table["real_delta"].to_numpy())
        for col in ("pred_delta_raw", "pred_delta_decoded", "decoder_bias")
    }
    return table
