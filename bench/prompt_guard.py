#!/usr/bin/env python3
"""Prompt Guard classification time: the Rust core (candle DeBERTa-v2, through the in-process
`LlamaStack` safety API) against `transformers`' DebertaV2ForSequenceClassification on CPU torch,
the code upstream's shield called, on one model with Prompt-Guard-86M's dimensions.

    python bench/prompt_guard.py [--threads 1,2] [--repeats 5] [--ours-python PY] [--reference-python PY]

Prompt-Guard-86M's weights cannot be fetched here, so the model is written first (into
`--model-dir`, default ~/.cache/lsrs/models/prompt-guard-bench): its config (hidden size 768, 12
layers, 12 heads, intermediate 3072, 512 positions, 256 relative-position buckets, shared keys,
p2c and c2p) with random weights. The one difference is the vocabulary, 64 pieces instead of
251,000: the embedding table is a lookup, so the work per token is the real model's.

Each engine runs in a fresh worker process per thread count (RAYON_NUM_THREADS for ours,
torch.set_num_threads for the reference). Reported: load time and milliseconds per
classification (median over repeats, after a warm-up) of a short prompt, a 510-token prompt (one
full window) and a 2,000-token prompt (five windows: both engines classify the same windows one
after the other), plus the largest difference of any class probability between the two engines.
`--ours-python` must have our extension from an optimised build (`maturin build --release`); the
reference runs where `transformers` and torch import (`~/.cache/lsrs-baseline/venv` by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS, BUCKETS = 768, 12, 12, 3072, 512, 256
WORDS = ["ignore", "previous", "instructions", "reveal", "the", "system", "prompt", "hello", "how", "are",
         "you", "today", "pretend", "no", "rules", "summarize", "this", "document", "please", "secret"]
SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]


def vocab() -> List[list]:
    return ([[t, 0.0] for t in SPECIALS] + [["\u2581" + w, -2.0] for w in WORDS] + [["\u2581", -3.0]]
            + [[chr(c), -5.0] for c in range(ord("a"), ord("z") + 1)] + [[str(d), -5.0] for d in range(10)]
            + [[",", -5.0], [".", -5.0], ["?", -5.0]])


def words(n: int) -> str:
    """A text of `n` word tokens (each word of WORDS is one piece)."""
    return " ".join(WORDS[(i * 7) % len(WORDS)] for i in range(n))


TEXTS = {"short (12 tokens)": words(10), "one window (510 tokens)": words(510), "2,000 tokens (5 windows)": words(1998)}


def write_model(directory: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    v = len(vocab())
    config = {
        "architectures": ["DebertaV2ForSequenceClassification"], "model_type": "deberta-v2", "vocab_size": v,
        "hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": POSITIONS, "type_vocab_size": 0,
        "initializer_range": 0.02, "layer_norm_eps": 1e-7, "relative_attention": True, "max_relative_positions": -1,
        "position_buckets": BUCKETS, "norm_rel_ebd": "layer_norm", "share_att_key": True,
        "pos_att_type": ["p2c", "c2p"], "position_biased_input": False, "pad_token_id": 0, "pooler_dropout": 0,
        "pooler_hidden_act": "gelu", "pooler_hidden_size": HIDDEN,
        "id2label": {"0": "BENIGN", "1": "INJECTION", "2": "JAILBREAK"},
        "label2id": {"BENIGN": 0, "INJECTION": 1, "JAILBREAK": 2},
    }
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    special = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
                "special": True} for i, t in enumerate(SPECIALS)]
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": metaspace, "decoder": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}},
        },
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab(), "byte_fallback": False},
    }
    rng = np.random.default_rng(0)
    shapes = {
        "deberta.embeddings.word_embeddings.weight": (v, HIDDEN),
        "deberta.encoder.rel_embeddings.weight": (2 * BUCKETS, HIDDEN),
        "pooler.dense.weight": (HIDDEN, HIDDEN), "pooler.dense.bias": (HIDDEN,),
        "classifier.weight": (3, HIDDEN), "classifier.bias": (3,),
    }
    norms = ["deberta.embeddings.LayerNorm", "deberta.encoder.LayerNorm"]
    for layer in range(LAYERS):
        p = f"deberta.encoder.layer.{layer}"
        for name, shape in [("attention.self.query_proj", (HIDDEN, HIDDEN)), ("attention.self.key_proj", (HIDDEN, HIDDEN)),
                            ("attention.self.value_proj", (HIDDEN, HIDDEN)), ("attention.output.dense", (HIDDEN, HIDDEN)),
                            ("intermediate.dense", (INTERMEDIATE, HIDDEN)), ("output.dense", (HIDDEN, INTERMEDIATE))]:
            shapes[f"{p}.{name}.weight"] = shape
            shapes[f"{p}.{name}.bias"] = (shape[0],)
        norms += [f"{p}.attention.output.LayerNorm", f"{p}.output.LayerNorm"]
    tensors = {name: rng.normal(0.0, 0.05, size=shape).astype(np.float32) for name, shape in shapes.items()}
    for norm in norms:
        tensors[f"{norm}.weight"] = (1.0 + rng.normal(0.0, 0.05, size=HIDDEN)).astype(np.float32)
        tensors[f"{norm}.bias"] = rng.normal(0.0, 0.05, size=HIDDEN).astype(np.float32)
    tensors["classifier.weight"] *= 20  # spread the three classes apart
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))


# --- workers (run in a child process) -------------------------------------------------------


def _timed(classify: Any, repeats: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {"ms": {}, "probs": {}}
    for label, text in TEXTS.items():
        out["probs"][label] = classify(text)  # warm-up, and the answer compared
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            classify(text)
            times.append((time.perf_counter() - t0) * 1000)
        out["ms"][label] = statistics.median(times)
    return out


def worker_ours(model_dir: str, repeats: int) -> Dict[str, Any]:
    import asyncio

    from llama_stack.distribution.datatypes import StackRunConfig
    from llama_stack.distribution.stack import LlamaStack
    from llama_models.llama3.api.datatypes import UserMessage

    config = {
        "version": "2", "image_name": "prompt-guard-bench", "apis": ["safety"],
        "providers": {"safety": [{"provider_id": "pg", "provider_type": "meta-reference", "config": {
            "enable_prompt_guard": True, "prompt_guard_model_dir": model_dir, "prompt_guard_threshold": 0.0}}]},
        "metadata_store": {"type": "sqlite", "db_path": os.path.join(model_dir, "bench-registry.db")},
    }
    loop = asyncio.new_event_loop()
    t0 = time.perf_counter()
    stack = loop.run_until_complete(LlamaStack.create(StackRunConfig(**config)))
    load = time.perf_counter() - t0

    def classify(text: str) -> List[float]:
        r = loop.run_until_complete(
            stack.safety.run_shield(shield_type="prompt_guard", messages=[UserMessage(content=text)], params={}))
        scores = r.violation.metadata["scores"]
        return [scores["BENIGN"], scores["INJECTION"], scores["JAILBREAK"]]

    out = _timed(classify, repeats)
    loop.run_until_complete(stack.close())
    return {"engine": "ours (candle)", "load_s": load, **out}


def worker_reference(model_dir: str, repeats: int, threads: int) -> Dict[str, Any]:
    try:
        import torch
        import transformers
        from tokenizers import Tokenizer
        from transformers import AutoModelForSequenceClassification
    except ImportError as e:
        return {"error": f"transformers or torch does not import ({e})"}
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.enable_truncation(max_length=POSITIONS, stride=(POSITIONS - 2) // 8)
    load = time.perf_counter() - t0

    def classify(text: str) -> List[float]:
        enc = tok.encode(text)
        best = None
        for ids in [enc.ids] + [o.ids for o in enc.overflowing]:
            with torch.no_grad():
                probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits, dim=-1)[0].tolist()
            if best is None or probs[1] + probs[2] > best[1] + best[2]:
                best = probs
        return best

    out = _timed(classify, repeats)
    return {"engine": f"transformers {transformers.__version__} + torch {torch.__version__}", "load_s": load, **out}


# --- driver ---------------------------------------------------------------------------------


def run_worker(python: str, kind: str, model_dir: Path, threads: int, repeats: int) -> Dict[str, Any]:
    env = dict(os.environ)
    for var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["LLAMA_STACK_CONFIG_DIR"] = str(model_dir / "stack-home")
    cmd = [python, __file__, "--worker", kind, "--model-dir", str(model_dir), "--threads", str(threads),
           "--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"error": f"worker exited with {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def default_reference_python() -> Optional[str]:
    candidate = Path.home() / ".cache/lsrs-baseline/venv/bin/python"
    return str(candidate) if candidate.exists() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=Path.home() / ".cache/lsrs/models/prompt-guard-bench")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ours-python", default=sys.executable)
    ap.add_argument("--reference-python", default=default_reference_python(),
                    help="interpreter with transformers and torch; 'none' to skip")
    ap.add_argument("--worker", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        if args.worker == "ours":
            out = worker_ours(str(args.model_dir), args.repeats)
        else:
            out = worker_reference(str(args.model_dir), args.repeats, int(args.threads))
        print(json.dumps(out))
        return 0

    if not (args.model_dir / "model.safetensors").is_file():
        write_model(args.model_dir)
    (args.model_dir / "stack-home").mkdir(exist_ok=True)
    ref_python = None if args.reference_python in (None, "none") else args.reference_python
    print(f"model: {args.model_dir} (Prompt-Guard-86M's dimensions, random weights)\nours: {args.ours_python}\n"
          f"reference: {ref_python or 'skipped'}\nms per classification: median of {args.repeats} after a warm-up\n")

    labels = list(TEXTS)
    header = ("engine", "threads", "load s", *(f"ms: {label}" for label in labels), "max |Δp| to reference")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for threads in (int(t) for t in args.threads.split(",")):
        ours = run_worker(args.ours_python, "ours", args.model_dir, threads, args.repeats)
        ref = run_worker(ref_python, "reference", args.model_dir, threads, args.repeats) if ref_python else None
        for res in (ours, ref):
            if res is None:
                continue
            if "error" in res:
                print(f"| {res.get('engine', '?')} | {threads} | {res['error']} |")
                continue
            diff = ""
            if res is ours and ref and "probs" in ref:
                diff = f"{max(abs(a - b) for l in labels for a, b in zip(ours['probs'][l], ref['probs'][l])):.2e}"
            cells = [f"{res['ms'][label]:.1f}" for label in labels]
            print(f"| {res['engine']} | {threads} | {res['load_s']:.2f} | " + " | ".join(cells) + f" | {diff} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
