"""scGen and scPRAM: one VAE and training loop (:mod:`.vae`), what both models share (:mod:`.base`), one file each.

The notebooks' names: :class:`SCGEN`, :func:`balanced_indices`, :class:`SCPRAM` and its building blocks
:func:`cost_matrix`, :func:`transport_plan`, :func:`match`, :func:`attention_weights`, :func:`plan_sharpness`.
"""

from tutorial_lib.models.base import BaseModel
from tutorial_lib.models.scgen import SCGEN, balanced_indices
from tutorial_lib.models.scpram import SCPRAM, attention_weights, cost_matrix, match, plan_sharpness, transport_plan
from tutorial_lib.models.vae import VAE, StopTraining, TrainingHistory, TrainingOptions, train_vae

__all__ = ["SCGEN", "SCPRAM", "VAE", "BaseModel", "StopTraining", "TrainingHistory", "TrainingOptions"]
__all__ += ["attention_weights", "balanced_indices", "cost_matrix", "match", "plan_sharpness", "train_vae"]
__all__ += ["transport_plan"]
