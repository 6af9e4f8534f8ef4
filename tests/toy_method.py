"""A new method in one file: the proof that adding a model touches no library file (issue 16).

``ToyAE`` is a module with its own loss (absolute-error reconstruction plus a KL term, recorded
as ``l1`` and ``kl``); ``ToyShift`` trains it through the library's generic loop and predicts by
shifting each control cell's latent by the training data's mean stimulated - control
difference; ``TOY_SPEC`` is its record. ``with registered_method(TOY_SPEC): ...`` makes ``"toy_shift"``
a method of the benchmark, the grid and tuning for the block only. Not a method to use.
"""

from __future__ import annotations

import numpy as np
import torch

from course_tools.methods import MethodSpec
from tutorial_lib.models import VAE, BaseModel
from tutorial_lib.models.base import obs_labels, prediction_adata


class ToyAE(VAE):
    """The library's VAE with an absolute-error reconstruction loss instead of squared error."""

    def forward(self, x: torch.Tensor, sample: bool = True) -> dict:
        mean, logvar = self.encode(self.corrupt(x))
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        l1 = (x - self.decode(z)).abs().sum(dim=1).mean()
        kl = 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
        return {"loss": l1 + self.kl_weight * kl, "terms": {"l1": l1, "kl": kl}}


class ToyShift(BaseModel):
    """Latent mean shift (unbalanced) on :class:`ToyAE`."""

    method_name = "toy_shift"
    module_class = ToyAE
    fixed_module_kwargs = {"n_layers": 1}

    def __init__(self, adata, *, n_latent: int = 8, n_hidden: int = 32, **kwargs) -> None:
        super().__init__(adata, n_latent=n_latent, n_hidden=n_hidden, **kwargs)

    def predict(
        self,
        cell_type=None,
        *,
        adata_to_predict=None,
        ctrl_key="control",
        stim_key="stimulated",
        seed: int = 0,
        scale: float = 1.0,
    ):
        self._check_trained()
        targets = self._targets(cell_type, adata_to_predict, ctrl_key)
        latent, condition = self.get_latent(), obs_labels(self.adata, self.condition_key)
        delta = scale * (latent[condition == stim_key].mean(0) - latent[condition == ctrl_key].mean(0))
        z = self.get_latent(targets)
        z_pred = z + delta
        x_pred = self.decode(z_pred)
        return prediction_adata(
            x_pred,
            targets,
            self.var_names,
            method=self.method_name,
            condition_key=self.condition_key,
            cell_type_key=self.cell_type_key,
            cell_type=cell_type,
            obsm={"X_latent": z_pred, "X_latent_control": z, "delta": np.broadcast_to(delta, z.shape).copy()},
        )


TOY_SPEC = MethodSpec(
    "toy_shift",
    model=ToyShift,
    search_space={"n_latent": ("categorical", (4, 8)), "scale": ("float", (0.5, 1.5, False))},
    train_presets={"default": {}, "capped": {"max_epochs": 1, "batch_size": 64}},
    description="test-only latent mean shift with an L1 autoencoder",
)
