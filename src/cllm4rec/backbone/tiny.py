"""Tiny random backbones built in-process: no download, deterministic, for tests and CLI smoke runs.

``tiny-gpt2`` (GPT-2 style, tied LM head, hidden 32) and ``tiny-llama`` (Llama style, rotary positions,
grouped-query attention, untied LM head, hidden 64), both 2 layers x 4 heads with a 384-token vocabulary,
share a small byte-level BPE tokenizer trained on a fixed built-in English corpus. Weights come from a fixed
seed (0), so every build is identical. ``gpt2-small-random`` has the GPT-2-small shape (768 hidden,
12 layers, 12 heads, vocabulary 50,257) with random weights (GPT-2's own init) and the same tiny tokenizer;
it exists for throughput benchmarks and shape checks only (``encode`` never produces its word rows beyond
the tiny tokenizer's 384).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

TINY_VOCAB = 384
TINY_SEED = 0
# Transformer weights drawn with std 0.1; word vectors (and an untied LM head) then scaled x4 to std ~0.4, so
# word-vector norms (~2.5) resemble a real LM's (SmolLM2: std 0.136 x sqrt(576) ~ 3.3). With GPT-2's 0.02
# everywhere, logits are tiny and no ID embedding can sharpen a prediction; with 0.4 everywhere, attention
# and MLPs saturate and an ID token's embedding barely reaches the output.
_TINY_INIT_RANGE = 0.1
_TINY_WORD_SCALE = 4.0
EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"

# A fixed corpus: the phrases our prompts use plus ordinary English, so the BPE learns useful merges.
_CORPUS = (
    "user_1 has interacted with item_2 item_3 item_4, user_1 will interact with item_5.",
    "user_7 wrote the following review for item_9: a great product, works as described.",
    "The title of item_12 is: The Matrix. The description of item_12 is: a science fiction film.",
    "The brand of item_3 is: Fender. The categories of item_3 are: guitars, strings, accessories.",
    "The profile of user_4 is: a 24 year old student who likes comedy and drama movies.",
    "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat.",
    "I bought this for my son and he loves it. The sound is clear and the build quality is good.",
    "This movie was a classic, one of the best I have ever seen; the story and the music are great.",
    "Recommendation systems predict which items a user will like from the items they liked before.",
    "A language model reads text one token at a time and predicts the next token from the previous ones.",
    "It was not what I expected: too small, and it broke after two weeks. I would not buy it again.",
    "Good value for the money. Shipping was fast and the seller answered every question quickly.",
    "She has watched many films this year, mostly thrillers, westerns and animated features for children.",
    "Numbers such as 0 1 2 3 4 5 6 7 8 9 10 100 1995 2024 appear in titles, years and ratings.",
)

TINY_ALIASES = ("tiny-gpt2", "tiny-llama", "gpt2-small-random")


@functools.lru_cache(maxsize=1)
def _tiny_tokenizer_json() -> str:
    """Train the byte-level BPE once per process; training is deterministic (a few milliseconds)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS) * 3, trainer=trainer)
    return tok.to_str()


def tiny_tokenizer() -> PreTrainedTokenizerBase:
    """A real (byte-level BPE) tokenizer with eos and pad tokens, identical on every call."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(_tiny_tokenizer_json())
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN, pad_token=PAD_TOKEN)


def tiny_config(alias: str) -> PretrainedConfig:
    """The model config of one tiny alias (special-token ids point into the tiny tokenizer)."""
    from transformers import GPT2Config, LlamaConfig

    eos, pad = 0, 1  # the trainer puts the special tokens first, in order
    if alias == "tiny-gpt2":
        return GPT2Config(
            vocab_size=TINY_VOCAB,
            n_positions=512,
            n_embd=32,
            n_layer=2,
            n_head=4,
            initializer_range=_TINY_INIT_RANGE,
            bos_token_id=eos,
            eos_token_id=eos,
            pad_token_id=pad,
        )
    if alias == "tiny-llama":
        return LlamaConfig(
            vocab_size=TINY_VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            tie_word_embeddings=False,
            initializer_range=_TINY_INIT_RANGE,
            bos_token_id=eos,
            eos_token_id=eos,
            pad_token_id=pad,
        )
    if alias == "gpt2-small-random":
        return GPT2Config(bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)  # 768 x 12 x 12, vocab 50257
    raise KeyError(alias)


def build_tiny(alias: str, seed: int) -> PreTrainedModel:
    """Build one tiny alias with random weights drawn from ``seed`` (the recipe described above)."""
    import torch

    model = build_from_config(tiny_config(alias), seed)
    if alias != "gpt2-small-random":
        with torch.no_grad():
            word = model.get_input_embeddings().weight
            word.mul_(_TINY_WORD_SCALE)
            head = model.get_output_embeddings()
            if head is not None and head.weight is not word:
                head.weight.mul_(_TINY_WORD_SCALE)
    return model


def build_from_config(config: PretrainedConfig, seed: int) -> PreTrainedModel:
    """Randomly initialise a causal LM from ``config`` with a private seeded RNG (global RNG untouched)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32)
        except (ValueError, ImportError):  # an architecture without SDPA support
            return AutoModelForCausalLM.from_config(config, dtype=torch.float32)
