"""Natural-language explanations: the content side of the model writes, in words, about a user-item pair.

The content embeddings were pretrained to predict reviews from ``user_i wrote the following review for item_j:``
(docs/DESIGN.md §2). Prompting that same template and letting the frozen backbone generate from
the content embeddings gives a review-like text: why this item suits (or does not suit) this user. A dataset
without reviews falls back to the item-text template (``The <field> of item_j is:``), which describes the item
rather than the pair; the result says so.

Generation is the backbone's own ``generate`` on ``inputs_embeds``: greedy by default (the same request gives
the same text), sampled with a fixed seed when ``temperature > 0``; bounded in new tokens and in wall time.
"""

from __future__ import annotations

import re
import threading
import time
import warnings
from dataclasses import asdict, dataclass

import torch

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.serving.recommend import LoadedRun
from cllm4rec.tokenization.prompts import item_field_prompt, review_prompt

MAX_NEW_TOKENS_LIMIT = 256
MAX_TIME_LIMIT = 120.0
PREFERRED_FIELDS = ("description", "summary", "overview", "genres", "title")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


@dataclass(frozen=True)
class ExplainOptions:
    """How an explanation is generated."""

    max_new_tokens: int = 60
    """Upper bound on generated tokens (1..256)."""
    temperature: float = 0.0
    """0 = greedy (deterministic); > 0 samples with this temperature."""
    seed: int = 0
    """Sampling seed (used only when temperature > 0)."""
    max_time: float = 30.0
    """Wall-clock bound on generation, in seconds (0 < t <= 120)."""

    def check(self) -> ExplainOptions:
        """Raise :class:`CLLM4RecError` for out-of-range options; return self."""
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise CLLM4RecError(f"max_new_tokens must be in [1, {MAX_NEW_TOKENS_LIMIT}], got {self.max_new_tokens}")
        if not 0.0 <= self.temperature <= 5.0:
            raise CLLM4RecError(f"temperature must be in [0, 5], got {self.temperature}")
        if not 0.0 < self.max_time <= MAX_TIME_LIMIT:
            raise CLLM4RecError(f"max_time must be in (0, {MAX_TIME_LIMIT:g}] seconds, got {self.max_time}")
        if self.seed < 0:
            raise CLLM4RecError(f"seed must be >= 0, got {self.seed}")
        return self


@dataclass(frozen=True)
class Explanation:
    """A generated text for one (user, item) pair and how it was made."""

    user: str
    item: str
    title: str | None
    text: str
    template: str  # "review" or "item_text"
    prompt: str
    note: str | None
    new_tokens: int
    stopped: str  # "eos", "max_tokens", "time" or "cancelled"
    seconds: float
    greedy: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def explanation_prompt(loaded: LoadedRun, dataset: Dataset, user: int, item: int) -> tuple[list[int], str, str | None]:
    """(prompt ids, template name, note) for a pair of indices: the review template when the dataset has
    reviews, else the item-text template on the item's most descriptive field."""
    tok, ds = loaded.recommender.tok, dataset
    if ds.reviews:
        return review_prompt(tok, user, item), "review", None
    catalog = loaded.catalog
    fields = ds.item_text[item] if item < ds.n_items else catalog.added[item - catalog.n_trained_items]
    names = [f for f in PREFERRED_FIELDS if f in fields] or sorted(fields, key=lambda f: -len(fields[f]))
    if not names:  # this item has no text: use the field most items have
        counts: dict[str, int] = {}
        for row in ds.item_text:
            for name in row:
                counts[name] = counts.get(name, 0) + 1
        if not counts:
            raise CLLM4RecError("this run's dataset has neither reviews nor item texts: nothing to explain with")
        names = [max(counts, key=counts.get)]
    note = (
        "this dataset has no reviews, so the text comes from the item-text template "
        f"({names[0]!r}): it describes the item, not why it suits this user"
    )
    return item_field_prompt(tok, item, names[0]), "item_text", note


