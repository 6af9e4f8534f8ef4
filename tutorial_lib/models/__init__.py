"""Models: scGen and scPRAM on one shared VAE and training loop.

* :class:`SCGEN`, :class:`SCPRAM`: ``train``, ``get_latent``, ``decode``, ``predict``; scPRAM's
  building blocks ``cost_matrix``, ``transport_plan``, ``match``, ``attention_weights``.
* :mod:`~tutorial_lib.models.vae`: the :class:`VAE` and :func:`train_vae` with its :class:`TrainingOptions`;
  :mod:`~tutorial_lib.models.base`: what both models share.
"""

from tutorial_lib.models.base import BaseModel
from tutorial_lib.models.scgen import SCGEN, balanced_indices
from tutorial_lib.models.scpram import (
    SCPRAM,
    SCPRAMOptions,
    attention_weights,
    cost_matrix,
    match,
    plan_sharpness,
    transport_plan,
)
from tutorial_lib.models.vae import VAE, StopTraining, TrainingHistory, TrainingOptions, train_vae

__all__ = [
    "SCGEN",
    "SCPRAM",
    "VAE",
    "BaseModel",
    "SCPRAMOptions",
    "StopTraining",
    "TrainingHistory",
    "TrainingOptions",
    "attention_weights",
    "balanced_indices",
    "cost_matrix",
    "match",
    "plan_sharpness",
    "train_vae",
    "transport_plan",
]
