"""Data sets that need no download: scikit-learn's 8x8 digits and Python's own documentation text.

Both are deterministic: the same seed gives the same split on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class DigitsSplit:
    x_train: torch.Tensor  # float32 (n, 1, 8, 8) in [0, 1]
    y_train: torch.Tensor  # int64 (n,)
    x_test: torch.Tensor
    y_test: torch.Tensor


def digits_split(seed: int = 0, test_fraction: float = 0.25) -> DigitsSplit:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), stratified seeded split.

    Pixel values 0..16 are scaled to [0, 1] by dividing by 16.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    train_idx, test_idx = [], []
    for label in range(10):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train = torch.cat(train_idx)[torch.randperm(sum(len(i) for i in train_idx), generator=gen)]
    test = torch.cat(test_idx).sort().values
    return DigitsSplit(x[train], y[train], x[test], y[test])


def text_corpus(max_chars: int | None = None) -> str:
    """English text of Python's ``pydoc_data.topics`` (~465k characters), topics in sorted order."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key] for key in sorted(topics))
    return text if max_chars is None else text[:max_chars]


@dataclass(frozen=True)
class CharVocab:
    """Character vocabulary; the last id (``mask_id``) is a mask token that no character maps to."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars) + 1

    @property
    def mask_id(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        try:
            return torch.tensor([index[c] for c in text], dtype=torch.int64)
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: torch.Tensor) -> str:
        return "".join(self.chars[i] if i < len(self.chars) else "\u2588" for i in ids.tolist())


@dataclass
class TextSplit:
    vocab: CharVocab
    train_ids: torch.Tensor  # int64 (n_train,)
    val_ids: torch.Tensor    # int64 (n_val,), the tail of the corpus


def text_split(val_fraction: float = 0.1, max_chars: int | None = None) -> TextSplit:
    """Character ids of the corpus: the first (1 - val_fraction) trains, the tail is held out."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    text = text_corpus(max_chars)
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * (1 - val_fraction))
    return TextSplit(vocab, ids[:cut], ids[cut:])


def unigram_bits_per_char(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy (bits/char) on ``val_ids`` of character frequencies counted on ``train_ids``
    (add-one smoothed): the baseline a language model has to beat."""
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1.0
    logp = torch.log2(counts / counts.sum())
    return float(-logp[val_ids].mean())


def random_windows(ids: torch.Tensor, length: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """``batch`` random windows of ``length`` consecutive ids: (batch, length)."""
    if len(ids) <= length:
        raise ValueError(f"text of {len(ids)} ids is too short for windows of {length}")
    starts = torch.randint(0, len(ids) - length, (batch,), generator=generator)
    return torch.stack([ids[s:s + length] for s in starts.tolist()])


def sequential_windows(ids: torch.Tensor, length: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows covering ``ids`` from the start: (n, length), for evaluation."""
    n = len(ids) // length
    if max_windows is not None:
        n = min(n, max_windows)
    if n == 0:
        raise ValueError(f"text of {len(ids)} ids is too short for windows of {length}")
    return ids[: n * length].view(n, length)


BITS_PER_NAT = 1.0 / math.log(2.0)
