"""The extended vocabulary: backbone words, then one atomic token per user, then one per item (docs/DESIGN.md §1).

Token ids: words ``0..N-1`` (the backbone's embedding rows), ``user_i`` -> ``N + i``,
``item_j`` -> ``N + I + j``.

Text is split on ``user_<digits>`` / ``item_<digits>`` (whole words: ``\\b`` on both sides, so ``superuser_1``
and ``user_1x`` stay plain text) *before* the backbone tokenizer sees it, so an ID is never broken into
sub-word pieces. Leading zeros are ignored (``item_007`` is ``item_7``). Whitespace around ID tokens:

- a whitespace-only piece next to an ID token (between two IDs, or before the first / after the last) is
  dropped: ID tokens carry no spaces;
- a text piece keeps its leading whitespace, so BPE sees ``" has"`` as in ordinary running text;
- a text piece followed by an ID token loses its trailing whitespace (the ID token stands for the word and
  its separating space);
- a text without ID tokens goes to the backbone tokenizer unchanged; no BOS/EOS or other special token is
  ever added.

Only templates hold ID tokens. Free text (a review, a title, any field of a dataset) is encoded with
``encode_text``, which never parses IDs: ``item_5`` in a review is ordinary words to the backbone tokenizer.
Templates are assembled with ``encode_parts`` from text parts (encoded as words only) and token ids placed
by the caller; ``encode`` parses a whole string for IDs and is meant for trusted strings (the ``tokenize``
command, tests).

``decode`` inverts this up to that whitespace normalisation: an ID token is written after one space unless it
starts the text or follows whitespace or an opening bracket/quote, so ``"user_1 has interacted with item_2
item_3"`` round-trips exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cllm4rec.core.errors import CLLM4RecError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ID_PATTERN = re.compile(r"\b(user|item)_(\d+)\b")
_NO_SPACE_AFTER = tuple("([{<\"'/-")


class IDTokenizer:
    """Encode text with atomic user/item tokens on top of a backbone tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, n_users: int, n_items: int, n_words: int) -> None:
        if n_users < 0 or n_items < 0:
            raise CLLM4RecError(f"n_users and n_items must be >= 0 (got {n_users}, {n_items})")
        if len(tokenizer) > n_words:
            raise CLLM4RecError(f"tokenizer has {len(tokenizer)} tokens but n_words is only {n_words}")
        self.tokenizer = tokenizer
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.n_words = int(n_words)
        self.vocab_size = self.n_words + self.n_users + self.n_items
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise CLLM4RecError("the backbone tokenizer has neither a pad nor an eos token to pad with")
        self.pad_id: int = int(pad)

    def __repr__(self) -> str:
        return f"IDTokenizer(n_words={self.n_words}, n_users={self.n_users}, n_items={self.n_items})"

    # ----- single tokens -------------------------------------------------------------------------------
    def user_token(self, i: int) -> int:
        """Token id of ``user_i``."""
        if not 0 <= i < self.n_users:
            raise CLLM4RecError(f"user index {i} out of range (0..{self.n_users - 1})")
        return self.n_words + int(i)

    def item_token(self, j: int) -> int:
        """Token id of ``item_j``."""
        if not 0 <= j < self.n_items:
            raise CLLM4RecError(f"item index {j} out of range (0..{self.n_items - 1})")
        return self.n_words + self.n_users + int(j)

    def item_tokens(self, items: Iterable[int]) -> list[int]:
        """Token ids of several items (checked)."""
        return [self.item_token(j) for j in items]

    def id_name(self, token_id: int) -> str | None:
        """``user_i`` / ``item_j`` for an ID token, ``None`` for a word token; out of range is an error."""
        if not 0 <= token_id < self.vocab_size:
            raise CLLM4RecError(f"token id {token_id} out of range (vocabulary size {self.vocab_size})")
        if token_id < self.n_words:
            return None
        if token_id < self.n_words + self.n_users:
            return f"user_{token_id - self.n_words}"
        return f"item_{token_id - self.n_words - self.n_users}"

    # ----- text --------------------------------------------------------------------------------------
    def _pieces(self, text: str) -> list[str | int]:
        """Split ``text`` into text pieces (str) and ID tokens (int), whitespace normalised as documented."""
        pieces: list[str | int] = []
        pos = 0
        for match in ID_PATTERN.finditer(text):
            before = text[pos : match.start()].rstrip()  # trailing whitespace before an ID token is dropped
            if before:
                pieces.append(before)
            kind, index = match.group(1), int(match.group(2))
            pieces.append(self.user_token(index) if kind == "user" else self.item_token(index))
            pos = match.end()
        rest = text[pos:]
        if not pieces:
            return [text] if text else []
        if rest.strip():
            pieces.append(rest)
        return pieces

    def _encode_pieces(self, pieces: list[str | int]) -> list[list[int]]:
        texts = [p for p in pieces if isinstance(p, str)]
        encoded = iter(self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else [])
        return [next(encoded) if isinstance(p, str) else [p] for p in pieces]

    def encode_text(self, text: str) -> list[int]:
        """Token ids of free text as words only: ``user_<i>`` / ``item_<j>`` in it stay ordinary words."""
        return [tid for chunk in self._encode_pieces([text] if text else []) for tid in chunk]

    def encode_parts(self, parts: Sequence[str | int]) -> list[int]:
        """Token ids of a template: ``str`` parts are encoded as words only, ``int`` parts are token ids.

        Whitespace is normalised as ``encode`` does around ID tokens, so ``[user_token(1), " has interacted
        with"]`` gives the ids of ``"user_1 has interacted with"``; adjacent text parts are joined first.
        """
        merged: list[str | int] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            elif isinstance(part, str):
                merged.append(part)
            else:
                self.id_name(int(part))  # range check
                merged.append(int(part))
        if all(isinstance(part, str) for part in merged):
            return self.encode_text("".join(str(part) for part in merged))
        pieces: list[str | int] = []
        for k, part in enumerate(merged):
            if isinstance(part, str):
                text = part.rstrip() if k + 1 < len(merged) else part  # no space before an ID token
                if text.strip():
                    pieces.append(text)
            else:
                pieces.append(part)
        return [tid for chunk in self._encode_pieces(pieces) for tid in chunk]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; out-of-range ``user_<i>`` / ``item_<j>`` raise :class:`CLLM4RecError`."""
        return [tid for chunk in self._encode_pieces(self._pieces(text)) for tid in chunk]

    def tokenize(self, text: str) -> list[str]:
        """Token strings of ``text`` (backbone sub-words as the backbone spells them, IDs as ``user_i``)."""
        out: list[str] = []
        for chunk in self._encode_pieces(self._pieces(text)):
            if len(chunk) == 1 and chunk[0] >= self.n_words:
                out.append(self.id_name(chunk[0]) or "")
            else:
                out.extend(self.tokenizer.convert_ids_to_tokens(chunk))
        return out

    def decode(self, ids: Sequence[int] | Any) -> str:
        """Text of ``ids`` (a list or 1-D tensor); ID tokens are written ``user_i`` / ``item_j``."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        out = ""
        words: list[int] = []

        def flush() -> None:
            nonlocal out, words
            if words:
                out += self.tokenizer.decode(words, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                words = []

        for tid in ids:
            name = self.id_name(int(tid))
            if name is None:
                words.append(int(tid))
                continue
            flush()
            if out and not out[-1].isspace() and not out.endswith(_NO_SPACE_AFTER):
                out += " "
            out += name
        flush()
        return out
