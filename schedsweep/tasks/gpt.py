"""gpt: a GPT-2-style decoder LM on a token file (nanoGPT's train.bin format) or on byte-tokenized text.

Data (`data`):
  * a path ending in `.bin`: raw tokens, `dtype` uint16 or uint32, read through np.memmap (nothing is
    loaded: a 9 GB OpenWebText train.bin costs no memory), token ids < `vocab_size`;
  * any other path: a UTF-8 text file, tokenized at start by the byte tokenizer (token = byte, 256
    tokens, no download), so `vocab_size` is 256;
  * null: Python's documentation topics (as charlm), byte-tokenized.
The last 10% of the tokens are held out. `schedsweep data TEXT OUT.bin` writes a text file as a
token file (the byte tokenizer, uint16), so both routes give the same tokens.

Model: charlm's TinyGPT (token + learned position embeddings, pre-LN blocks with
F.scaled_dot_product_attention, GELU MLP, tied head, GPT-2 init) at GPT-2 sizes: conf/task/gpt.yaml
is the 124M-like GPU preset (12 layers, 12 heads, d_model 768, context 1024, vocab 50304),
conf/task/gpt_tiny.yaml a CPU preset for tests.

Batches: `batch_size` windows of context + 1 tokens at uniform random starts; batch i's starts come
from a generator seeded with derive_seed(seed, 'batches') + i, so a resumed run starts at any batch.
evaluate(): mean cross-entropy over eval_batches fixed held-out batches (generator seed 0).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from schedsweep import files
from schedsweep.errors import TaskError
from schedsweep.train.groups import no_decay_groups
from schedsweep.tasks import derive_seed, seeded
from schedsweep.tasks.charlm import HELD_OUT, TinyGPT, _python_docs

DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
BYTES = 256  # the byte tokenizer's vocabulary


class GPT:
    """A GPT-2-style decoder on a token file or byte-tokenized text (see the module docstring)."""

    def __init__(
        self,
        *,
        data: str | None = None,
        dtype: str = "uint16",
        vocab_size: int = 50304,
        context: int = 1024,
        d_model: int = 768,
        n_layers: int = 12,
        n_heads: int = 12,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        batch_size: int = 16,
        eval_batches: int = 20,
        seed: int = 0,
    ) -> None:
        self.check_params(dict(
            data=data, dtype=dtype, vocab_size=vocab_size, context=context, d_model=d_model, n_layers=n_layers,
            n_heads=n_heads, mlp_ratio=mlp_ratio, dropout=dropout, batch_size=batch_size, eval_batches=eval_batches,
        ))
        self.context, self.d_model, self.n_layers, self.n_heads = context, d_model, n_layers, n_heads
        self.mlp_ratio, self.dropout, self.batch_size, self.seed = mlp_ratio, dropout, batch_size, seed
        tokens, self.vocab_size = read_tokens(data, dtype, vocab_size)
        split = len(tokens) - int(len(tokens) * HELD_OUT)
        self.train_tokens, self.eval_tokens = tokens[:split], tokens[split:]
        if min(len(self.train_tokens), len(self.eval_tokens)) < context + 1:
            raise TaskError(
                f"task gpt: {data or 'the default text'} has {len(tokens)} tokens; its train part and its held-out "
                f"last 10% must each hold a window of context + 1 = {context + 1} tokens (a smaller context, or more data)."
            )
        g = torch.Generator().manual_seed(0)  # held-out windows: the same for every run seed
        high = len(self.eval_tokens) - context
        self.eval_windows = [_windows(self.eval_tokens, torch.randint(0, high, (batch_size,), generator=g), context)
                             for _ in range(eval_batches)]

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """TaskError unless sizes are positive integers, n_heads divides d_model, dtype is uint16 or uint32,
        0 <= dropout < 1 and data is null or an existing file (checked, not read)."""
        for key in ("vocab_size", "context", "d_model", "n_layers", "n_heads", "mlp_ratio", "batch_size", "eval_batches"):
            value = params.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TaskError(f"task gpt: {key} must be an integer >= 1; got {value!r}.")
        if params.get("d_model", 768) % params.get("n_heads", 12):
            raise TaskError(f"task gpt: n_heads ({params.get('n_heads')}) must divide d_model ({params.get('d_model')}).")
        if params.get("dtype", "uint16") not in DTYPES:
            raise TaskError(f"task gpt: dtype must be uint16 or uint32 (the token file's integer type); got {params.get('dtype')!r}.")
        dropout = params.get("dropout", 0.0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise TaskError(f"task gpt: dropout must be a number in [0, 1); got {dropout!r}.")
        data = params.get("data")
        if data is not None and (not isinstance(data, str) or not Path(data).expanduser().is_file()):
            raise TaskError(
                f"task gpt: data {data!r} is not a file (resolved from {Path.cwd()}). Give a token file "
                f"(*.bin, e.g. from `schedsweep data TEXT OUT.bin`), a UTF-8 text file, or null for Python's docs."
            )

    def build_model(self) -> torch.nn.Module:
        with seeded(derive_seed(self.seed, "init")):
            return TinyGPT(self.vocab_size, self.context, self.d_model, self.n_layers, self.n_heads, self.mlp_ratio,
                           self.dropout)

    def param_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        """Weight decay on matrices and embeddings only, none on biases and LayerNorms (nanoGPT's split)."""
        return no_decay_groups(model)

    def batches(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y), int64 [batch_size, context]; batch i's starts from derive_seed(seed, 'batches') + i."""
        base = derive_seed(self.seed, "batches")
        high = len(self.train_tokens) - self.context
        g = torch.Generator()
        for i in itertools.count(start):
            g.manual_seed(base + i)
            yield _windows(self.train_tokens, torch.randint(0, high, (self.batch_size,), generator=g), self.context)

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean next-token cross-entropy (nats)."""
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def evaluate(self, model: torch.nn.Module) -> float:
        """Mean held-out cross-entropy over the fixed windows (called under no_grad and eval mode by the loop)."""
        device = next(model.parameters()).device
        total = sum(self.loss(model, (x.to(device), y.to(device))).item() for x, y in self.eval_windows)
        return total / len(self.eval_windows)

    def flops_per_token(self) -> float:
        """Training FLOPs per token, nanoGPT's estimate 6 N + 12 L d T: N = L (4 + 2 mlp_ratio) d^2 block
        weights + vocab d for the (tied) head, 12 L d T for attention over a context of T."""
        n = self.n_layers * (4 + 2 * self.mlp_ratio) * self.d_model**2 + self.vocab_size * self.d_model
        return 6 * n + 12 * self.n_layers * self.d_model * self.context


def read_tokens(data: str | None, dtype: str, vocab_size: int) -> tuple[np.ndarray, int]:
    """(the token array, the vocabulary size): a memmap of a .bin file, or the bytes of a text."""
    if data is not None and Path(data).suffix == ".bin":
        path = Path(data).expanduser()
        if path.stat().st_size % np.dtype(DTYPES[dtype]).itemsize:
            raise TaskError(f"task gpt: token file '{data}' has {path.stat().st_size} bytes, not a whole number of {dtype} tokens.")
        return np.memmap(path, dtype=DTYPES[dtype], mode="r"), vocab_size
    text = _python_docs() if data is None else Path(data).expanduser().read_text(encoding="utf-8")
    return encode_bytes(text), BYTES


def encode_bytes(text: str) -> np.ndarray:
    """The byte tokenizer: token i = byte i of the UTF-8 encoding (uint16, nanoGPT's token file type)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)


def write_token_file(text_file: Path, out: Path) -> int:
    """Byte-tokenize a UTF-8 text file into a uint16 token file (written atomically); the token count."""
    try:
        tokens = encode_bytes(text_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise TaskError(f"cannot read '{text_file}' as UTF-8 text: {e}.") from None
    with files.replacing(out) as tmp:
        tokens.tofile(tmp)
    return len(tokens)


def _windows(tokens: np.ndarray, starts: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x = tokens[s : s + context], y = tokens[s + 1 : s + context + 1] for each start s (as nanoGPT reads train.bin)."""
    w = torch.from_numpy(np.stack([tokens[s : s + context + 1] for s in starts.tolist()]).astype(np.int64))
    return w[:, :-1], w[:, 1:]

