"""Models: scGen, scPRAM and baselines over one shared VAE and one training loop.

* :class:`SCGEN`, :class:`SCPRAM`: user-facing models (``train``, ``get_latent``, ``predict``,
  ``save``/``load``), built on :class:`~tutorial_lib.models.base.BaseModel`; :class:`SCPRAMOptions`:
  scPRAM's prediction settings (the release's by default).
* :mod:`~tutorial_lib.models.ot_attention`: scPRAM's building blocks (``cost_matrix``,
  ``transport_plan``, ``match``, ``attention_weights``), whose defaults are the release's.
* :class:`VAE`: the ``torch.nn.Module`` both use; :func:`train_vae`: the training loop.
* :mod:`~tutorial_lib.models.baselines`: ``no_change``, ``mean_shift``, ``pca_arithmetic``.
"""

from tutorial_lib.models._module import VAE
from tutorial_lib.models.base import BaseModel
from tutorial_lib.models.baselines import mean_shift, no_change, pca_arithmetic
from tutorial_lib.models.ot_attention import attention_weights, cost_matrix, match, plan_sharpness, transport_plan
from tutorial_lib.models.scgen import SCGEN, balanced_indices
from tutorial_lib.models.scpram import SCPRAM, SCPRAMOptions
from tutorial_lib.models.training import StopTraining, TrainingHistory, train_vae

__all__ = [
    "SCGEN",
    "SCPRAM",
    "SCPRAMOptions",
    "VAE",
    "BaseModel",
    "StopTraining",
    "TrainingHistory",
    "attention_weights",
    "balanced_indices",
    "cost_matrix",
    "match",
    "mean_shift",
    "no_change",
    "pca_arithmetic",
    "plan_sharpness",
    "train_vae",
    "transport_plan",
]
