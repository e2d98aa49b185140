"""The CLLM4Rec model: a frozen causal LM plus four trainable ID embedding tables (docs/DESIGN.md §1-§4).

Token ids follow :mod:`cllm4rec.tokenization.ids`: words ``< N``, then users, then items. The collaborative
side (``"collab"``: U^l, V^l) and the content side (``"content"``: U^c, V^c) share the frozen backbone; only
the tables train. Efficiency choices (each checked by a test):

- one pass over prompt + main text; right-padded batches go through the backbone with *no* attention mask
  and default position ids, so SDPA takes its causal fast path (a real token never sees the pads after it,
  so this is exact); a batch with padding elsewhere gets an explicit mask and mask-derived position ids;
- the final hidden states come from the backbone's base model (``inputs_embeds``), so the 49k-word LM head
  only runs at the positions that predict main-text words (``word_lm_loss``);
- the item losses never hold more than ``logit_budget`` logits at once: beyond it, the log-sum-exp over the
  J items runs in item chunks with a recomputing backward (``model/item_head.py``), exact against the
  one-matrix path;
- a training batch of more than ``checkpoint_tokens`` tokens keeps only each backbone layer's input and
  recomputes the rest in the backward pass (``model/checkpointing.py``): same gradients, a fraction of the
  activation memory;
- bf16 autocast around the backbone (``autocast``, from ``model.bf16``; active only where bf16 is fast:
  CUDA, or CPUs with AVX512-BF16/AMX; ``force_autocast`` overrides for benchmarks); the item heads,
  softmaxes and losses run in fp32 so item scores do not tie through bf16 rounding.

The model is built from its config (:class:`~cllm4rec.model.config.ModelConfig`, the ``model`` section of a
run config); the losses live in ``model/losses.py`` and saving/loading in ``model/serialization.py``, each
called through the method of the same name here.

The frozen backbone always stays in eval mode (no dropout), even under ``model.train()``: it is not trained,
and dropout would make losses depend on batch composition and break exact padding invariance.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cllm4rec.backbone.hf import freeze, max_positions
from cllm4rec.backbone.loading import BackboneRef, LoadedBackbone
from cllm4rec.core.defaults import READOUTS
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.model import losses, serialization
from cllm4rec.model.checkpointing import checkpointed
from cllm4rec.model.config import ModelConfig
from cllm4rec.model.device import bf16_supported
from cllm4rec.model.item_head import LOGIT_BUDGET, item_topk
from cllm4rec.model.losses import LMLoss
from cllm4rec.model.serialization import BIAS_NAME, CENTER_NAME, TABLE_NAMES
from cllm4rec.model.truncation import backbone_depth, truncated
from cllm4rec.tokenization.batch import Batch
from cllm4rec.tokenization.ids import IDTokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["SIDES", "CLLM4Rec", "LMLoss"]

SIDES = ("collab", "content")


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise CLLM4RecError(f"side must be 'collab' or 'content' (got {side!r})")


class CLLM4Rec(nn.Module):
    """Frozen backbone + collaborative and content ID embeddings, with the LM, item and rec heads.

    The backbone is frozen in place (``requires_grad=False``, eval mode, fused GELU) and shared, not copied:
    several models may wrap one loaded backbone. Tables are drawn from N(0, (init_scale * std of the word
    embeddings)^2), from a private generator when ``seed`` is given.
    """

    def __init__(
        self,
        backbone: LoadedBackbone | PreTrainedModel,
        n_users: int,
        n_items: int,
        config: ModelConfig | None = None,
        *,
        seed: int | None = None,
        ref: BackboneRef | None = None,
        **fields: Any,
    ) -> None:
        """``config``: what to build (default :class:`ModelConfig`); ``fields`` replace single fields of it
        (``CLLM4Rec(backbone, 6, 30, item_bias=True)``). The model reads ``init_scale``, ``collab_layers``,
        ``item_bias``, ``center_head``, ``readout``, ``bf16`` and ``checkpoint_tokens``; the others (the
        backbone's name, ``item_init``, ``max_length``, ``content``) are for whoever builds and trains it."""
        super().__init__()
        try:
            config = dataclasses.replace(config or ModelConfig(), **fields)
        except TypeError as exc:
            raise CLLM4RecError(f"not a field of the model config: {exc}") from exc
        if n_users < 1 or n_items < 1:
            raise CLLM4RecError(f"need at least one user and one item (got {n_users}, {n_items})")
        if config.init_scale <= 0:
            raise CLLM4RecError(f"init_scale must be > 0 (got {config.init_scale})")
        if config.readout not in READOUTS:
            raise CLLM4RecError(f"readout must be one of {', '.join(READOUTS)} (got {config.readout!r})")
        self.config = config
        self.backbone_tokenizer: PreTrainedTokenizerBase | None = None
        self.loaded_backbone: LoadedBackbone | None = None  # model, tokenizer, ref, source (if given)
        if isinstance(backbone, LoadedBackbone):
            ref = ref or backbone.ref
            self.loaded_backbone = backbone
            self.backbone_tokenizer = backbone.tokenizer
            backbone = backbone.model
        self.backbone = freeze(backbone)
        # The collaborative side may run only the first ``collab_layers`` blocks (0: all): a view sharing the
        # backbone's weights (truncation.py). The content side (text LM, explanations) keeps every block.
        self.collab_backbone = truncated(self.backbone, config.collab_layers)
        self.depth = backbone_depth(self.backbone)
        self.collab_layers = config.collab_layers if config.collab_layers != self.depth else 0
        self.ref = ref
        word = self.backbone.get_input_embeddings().weight  # (N, d)
        self.n_words, self.hidden_size = int(word.shape[0]), int(word.shape[1])
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.vocab_size = self.n_words + self.n_users + self.n_items
        self.init_scale = float(config.init_scale)
        self.word_std = float(word.detach().float().std())
        std = self.init_scale * self.word_std
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        for name in TABLE_NAMES:
            rows = self.n_users if name.startswith("user") else self.n_items
            weight = torch.empty(rows, self.hidden_size).normal_(0.0, std, generator=gen)
            setattr(self, name, nn.Embedding.from_pretrained(weight.to(word.device), freeze=False))
        # Optional per-item bias of the collaborative item head (docs/DESIGN.md §4); see init_item_bias.
        self.item_bias = nn.Parameter(torch.zeros(self.n_items, device=word.device)) if config.item_bias else None
        self.readout = config.readout  # may be switched after construction (benchmarks compare read-outs)
        # Optional fixed centre of the collaborative item head's input (docs/DESIGN.md §4); set_head_center.
        self.head_center = (
            nn.Parameter(torch.zeros(self.hidden_size, device=word.device), requires_grad=False)
            if config.center_head
            else None
        )
        # Runtime knobs, started from the config; tests and benchmarks may set them afterwards.
        self.autocast = config.bf16  # bf16 autocast where it is fast (see bf16_supported); fp32 elsewhere
        self.force_autocast = False  # bf16 autocast even where it is emulated and slow (benchmarks)
        self.max_positions = max_positions(self.backbone)
        self.logit_budget = LOGIT_BUDGET  # item logits held at once by the losses and top-k (item_head.py)
        # Training batches of more tokens recompute the backbone's activations in backward (checkpointing.py);
        # 0 in the config: never
        self.checkpoint_tokens: float = config.checkpoint_tokens or math.inf

    # ----- plumbing ----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> CLLM4Rec:
        """Switch the ID tables' mode; the frozen backbone always stays in eval mode (no dropout)."""
        super().train(mode)
        self.backbone.eval()
        self.collab_backbone.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.user_collab.weight.device

    @property
    def decoder(self) -> nn.Module:
        """The collaborative side's backbone without its LM head (what ranks items): maps ``inputs_embeds`` to
        final (normalised) hidden states. :meth:`decoder_for` gives either side's."""
        return self.collab_backbone.base_model

    def decoder_for(self, side: str) -> nn.Module:
        """The decoder ``side``'s documents run through: the cut one for ``collab``, the whole for ``content``."""
        _check_side(side)
        return self.collab_backbone.base_model if side == "collab" else self.backbone.base_model

    def tables(self, side: str) -> tuple[nn.Embedding, nn.Embedding]:
        """The (users, items) embedding tables of one side."""
        _check_side(side)
        if side == "collab":
            return self.user_collab, self.item_collab
        return self.user_content, self.item_content

    def trainable_parameters(self, side: str) -> list[nn.Parameter]:
        """The parameters one alternating step trains: that side's user and item tables."""
        users, items = self.tables(side)
        extra = [self.item_bias] if side == "collab" and self.item_bias is not None else []
        return [users.weight, items.weight, *extra]

    @torch.no_grad()
    def set_head_center(self, batches: Any) -> None:
        """Set the head's centre to the mean final hidden state at the item-predicting positions of
        ``batches`` (interaction documents). The common direction of a pretrained backbone's hidden states only
        shifts every item's logit by a per-item constant, which the bias already models; removed, Adam no
        longer drives every rarely seen item row along it at full step size (docs/DESIGN.md §4). No-op when
        the model has no centre."""
        if self.head_center is None:
            return
        total, count = torch.zeros(self.hidden_size, device=self.device), 0
        for batch in batches:
            h = self.hidden_states(batch, "collab")[:, :-1][batch.loss_mask[:, 1:]].float()  # (N, d)
            total += h.sum(0)
            count += h.shape[0]
        if count == 0:
            raise CLLM4RecError("set_head_center needs at least one item-predicting position")
        self.head_center.copy_(total / count)

    def init_item_bias(self, counts: Any) -> None:
        """Start the item bias at the centred ``log(1 + count)`` of each item's training interactions, so the
        head ranks by popularity from the first step and the embeddings learn what popularity does not explain
        (docs/DESIGN.md §4). No-op without a bias."""
        if self.item_bias is None:
            return
        counts = torch.as_tensor(counts, dtype=torch.float32).reshape(-1)
        if counts.numel() != self.n_items:
            raise CLLM4RecError(f"item counts must have {self.n_items} entries (got {counts.numel()})")
        log_pop = torch.log1p(counts.clamp(min=0))
        with torch.no_grad():
            self.item_bias.copy_((log_pop - log_pop.mean()).to(self.item_bias.device))

    def id_tokenizer(self) -> IDTokenizer:
        """The matching :class:`IDTokenizer` (needs a model built from a :class:`LoadedBackbone`)."""
        if self.backbone_tokenizer is None:
            raise CLLM4RecError("this model was built from a bare backbone model; it has no tokenizer")
        return IDTokenizer(self.backbone_tokenizer, self.n_users, self.n_items, self.n_words)

    @property
    def autocast_active(self) -> bool:
        """Whether the backbone really runs under bf16 autocast on the current device."""
        return self.force_autocast or (self.autocast and bf16_supported(self.device))

    def _autocast(self) -> torch.autocast:
        enabled = self.autocast_active
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """The trained (and fixed) tensors a saved model holds: the four tables, the item bias and the head's
        centre where the model has them (``model/serialization.py``)."""
        tensors = {name: getattr(self, name).weight for name in TABLE_NAMES}
        if self.item_bias is not None:
            tensors[BIAS_NAME] = self.item_bias
        if self.head_center is not None:
            tensors[CENTER_NAME] = self.head_center
        return tensors

    def check_ids(self, input_ids: torch.Tensor) -> None:
        """Token ids must lie in this model's vocabulary (words, users, items)."""
        if input_ids.numel() and bool(((input_ids < 0) | (input_ids >= self.vocab_size)).any()):
            raise CLLM4RecError(f"token ids must lie in [0, {self.vocab_size}) for this model")

    # ----- forward pieces ----------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, side: str) -> torch.Tensor:
        """Input embeddings: frozen word rows for word ids, ``side``'s tables for user/item ids. (B, T, d)

        Each table is looked up only at the positions that hold its tokens, so a row-sparse gradient
        (:meth:`set_sparse_grads`) names exactly the users and items of the batch."""
        self.check_ids(input_ids)
        users, items = self.tables(side)
        n_w, n_u = self.n_words, self.n_users
        flat = input_ids.reshape(-1)  # (BT,)
        out = self.backbone.get_input_embeddings()(flat.clamp(max=n_w - 1))  # (BT, d)
        at_user = torch.nonzero((flat >= n_w) & (flat < n_w + n_u)).squeeze(1)  # (Nu,)
        at_item = torch.nonzero(flat >= n_w + n_u).squeeze(1)  # (Ni,)
        out = out.index_put((at_user,), users(flat[at_user] - n_w).to(out.dtype))
        out = out.index_put((at_item,), items(flat[at_item] - n_w - n_u).to(out.dtype))
        return out.reshape(*input_ids.shape, -1)

    def set_sparse_grads(self, enabled: bool) -> None:
        """Give the tables that are only ever looked up (both user tables, the content item table) row-sparse
        gradients, for :class:`~cllm4rec.training.optim.RowAdam`; the collaborative item table feeds the item
        head over every item, so its gradient stays dense (docs/DESIGN.md §2)."""
        for name in ("user_collab", "user_content", "item_content"):
            getattr(self, name).sparse = enabled

    def hidden_states(self, batch: Batch, side: str) -> torch.Tensor:
        """Final-layer hidden states (after the final norm) over prompt + main text in one pass. (B, T, d)"""
        input_ids, mask = batch.input_ids, batch.attention_mask
        if self.max_positions is not None and input_ids.shape[1] > self.max_positions:
            raise CLLM4RecError(
                f"documents of {input_ids.shape[1]} tokens exceed the backbone's {self.max_positions} positions"
            )
        embeds = self.embed(input_ids, side)  # (B, T, d)
        right_padded = bool((mask[:, 1:] <= mask[:, :-1]).all())
        if right_padded:
            # Causal attention never looks ahead, so trailing pads cannot affect real tokens: no mask needed,
            # and SDPA runs its is_causal fast path.
            attn, position_ids = None, None
        else:  # left (or arbitrary) padding: positions count real tokens only
            attn, position_ids = mask, (mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T)
        # The threshold counts tokens through the whole backbone: the collaborative side's few blocks keep a
        # proportionally larger batch's activations (docs/DESIGN.md §2).
        depth_share = self.collab_layers / self.depth if side == "collab" and self.collab_layers else 1.0
        tokens = input_ids.numel() * depth_share
        recompute = self.training and torch.is_grad_enabled() and tokens > self.checkpoint_tokens
        decoder = self.decoder_for(side)
        with self._autocast(), checkpointed(decoder, recompute):
            out = decoder(inputs_embeds=embeds, attention_mask=attn, position_ids=position_ids, use_cache=False)
        return out.last_hidden_state  # (B, T, d), bf16 under autocast

    def item_head(self, side: str = "collab") -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The item head's (weight (J, d), bias (J,) or None, centre (d,) or None) of ``side``: logits are
        ``(h - centre) . weight^T + bias`` (docs/DESIGN.md §2, §4); the bias and centre are collaborative only."""
        weight = self.tables(side)[1].weight
        if side != "collab":
            return weight, None, None
        return weight, self.item_bias, self.head_center

    def head_input(self, h: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(centred fp32 ``h``, weight, bias) for the chunked head."""
        weight, bias, center = self.item_head(side)
        h = h.float()
        return (h if center is None else h - center), weight, bias

    def item_logits(self, h: torch.Tensor, side: str = "collab") -> torch.Tensor:
        """The item head, tied to the item embeddings: ``h . V_side^T`` in fp32 (docs/DESIGN.md §2, §4); in
        a training step under bf16 autocast the product runs in bf16 (the softmax and the loss stay fp32).

        The one place full item scores come from: the next-item loss of pretraining, the recommendation loss
        of finetuning, evaluation and serving all go through here (or, past :attr:`logit_budget`, through the
        same head in item chunks: ``model/item_head.py``). (..., d) -> (..., J)
        """
        weight, bias, center = self.item_head(side)
        h = h.float()
        if center is not None:
            h = h - center
        if self.training and torch.is_grad_enabled() and self.autocast_active:
            # training steps: the (positions x J) product and its two backward products in bf16 (4x faster
            # on CPUs with AVX512-BF16), the loss on fp32 logits; scoring always takes the fp32 product
            logits = (h.bfloat16() @ weight.bfloat16().T).float()
        else:
            logits = h @ weight.T
        if bias is not None:
            logits = logits + bias
        return logits

    def item_topk(
        self, h: torch.Tensor, k: int, exclude: list[torch.Tensor] | None = None, side: str = "collab"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The top ``k`` items of ``h`` (B, d) under the item head, known items (``exclude[b]``) left out,
        computed over item chunks: equal to ranking :meth:`item_logits` (ties to the lower index).
        ((B, k) items, (B, k) scores)"""
        hc, weight, bias = self.head_input(h, side)
        return item_topk(hc, weight, bias, k, exclude, budget=self.logit_budget)

    def word_logits(self, h: torch.Tensor) -> torch.Tensor:
        """The backbone's own LM head (with its soft-capping / logit scale if any) on hidden states ``h``."""
        with self._autocast():
            logits = self.backbone.get_output_embeddings()(h)  # (..., N)
        logits = logits.float()
        cfg = self.backbone.config
        if getattr(cfg, "logit_scale", None):
            logits = logits * cfg.logit_scale
        cap = getattr(cfg, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def readout_states(self, batch: Batch, side: str = "collab") -> torch.Tensor:
        """Each prompt's read-out vector (:attr:`readout`), the item head's input. (B, d)"""
        h = self.hidden_states(batch, side)  # (B, T, d)
        mask = batch.attention_mask
        rows = torch.arange(h.shape[0], device=h.device)
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (positions * mask).argmax(-1)  # (B,) index of the last real token (any padding side)
        if self.readout == "last":
            return h[rows, last]  # (B, d)
        pick = (batch.input_ids >= self.n_words + self.n_users) & mask.bool()  # (B, T) item tokens
        pick[rows, last] = True
        weights = pick.float().unsqueeze(-1)  # (B, T, 1)
        return (h.float() * weights).sum(1) / weights.sum(1)  # (B, d)

    def rec_scores(self, batch: Batch, side: str = "collab") -> torch.Tensor:
        """Scores of all J items from each prompt's read-out vector (:attr:`readout`): h . V_side^T. (B, J)"""
        return self.item_logits(self.readout_states(batch, side), side)  # (B, J)

    def forward(self, batch: Batch, side: str = "collab") -> torch.Tensor:
        """The module's call form of :meth:`rec_scores` (item scores after each document's last token)."""
        return self.rec_scores(batch, side)

    # ----- losses (model/losses.py) ------------------------------------------------------------------
    def item_lm_loss(self, batch: Batch, side: str = "collab", target: str = "next") -> LMLoss:
        """Next-item (``target="next"``) or rest-of-set (``"rest"``) loss over the J items
        (:func:`~cllm4rec.model.losses.item_lm_loss`)."""
        return losses.item_lm_loss(self, batch, side, target)

    def word_lm_loss(self, batch: Batch, side: str = "content") -> LMLoss:
        """Next-word loss of the main-text words (:func:`~cllm4rec.model.losses.word_lm_loss`)."""
        return losses.word_lm_loss(self, batch, side)

    def rec_loss(self, batch: Batch, targets: torch.Tensor, side: str = "collab", *, reduction: str = "sum") -> LMLoss:
        """Multinomial likelihood of the (B, J) held-out ``targets`` (:func:`~cllm4rec.model.losses.rec_loss`)."""
        return losses.rec_loss(self, batch, targets, side, reduction=reduction)

    def mutual_reg(self, input_ids: torch.Tensor | Batch, trained: str) -> torch.Tensor:
        """Mutual regularization of the ``trained`` side toward the other, unweighted
        (:func:`~cllm4rec.model.losses.mutual_reg`)."""
        return losses.mutual_reg(self, input_ids, trained)

    # ----- persistence (model/serialization.py) --------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``id_embeddings.safetensors`` and ``model.json`` into folder ``path`` (atomically; no pickle)."""
        serialization.save_model(self, path)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        cache_dir: str | os.PathLike[str] | None = None,
        backbone: LoadedBackbone | None = None,
        config: ModelConfig | None = None,
    ) -> CLLM4Rec:
        """Rebuild a saved model exactly: the backbone from its reference (or ``backbone`` if given and
        matching), then the tables. ``config`` supplies the runtime fields (``bf16``, ``checkpoint_tokens``);
        the structural ones come from ``model.json``."""
        path = Path(path)
        meta = serialization.read_meta(path)
        loaded = serialization.saved_backbone(meta, path, backbone, cache_dir)
        model = cls(loaded, int(meta["n_users"]), int(meta["n_items"]), serialization.saved_config(meta, config))
        serialization.check_sizes(model, meta, path)
        serialization.load_tensors(model, path)
        return model.to(device)
