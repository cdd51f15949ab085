"""A tiny Prompt Guard model and a numpy forward pass of it.

`write_model` writes a Hugging Face folder (config.json, tokenizer.json, model.safetensors) of a
DeBERTa-v2 sequence classifier with Prompt Guard's settings: relative attention in log buckets,
keys shared between content and position, both position terms (p2c, c2p), layer-normed relative
embeddings, no absolute positions and no token types; only the sizes are tiny. Its weights are
random (seeded), under `transformers`' tensor names.

`reference_probabilities` computes the class probabilities of each window of a text with plain
numpy, written from the model's definition, so the core's classifier is checked against a
second, independent implementation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer

HIDDEN = 8
HEADS = 2
INTERMEDIATE = 16
LAYERS = 2
BUCKETS = 8
WINDOW = 16
EPS = 1e-7
WORDS = [
    "ignore", "previous", "instructions", "reveal", "the", "system", "prompt", "hello", "how", "are",
    "you", "today", "pretend", "no", "rules", "summarize", "this", "document", "please", "secret",
]
SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
LABELS = ["BENIGN", "INJECTION", "JAILBREAK"]


def vocab() -> List[list]:
    pieces = [[t, 0.0] for t in SPECIALS]
    pieces += [["\u2581" + w, -2.0] for w in WORDS]
    pieces.append(["\u2581", -3.0])
    pieces += [[chr(c), -5.0] for c in range(ord("a"), ord("z") + 1)]
    return pieces


def config() -> dict:
    return {
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "vocab_size": len(vocab()),
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": WINDOW,
        "type_vocab_size": 0,
        "initializer_range": 0.02,
        "layer_norm_eps": EPS,
        "relative_attention": True,
        "max_relative_positions": -1,
        "position_buckets": BUCKETS,
        "norm_rel_ebd": "layer_norm",
        "share_att_key": True,
        "pos_att_type": ["p2c", "c2p"],
        "position_biased_input": False,
        "pad_token_id": 0,
        "pooler_dropout": 0,
        "pooler_hidden_act": "gelu",
        "pooler_hidden_size": HIDDEN,
        "id2label": {str(i): label for i, label in enumerate(LABELS)},
        "label2id": {label: i for i, label in enumerate(LABELS)},
        "torch_dtype": "float32",
    }


def tokenizer_json() -> dict:
    def special(i: int) -> dict:
        return {"id": i, "content": SPECIALS[i], "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}

    def tok(name: str, type_id: int = 0) -> dict:
        return {"SpecialToken": {"id": name, "type_id": type_id}}

    def seq(name: str, type_id: int = 0) -> dict:
        return {"Sequence": {"id": name, "type_id": type_id}}

    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(i) for i in range(len(SPECIALS))],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("[CLS]"), seq("A"), tok("[SEP]")],
            "pair": [tok("[CLS]"), seq("A"), tok("[SEP]"), seq("B", 1), tok("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]},
            },
        },
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab(), "byte_fallback": False},
    }


def tensor_shapes() -> Dict[str, tuple]:
    v = len(vocab())
    shapes = {
        "deberta.embeddings.word_embeddings.weight": (v, HIDDEN),
        "deberta.embeddings.LayerNorm.weight": (HIDDEN,),
        "deberta.embeddings.LayerNorm.bias": (HIDDEN,),
        "deberta.encoder.rel_embeddings.weight": (2 * BUCKETS, HIDDEN),
        "deberta.encoder.LayerNorm.weight": (HIDDEN,),
        "deberta.encoder.LayerNorm.bias": (HIDDEN,),
        "pooler.dense.weight": (HIDDEN, HIDDEN),
        "pooler.dense.bias": (HIDDEN,),
        "classifier.weight": (3, HIDDEN),
        "classifier.bias": (3,),
    }
    for layer in range(LAYERS):
        p = f"deberta.encoder.layer.{layer}"
        for name, (out_dim, in_dim) in {
            "attention.self.query_proj": (HIDDEN, HIDDEN),
            "attention.self.key_proj": (HIDDEN, HIDDEN),
            "attention.self.value_proj": (HIDDEN, HIDDEN),
            "attention.output.dense": (HIDDEN, HIDDEN),
            "intermediate.dense": (INTERMEDIATE, HIDDEN),
            "output.dense": (HIDDEN, INTERMEDIATE),
        }.items():
            shapes[f"{p}.{name}.weight"] = (out_dim, in_dim)
            shapes[f"{p}.{name}.bias"] = (out_dim,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}.{norm}.weight"] = (HIDDEN,)
            shapes[f"{p}.{norm}.bias"] = (HIDDEN,)
    return shapes


def random_weights(seed: int) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in tensor_shapes().items():
        scale = 0.15 if name.endswith("LayerNorm.weight") or name.endswith("bias") else 0.7
        w = rng.normal(0.0, scale, size=shape)
        if name.endswith("LayerNorm.weight"):
            w += 1.0
        weights[name] = w.astype(np.float32)
    return weights


def write_model(directory: Path, seed: int = 7) -> Dict[str, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    weights = random_weights(seed)
    (directory / "config.json").write_text(json.dumps(config(), indent=2))
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer_json(), ensure_ascii=False))
    save_file(weights, str(directory / "model.safetensors"))
    return weights


# ---- the numpy forward pass -------------------------------------------------------------------

_erf = np.vectorize(math.erf)


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * w + b


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def bucketed_relative_positions(n: int) -> np.ndarray:
    """rel[i, j] = i - j (query i, key j); beyond half the bucket count, distances share buckets
    whose width grows logarithmically up to the largest relative position (here the window)."""
    i = np.arange(n)
    rel = i[:, None] - i[None, :]
    mid = BUCKETS // 2
    max_position = WINDOW  # max_relative_positions < 1 falls back to max_position_embeddings
    near = (rel < mid) & (rel > -mid)
    dist = np.where(near, mid - 1, np.abs(rel)).astype(np.float32)
    # Single precision, as the model computes the bucket: the ceiling is sensitive to rounding.
    ratio = np.log(dist / np.float32(mid)) / np.log(np.float32((max_position - 1) / mid))
    log_pos = np.ceil(ratio * np.float32(mid - 1)) + mid
    return np.where(dist <= mid, rel, log_pos * np.sign(rel)).astype(np.int64)


def logits(w: Dict[str, np.ndarray], ids: List[int]) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in w.items()}
    n = len(ids)
    d = HIDDEN // HEADS

    def linear(prefix: str, x: np.ndarray) -> np.ndarray:
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    def heads(x: np.ndarray) -> np.ndarray:  # (rows, HIDDEN) -> (HEADS, rows, d)
        return x.reshape(x.shape[0], HEADS, d).transpose(1, 0, 2)

    x = w["deberta.embeddings.word_embeddings.weight"][ids]
    x = layer_norm(x, w["deberta.embeddings.LayerNorm.weight"], w["deberta.embeddings.LayerNorm.bias"])
    rel_emb = layer_norm(
        w["deberta.encoder.rel_embeddings.weight"], w["deberta.encoder.LayerNorm.weight"], w["deberta.encoder.LayerNorm.bias"]
    )[: 2 * BUCKETS]
    rel = bucketed_relative_positions(n)
    c2p_index = np.clip(rel + BUCKETS, 0, 2 * BUCKETS - 1)  # query i reads key j's offset i - j
    p2c_index = np.clip(-rel + BUCKETS, 0, 2 * BUCKETS - 1)
    scale = math.sqrt(d * 3)  # content + c2p + p2c

    for layer in range(LAYERS):
        p = f"deberta.encoder.layer.{layer}"
        q = heads(linear(f"{p}.attention.self.query_proj", x))
        k = heads(linear(f"{p}.attention.self.key_proj", x))
        v = heads(linear(f"{p}.attention.self.value_proj", x))
        # Shared keys: the position embeddings go through the content projections.
        pos_k = heads(linear(f"{p}.attention.self.key_proj", rel_emb))
        pos_q = heads(linear(f"{p}.attention.self.query_proj", rel_emb))

        scores = q @ k.transpose(0, 2, 1)
        c2p = np.zeros_like(scores)
        p2c = np.zeros_like(scores)
        for i in range(n):
            for j in range(n):
                # content of query i against the position of key j relative to it
                c2p[:, i, j] = np.einsum("hd,hd->h", q[:, i], pos_k[:, c2p_index[i, j]])
                # content of key j against the position of query i relative to it
                p2c[:, i, j] = np.einsum("hd,hd->h", k[:, j], pos_q[:, p2c_index[j, i]])
        probs = softmax((scores + c2p + p2c) / scale)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, HIDDEN)

        attended = layer_norm(
            linear(f"{p}.attention.output.dense", context) + x,
            w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"],
        )
        inner = gelu(linear(f"{p}.intermediate.dense", attended))
        x = layer_norm(
            linear(f"{p}.output.dense", inner) + attended,
            w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"],
        )

    pooled = gelu(linear("pooler.dense", x[0]))
    return linear("classifier", pooled)


def windows(directory: Path, text: str) -> List[List[int]]:
    """Token ids of each window the shield reads: the model's length, overlapping by an eighth."""
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tok.enable_truncation(max_length=WINDOW, stride=(WINDOW - 2) // 8)
    enc = tok.encode(text)
    return [enc.ids] + [o.ids for o in enc.overflowing]


def reference_probabilities(directory: Path, weights: Dict[str, np.ndarray], text: str) -> List[np.ndarray]:
    return [softmax(logits(weights, ids)) for ids in windows(directory, text)]
