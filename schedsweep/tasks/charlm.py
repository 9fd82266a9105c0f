"""charlm: a small character-level decoder-only transformer language model. No downloads.

Corpus: `text: null` is CPython's own documentation topics, shipped with every Python
(`pydoc_data.topics.topics`, values joined in sorted key order with "\\n": 465k characters, 103
distinct, unigram entropy 3.25 nats on Python 3.11); otherwise the path of a UTF-8 text file. The
vocabulary is the sorted set of the corpus's characters; the last 10% of the text is held out.

Model: token + learned position embeddings, n_layers pre-LN blocks
    x = x + Attn(LN(x)),  x = x + MLP(LN(x)),  MLP = Linear(d, r d) -> GELU -> Linear(r d, d)
with causal multi-head attention (F.scaled_dot_product_attention, is_causal=True), a final
LayerNorm and a head tied to the token embedding. Weights ~ N(0, 0.02^2), the two residual output
projections of each block ~ N(0, (0.02 / sqrt(2 n_layers))^2) as in GPT-2, biases 0.

Batches: (x, y) = `batch_size` windows of context + 1 characters from the train split at starts
drawn by a torch.Generator seeded from `seed`, y being x shifted by one. evaluate(): mean
cross-entropy over a fixed set of eval_batches * batch_size held-out windows (starts drawn with
generator seed 0, so every run seed scores on the same windows).

Loss: mean next-character cross-entropy in nats, ln(vocab) = 4.63 at a uniform guess. Dropout (off by
default) draws from torch's global RNG, which the training loop seeds with the run's seed.

Defaults: one block of width 32 on 32-character windows, so that the 100% budget (1000 steps, conf/tuned/)
is a real run on a CPU: with AdamW at peak LR 1e-2, 1000 steps reach a held-out loss of 1.716 with linear
decay and 1.744 at a constant LR (400 steps: 1.966 against 1.933, constant still ahead), against a
unigram entropy of 3.25. The earlier defaults (2 blocks of width 64, context 64, 300 steps) stopped
where constant beat every decay: a run too short for the schedule to matter.
"""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from schedsweep.errors import TaskError
from schedsweep.train.groups import no_decay_groups
from schedsweep.tasks import derive_seed, evaluating, seeded

HELD_OUT = 0.1  # the last 10% of the text
EVAL_SEED = 0  # held-out windows are the same for every run seed