def explain(
    loaded: LoadedRun,
    user: str,
    item: str,
    options: ExplainOptions | None = None,
    *,
    dataset: Dataset | None = None,
    cancel: threading.Event | None = None,
) -> Explanation:
    """Generate a short text about ``item`` (external ID) for ``user`` (external ID) with the content side.

    The templates need the run's texts: ``dataset`` (already loaded), else the dataset folder the run records.
    Setting ``cancel`` (from another thread: the client went away) stops generation at its next token.
    """
    options = (options or ExplainOptions()).check()
    catalog = loaded.catalog
    if user not in catalog.user_index:
        raise CLLM4RecError(f"unknown user {user!r}: not in the dataset")
    if item not in catalog.item_index:
        raise CLLM4RecError(f"unknown item {item!r}: not in the dataset")
    u, j = catalog.user_index[user], catalog.item_index[item]
    prompt_ids, template, note = explanation_prompt(loaded, dataset or loaded.dataset(), u, j)
    model, tok = loaded.recommender.model, loaded.recommender.tok
    hf_tok = model.backbone_tokenizer
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)  # (1, T)
    greedy = options.temperature == 0.0
    started = time.perf_counter()
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(options.seed)
        embeds = model.embed(ids, "content")  # (1, T, d): content-side user/item rows
        autocast = torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=model.autocast_active)
        with autocast, warnings.catch_warnings():
            # n-gram bans on the generated text only (the prompt has ID tokens) are what is wanted here
            warnings.filterwarnings("ignore", message=".*no_repeat_ngram_size.*", category=UserWarning)
            out = model.backbone.generate(
                inputs_embeds=embeds,
                attention_mask=torch.ones_like(ids),
                generation_config=_generation_config(model.backbone, hf_tok, options),
                stopping_criteria=_stop_when_set(cancel),
            )
    seconds = time.perf_counter() - started
    new = out[0].tolist()  # with inputs_embeds only, generate returns just the new tokens
    eos = hf_tok.eos_token_id
    stopped = "eos" if new and eos is not None and new[-1] == eos else "max_tokens"
    if stopped == "max_tokens" and len(new) < options.max_new_tokens:
        stopped = "cancelled" if cancel is not None and cancel.is_set() else "time"
    text = hf_tok.decode([t for t in new if t != eos], skip_special_tokens=True).strip()
    if stopped != "eos":
        text = _trim_to_sentence(text)
    return Explanation(
        user=user,
        item=item,
        title=catalog.titles[j],
        text=text,
        template=template,
        prompt=tok.decode(prompt_ids),
        note=note,
        new_tokens=len(new),
        stopped=stopped,
        seconds=round(seconds, 3),
        greedy=greedy,
    )


def _stop_when_set(cancel: threading.Event | None):
    """A stopping criterion that ends generation once ``cancel`` is set (checked after every token)."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
            stop = cancel is not None and cancel.is_set()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Cancelled()])


def _generation_config(backbone: torch.nn.Module, hf_tok: object, options: ExplainOptions):
    """An explicit generation config, so a checkpoint's own sampling defaults never change our results."""
    from transformers import GenerationConfig

    eos = getattr(hf_tok, "eos_token_id", None)
    pad = getattr(hf_tok, "pad_token_id", None)
    sample = options.temperature > 0.0
    return GenerationConfig(
        max_new_tokens=options.max_new_tokens,
        max_time=options.max_time,
        do_sample=sample,
        temperature=options.temperature if sample else None,
        top_k=None,
        top_p=None,
        no_repeat_ngram_size=3,  # a barely trained content side otherwise loops on one phrase; still deterministic
        eos_token_id=eos,
        pad_token_id=pad if pad is not None else eos,
        use_cache=True,
    )


def _trim_to_sentence(text: str, min_chars: int = 20) -> str:
    """Cut a text stopped mid-sentence after its last full sentence, if that leaves enough to read."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if ends and ends[-1] >= min_chars:
        return text[: ends[-1]]
    return text
