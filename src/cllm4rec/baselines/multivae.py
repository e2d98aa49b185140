"""Multi-VAE (Liang et al., WWW 2018): a variational autoencoder with a multinomial likelihood over items.

Architecture as in the paper: L2-normalised input -> dropout 0.5 -> [J -> 600] tanh -> [600 -> 2 x 200]
(mean, log-variance); decoder [200 -> 600] tanh -> [600 -> J] logits. Loss = -sum_j x_uj log softmax_j
+ beta * KL, with beta annealed linearly (beta = step / total_anneal_steps) and capped at ``beta_max``.

Protocol here (the paper's own "weak generalisation" variant, the one CLLM4Rec reports): the network trains
on every user's train items, is validated each epoch by ranking the validation items from the train
history, and the epoch with the best validation ``select_on`` metric is kept (early stopping after
``patience`` epochs without improvement). The VAE encodes any history, so for test it is NOT refit: the
early-stopped network is scored with each user's train + valid history. ``fit(split="test")`` therefore
trains exactly like ``fit(split="valid")``.

Deterministic on CPU for a given seed: the global torch RNG is forked and seeded for the fit, and the batch
order comes from a seeded numpy generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from cllm4rec.baselines.base import ParamsBase, check_history
from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import evaluation_split
from cllm4rec.evaluation.metrics import REPORT_KEYS, Evaluator, selection_score

if TYPE_CHECKING:
    import torch

    from cllm4rec.data.dataset import Dataset


@dataclass(frozen=True)
class MultiVAEParams(ParamsBase):
    hidden: int = 600
    """Width of the encoder's and decoder's hidden layer."""
    latent: int = 200
    """Dimension of the latent user representation."""
    dropout: float = 0.5
    """Dropout on the normalised input during training (a denoising corruption of the history)."""
    beta_max: float = 0.2
    """Cap of the KL weight."""
    total_anneal_steps: int = 2000
    """Steps over which beta would reach 1 (so beta_max is reached after beta_max x this many steps)."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    batch_size: int = 100
    """Users per training step."""
    max_epochs: int = 200
    """Upper bound on training epochs."""
    patience: int = 10
    """Stop after this many epochs without a better validation metric."""
    select_on: str = "ndcg@100"
    """Early-stopping metric on validation: a metric key or "selection" (recall@20 + recall@40 + ndcg@100)."""
    seed: int = DEFAULT_SEED
    """Seeds the weights, dropout, sampling noise and batch order."""

    def __post_init__(self) -> None:
        positive = ("hidden", "latent", "batch_size", "max_epochs", "patience", "total_anneal_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise CLLM4RecError(f"multivae: {name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise CLLM4RecError(f"multivae: dropout must be in [0, 1), got {self.dropout}")
        if self.beta_max < 0 or self.lr <= 0 or self.weight_decay < 0:
            raise CLLM4RecError("multivae: beta_max and weight_decay must be >= 0 and lr > 0")
        valid = {"selection", *REPORT_KEYS}
        if self.select_on not in valid:
            raise CLLM4RecError(f"multivae: select_on must be one of {', '.join(sorted(valid))}")


def _build_network(n_items: int, p: MultiVAEParams) -> torch.nn.Module:
    import torch
    from torch import nn

    class _VAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(p.dropout)
            self.enc = nn.Linear(n_items, p.hidden)
            self.enc_out = nn.Linear(p.hidden, 2 * p.latent)
            self.dec = nn.Linear(p.latent, p.hidden)
            self.dec_out = nn.Linear(p.hidden, n_items)
            for layer in (self.enc, self.enc_out, self.dec, self.dec_out):  # the paper's initialisation
                nn.init.xavier_uniform_(layer.weight)
                nn.init.normal_(layer.bias, std=0.001)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = nn.functional.normalize(x, dim=1)  # (B, J); an empty history stays all-zero
            h = torch.tanh(self.enc(self.drop(x)))
            mu, logvar = self.enc_out(h).chunk(2, dim=1)  # (B, latent) each
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
            return self.dec_out(torch.tanh(self.dec(z))), mu, logvar  # logits (B, J)

    return _VAE()


class MultiVAE:
    """Multi-VAE trained on train, early-stopped on validation, scored from any history."""

    name = "multivae"
    Params = MultiVAEParams
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}  # early stopping is the only tuning, as in the paper
    refit_for_test: ClassVar[bool] = False

    def __init__(self, params: MultiVAEParams | None = None) -> None:
        self.params = params or MultiVAEParams()
        self.net: torch.nn.Module | None = None
        self.n_items: int | None = None
        self.info: dict[str, Any] = {}
        self.history_log: list[dict[str, float]] = []

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> MultiVAE:
        """Train on train items with early stopping on validation (for either split; see the module doc)."""
        import torch

        evaluation_split(split, "fitting a baseline")
        p = self.params
        train = dataset.train
        train_users = np.flatnonzero(np.diff(train.indptr) > 0)
        if not len(train_users):
            raise CLLM4RecError("multivae: the train split is empty")
        evaluator_args = (dataset.valid, dataset.known("valid"))
        if not np.any(np.diff(dataset.valid.indptr) > 0):
            raise CLLM4RecError("multivae: early stopping needs validation items, and the valid split is empty")
        rng = np.random.default_rng(p.seed)
        epochs = range(1, p.max_epochs + 1)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(epochs, desc="multivae", unit="epoch", leave=False)
            epochs = bar
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(p.seed)
            net = _build_network(train.shape[1], p)
            opt = torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
            self.net, self.n_items = net, train.shape[1]
            best, best_epoch, best_state, step = -math.inf, 0, None, 0
            self.history_log = []
            for epoch in epochs:
                net.train()
                order = rng.permutation(train_users)
                total = 0.0
                for start in range(0, len(order), p.batch_size):
                    users = order[start : start + p.batch_size]
                    x = torch.from_numpy(train[users].toarray())  # (B, J)
                    logits, mu, logvar = net(x)
                    nll = -(torch.log_softmax(logits, dim=1) * x).sum(dim=1).mean()
                    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()
                    beta = min(p.beta_max, step / p.total_anneal_steps)
                    loss = nll + beta * kl
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    step += 1
                    total += loss.item() * len(users)
                metrics = self._validate(*evaluator_args)
                value = selection_score(metrics) if p.select_on == "selection" else metrics[p.select_on]
                self.history_log.append({"epoch": epoch, "loss": total / len(order), "beta": beta, **metrics})
                if value > best:
                    best, best_epoch = value, epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                if bar is not None:
                    bar.set_postfix(loss=f"{total / len(order):.2f}", **{p.select_on: f"{value:.4f}"})
                if epoch - best_epoch >= p.patience:
                    break
        if bar is not None:
            bar.close()
        assert best_state is not None
        net.load_state_dict(best_state)
        net.eval()
        self.info = {
            "best_epoch": best_epoch,
            "epochs_run": len(self.history_log),
            f"valid_{p.select_on}": best,
        }
        return self

    def _validate(self, heldout: sp.csr_matrix, known: sp.csr_matrix) -> dict[str, float]:
        evaluator = Evaluator(heldout, known)
        for start in range(0, len(evaluator.users), 512):
            users = evaluator.users[start : start + 512]
            evaluator.add(users, self._forward(known[users]))
        return evaluator.result()

    def _forward(self, history: sp.csr_matrix) -> np.ndarray:
        import torch

        assert self.net is not None
        was_training = self.net.training
        self.net.eval()
        with torch.no_grad():
            logits, _, _ = self.net(torch.from_numpy(history.toarray().astype(np.float32)))
        self.net.train(was_training)
        return logits.numpy()

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Logits of the decoder for the encoded history (the VAE's mean, no sampling)."""
        history = check_history(users, history, self.n_items)
        return self._forward(history)
