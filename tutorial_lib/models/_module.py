"""The neural network shared by scGen and scPRAM: a Gaussian VAE on log-normalised expression.

This is the *module* half of the scvi-tools split: pure ``torch.nn.Module`` code that knows
tensors only. The user-facing classes (:mod:`tutorial_lib.models.base`) handle AnnData,
training and prediction.

Loss, per cell (as in the original scGen, its scvi-tools/pertpy port and the scPRAM release)::

    loss = 0.5 * sum_g (x_g - x̂_g)^2  +  0.5 * kl_weight * KL(q(z|x) || N(0, I))

i.e. a unit-variance Gaussian log-likelihood (up to a constant) plus a down-weighted KL term;
the minibatch loss is the mean over cells. ``recon`` and ``kl`` reported by :meth:`VAE.forward`
are the *unweighted* per-cell means of ``sum_g (x_g - x̂_g)^2`` and of the KL divergence.

Denoising (``noise_rate > 0``, used by scPRAM): during training only, the encoder sees a
corrupted input while the reconstruction target stays the clean ``x``.
``noise_type="gaussian"`` adds ``noise_rate * N(0, 1)`` to every entry (the scPRAM release);
``noise_type="mask"`` sets each entry to 0 with probability ``noise_rate`` (dropout-like
masking, no rescaling). In evaluation mode (latents, prediction, validation) no noise is added.
"""

from __future__ import annotations

import torch
from torch import nn

from tutorial_lib.models._params import check_choice, check_float, check_int

ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU}
OUTPUT_ACTIVATIONS = ("relu", "linear")
NOISE_TYPES = ("gaussian", "mask")
LOGVAR_CLAMP = 15.0  # keeps exp(logvar) finite early in training (neither release clamps)


def make_mlp(
    n_in: int,
    n_layers: int,
    n_hidden: int,
    *,
    dropout_rate: float = 0.0,
    use_batch_norm: bool = True,
    use_layer_norm: bool = False,
    activation: str = "leaky_relu",
) -> nn.Sequential:
    """``n_layers`` blocks of Linear → [BatchNorm | LayerNorm] → activation → [Dropout].

    Returns a network mapping ``n_in`` features to ``n_hidden`` features.
    """
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers.append(nn.Linear(width, n_hidden))
        if use_batch_norm:
            layers.append(nn.BatchNorm1d(n_hidden, momentum=0.01, eps=1e-3))
        if use_layer_norm:
            layers.append(nn.LayerNorm(n_hidden, elementwise_affine=False))
        layers.append(ACTIVATIONS[activation]())
        if dropout_rate > 0:
            layers.append(nn.Dropout(dropout_rate))
        width = n_hidden
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Expression → Gaussian posterior ``q(z|x) = N(mean, exp(logvar))``."""

    def __init__(self, n_input: int, n_latent: int, n_layers: int, n_hidden: int, **mlp_kwargs) -> None:
        super().__init__()
        self.body = make_mlp(n_input, n_layers, n_hidden, **mlp_kwargs)
        self.mean = nn.Linear(n_hidden, n_latent)
        self.logvar = nn.Linear(n_hidden, n_latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mean(h), self.logvar(h).clamp(-LOGVAR_CLAMP, LOGVAR_CLAMP)


class Decoder(nn.Module):
    """Latent → reconstructed log-normalised expression (a ReLU output keeps it non-negative)."""

    def __init__(
        self, n_latent: int, n_output: int, n_layers: int, n_hidden: int, output_activation: str = "relu", **mlp_kwargs
    ) -> None:
        super().__init__()
        self.body = make_mlp(n_latent, n_layers, n_hidden, **mlp_kwargs)
        self.out = nn.Linear(n_hidden, n_output)
        self.output_activation = output_activation

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.out(self.body(z))
        return torch.relu(x) if self.output_activation == "relu" else x


class VAE(nn.Module):
    """Gaussian VAE with squared-error reconstruction (see the module docstring for the loss).

    Parameters
    ----------
    n_input
        Number of genes.
    n_latent, n_layers, n_hidden
        Latent size; number and width of hidden layers (same for encoder and decoder).
    dropout_rate
        Dropout after each hidden layer, in [0, 1).
    use_batch_norm, use_layer_norm
        Normalisation after each hidden Linear layer.
    activation
        ``"leaky_relu"`` (scGen) or ``"relu"`` (scPRAM release).
    output_activation
        ``"relu"`` (the original TensorFlow scGen and the scPRAM release; both library models
        use it) or ``"linear"`` (the scvi-tools/pertpy scGen port).
    noise_rate, noise_type
        Input corruption during training (denoising VAE), see module docstring.
    kl_weight
        Weight of the KL term, >= 0.
    """

    def __init__(
        self,
        n_input: int,
        *,
        n_latent: int = 100,
        n_layers: int = 2,
        n_hidden: int = 800,
        dropout_rate: float = 0.2,
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
        activation: str = "leaky_relu",
        output_activation: str = "relu",
        noise_rate: float = 0.0,
        noise_type: str = "gaussian",
        kl_weight: float = 5e-5,
    ) -> None:
        super().__init__()
        check_int("n_input", n_input, 1)
        self.n_latent = check_int("n_latent", n_latent, 1, 4096)
        check_int("n_layers", n_layers, 1, 10)
        check_int("n_hidden", n_hidden, 1, 16384)
        check_float("dropout_rate", dropout_rate, 0.0, 1.0, high_inclusive=False)
        self.noise_rate = check_float("noise_rate", noise_rate, 0.0, 1.0, high_inclusive=False)
        self.noise_type = check_choice("noise_type", noise_type, NOISE_TYPES)
        self.kl_weight = check_float("kl_weight", kl_weight, 0.0)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)
        mlp = dict(
            dropout_rate=dropout_rate,
            use_batch_norm=bool(use_batch_norm),
            use_layer_norm=bool(use_layer_norm),
            activation=activation,
        )
        self.encoder = Encoder(n_input, n_latent, n_layers, n_hidden, **mlp)
        self.decoder = Decoder(n_latent, n_input, n_layers, n_hidden, output_activation=output_activation, **mlp)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Input noise for denoising; identity in eval mode or when ``noise_rate == 0``."""
        if not self.training or self.noise_rate == 0:
            return x
        if self.noise_type == "gaussian":
            return x + self.noise_rate * torch.randn_like(x)
        return x * (torch.rand_like(x) >= self.noise_rate)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of ``x`` (no corruption)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructed expression of latent ``z``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        """Loss terms of a minibatch.

        ``sample=False`` decodes the posterior mean instead of a sample (deterministic
        validation loss). Returns ``loss`` (scalar to minimise), ``terms`` (``{"recon", "kl"}``:
        unweighted per-cell means, recorded by the training loop's history; also given as
        top-level keys) and ``x_hat``. A module for :func:`~tutorial_lib.models.training.train_vae`
        needs only ``loss`` and ``terms`` (the loss is the module's own).
        """
        mean, logvar = self.encode(self.corrupt(x))
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        x_hat = self.decode(z)
        recon = ((x - x_hat) ** 2).sum(dim=1)
        kl = 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
        loss = (0.5 * recon + 0.5 * self.kl_weight * kl).mean()
        terms = {"recon": recon.mean(), "kl": kl.mean()}
        return {"loss": loss, "terms": terms, **terms, "x_hat": x_hat}