class CharLM:
    """A character-level transformer LM on Python's docs or a text file (see the module docstring)."""

    # The run id hashes the corpus's contents: the file at `text`, or when null the module it comes from.
    FILE_PARAMS = {"text": "pydoc_data.topics"}

    def __init__(
        self,
        *,
        text: str | None = None,
        context: int = 32,
        d_model: int = 32,
        n_layers: int = 1,
        n_heads: int = 2,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
        batch_size: int = 32,
        eval_batches: int = 8,
        seed: int = 0,
    ) -> None:
        self.check_params(dict(
            text=text, context=context, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
            mlp_ratio=mlp_ratio, dropout=dropout, batch_size=batch_size, eval_batches=eval_batches,
        ))
        self.context, self.d_model, self.n_layers, self.n_heads = context, d_model, n_layers, n_heads
        self.mlp_ratio, self.dropout, self.batch_size, self.seed = mlp_ratio, dropout, batch_size, seed
        corpus, source = _read_corpus(text)
        vocab, ids = _encode(corpus)
        self.vocab = list(vocab)
        split = len(ids) - int(len(ids) * HELD_OUT)
        self.train_ids, self.eval_ids = ids[:split], ids[split:]
        if len(self.eval_ids) < context + 1:
            raise TaskError(
                f"task charlm: the corpus {source} has {len(corpus)} characters; its held-out last 10% "
                f"({len(self.eval_ids)}) must hold one window of context + 1 = {context + 1}, so it needs "
                f"at least {math.ceil((context + 1) / HELD_OUT)} characters (or a smaller context)."
            )
        g = torch.Generator().manual_seed(EVAL_SEED)
        starts = torch.randint(0, len(self.eval_ids) - context, (eval_batches, batch_size), generator=g)
        self.eval_windows = [_windows(self.eval_ids, s, context) for s in starts]

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """TaskError unless sizes are positive integers, n_heads divides d_model, 0 <= dropout < 1 and
        text is null or a path to an existing file (checked, not read: planning reads no corpora)."""
        for key in ("context", "d_model", "n_layers", "n_heads", "mlp_ratio", "batch_size", "eval_batches"):
            value = params.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TaskError(f"task charlm: {key} must be an integer >= 1; got {value!r}.")
        d_model, n_heads = params.get("d_model", 64), params.get("n_heads", 4)
        if d_model % n_heads:
            raise TaskError(
                f"task charlm: n_heads ({n_heads}) must divide d_model ({d_model}); each head gets "
                f"d_model / n_heads dimensions."
            )
        dropout = params.get("dropout", 0.0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise TaskError(f"task charlm: dropout must be a number in [0, 1); got {dropout!r}.")
        text = params.get("text")
        if text is not None:
            if not isinstance(text, str) or not text:
                raise TaskError(
                    f"task charlm: text must be null (Python's documentation topics) or the path of a "
                    f"UTF-8 text file; got {text!r}."
                )
            path = Path(text).expanduser()
            if not path.is_file():
                raise TaskError(
                    f"task charlm: text file '{text}' does not exist or is not a file (resolved from "
                    f"{Path.cwd()} to {path.resolve()}). Give the path of a UTF-8 text file, or text=null "
                    f"for Python's documentation topics."
                )

    def build_model(self) -> torch.nn.Module:
        """A fresh TinyGPT, initialised from derive_seed(seed, 'init')."""
        with seeded(derive_seed(self.seed, "init")):
            return TinyGPT(
                len(self.vocab), self.context, self.d_model, self.n_layers, self.n_heads, self.mlp_ratio,
                self.dropout,
            )

    def batches(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y), each int64 [batch_size, context], windows at uniform random starts in the train split.

        Batch i draws its starts from a generator seeded with derive_seed(seed, 'batches') + i, so the
        stream can begin at any batch `start` (a resumed run) without drawing the ones before it.
        """
        base = derive_seed(self.seed, "batches")
        high = len(self.train_ids) - self.context  # the window's target needs one character past it
        g = torch.Generator()
        for i in itertools.count(start):
            g.manual_seed(base + i)
            starts = torch.randint(0, high, (self.batch_size,), generator=g)
            yield _windows(self.train_ids, starts, self.context)

    def param_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        """Weight decay on matrices and embeddings only, none on biases and LayerNorms (nanoGPT's split)."""
        return no_decay_groups(model)

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean next-character cross-entropy (nats) over every position of every window."""
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def evaluate(self, model: torch.nn.Module) -> float:
        """Mean held-out cross-entropy over the fixed eval windows (equal-sized batches: mean of means)."""
        with evaluating(model):
            total = sum(self.loss(model, batch).item() for batch in self.eval_windows)
        return total / len(self.eval_windows)

    def eval_metrics(self, model: torch.nn.Module) -> dict[str, float]:
        """eval_error: the fraction of held-out next characters whose arg-max prediction is wrong."""
        with evaluating(model):
            wrong = sum((model(x).argmax(dim=-1) != y).float().mean().item() for x, y in self.eval_windows)
        return {"eval_error": wrong / len(self.eval_windows)}


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, mlp_ratio * d_model)
        self.out = nn.Linear(mlp_ratio * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        # [b, t, 3d] -> 3 x [b, heads, t, d / heads]
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


class TinyGPT(nn.Module):
    """Token + position embeddings, n_layers Blocks, final LayerNorm, head tied to the token embedding."""

    def __init__(
        self, vocab: int, context: int, d_model: int, n_layers: int, n_heads: int, mlp_ratio: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, mlp_ratio, dropout) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.head.weight = self.tok.weight
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() >= 2:
                # GPT-2: residual outputs scaled by 1/sqrt(2 n_layers), since 2 n_layers of them add up
                residual = name.endswith(("proj.weight", "out.weight"))
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layers) if residual else 0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits [batch, time, vocab] for int64 idx [batch, time], time <= context."""
        x = self.drop(self.tok(idx) + self.pos.weight[: idx.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def _windows(ids: torch.Tensor, starts: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x = ids[s : s + context], y = ids[s + 1 : s + context + 1] for each start s."""
    w = ids[starts[:, None] + torch.arange(context + 1)]
    return w[:, :-1], w[:, 1:]


def _read_corpus(text: str | None) -> tuple[str, str]:
    """(corpus, description for messages)."""
    if text is None:
        return _python_docs(), "pydoc_data.topics"
    path = Path(text).expanduser()
    try:
        return path.read_text(encoding="utf-8"), f"'{text}'"
    except FileNotFoundError:
        raise TaskError(
            f"task charlm: text file '{text}' does not exist (resolved from {Path.cwd()} to "
            f"{path.resolve()}). Give the path of a UTF-8 text file, or text=null for Python's "
            f"documentation topics."
        ) from None
    except UnicodeDecodeError as e:
        raise TaskError(f"task charlm: text file '{text}' is not UTF-8 ({e}).") from None
    except OSError as e:
        raise TaskError(f"task charlm: cannot read text file '{text}': {e.strerror or e}.") from None


@functools.lru_cache(maxsize=4)  # ~110 ms per build for Python's docs otherwise; tests build dozens
def _encode(corpus: str) -> tuple[tuple[str, ...], torch.Tensor]:
    """(vocabulary = sorted distinct characters, int64 ids of every character). Callers must not modify ids."""
    vocab = tuple(sorted(set(corpus)))
    lookup = {c: i for i, c in enumerate(vocab)}
    return vocab, torch.tensor([lookup[c] for c in corpus], dtype=torch.long)


@functools.lru_cache(maxsize=1)
def _python_docs() -> str:
    from pydoc_data.topics import topics

    return "\n".join(topics[k] for k in sorted(topics))
