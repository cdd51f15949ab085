#!/usr/bin/env python3
"""Sentence-embedding throughput: the Rust core (candle BERT) against a Python reference, on
all-MiniLM-L6-v2 and batches of 64 short sentences.

    python bench/embeddings.py [--model-dir DIR] [--threads 1,2] [--repeats 5]
                               [--ours-python PY] [--reference-python PY]

Each engine runs in a fresh worker process per thread count (thread pools are sized at start:
RAYON_NUM_THREADS for ours, torch.set_num_threads / ORT intra-op threads for the reference), so
load time is a cold load. Reported: model load, sentences/s (median over repeats of one batch of
64, after one warm-up batch), and the lowest per-sentence cosine to the reference's vectors.

`--ours-python` must have our extension installed from an optimised build (`maturin build
--release`); a dev build of the tensor code is many times slower. The reference runs where
`sentence-transformers` (with CPU torch) or `onnxruntime` (with a `model.onnx` in the model
folder) imports; `~/.cache/lsrs-baseline/venv` is tried by default.
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

MODEL = "all-MiniLM-L6-v2"

SUBJECTS = ["The cat", "A llama", "My neighbour", "The committee", "An old sailor", "The river", "Each student", "The server"]
ACTIONS = [
    "sleeps on the warm windowsill.",
    "walked across the empty square at dawn.",
    "voted to postpone the decision.",
    "answers requests within a few milliseconds.",
    "is waiting near the station.",
    "dreams of distant mountains and cold lakes.",
    "laughed at the unexpected joke.",
    "counted the boats in the harbour.",
]
SENTENCES = [f"{s} {a}" for s in SUBJECTS for a in ACTIONS]


def default_model_dir() -> Path:
    base = os.environ.get("LSRS_MODEL_CACHE") or os.path.expanduser("~/.cache/lsrs/models")
    return Path(base) / "checkpoints" / MODEL


# --- workers (run in a child process) -------------------------------------------------------


def _time_batches(embed: Any, repeats: int) -> List[float]:
    embed(SENTENCES)  # warm-up: first-touch allocations, lazy kernels
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        embed(SENTENCES)
        rates.append(len(SENTENCES) / (time.perf_counter() - t0))
    return rates


def worker_ours(model_dir: str, repeats: int) -> Dict[str, Any]:
    from llama_stack import _core

    t0 = time.perf_counter()
    _core.embed_sentences(model_dir, ["load"])  # the first call per folder loads the model
    load = time.perf_counter() - t0

    def embed(texts: List[str]) -> List[List[float]]:
        return _core.embed_sentences(model_dir, texts)

    rates = _time_batches(embed, repeats)
    return {"engine": "ours (candle)", "load_s": load, "rates": rates, "vectors": embed(SENTENCES)}


def worker_reference(model_dir: str, repeats: int, threads: int) -> Dict[str, Any]:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return worker_onnx(model_dir, repeats, threads)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = SentenceTransformer(model_dir, device="cpu")
    load = time.perf_counter() - t0

    def embed(texts: List[str]) -> List[List[float]]:
        return model.encode(texts, batch_size=len(texts), normalize_embeddings=True).tolist()

    rates = _time_batches(embed, repeats)
    label = f"sentence-transformers {__import__('sentence_transformers').__version__} + torch {torch.__version__}"
    return {"engine": label, "load_s": load, "rates": rates, "vectors": embed(SENTENCES)}


def worker_onnx(model_dir: str, repeats: int, threads: int) -> Dict[str, Any]:
    onnx = Path(model_dir) / "model.onnx"
    try:
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer
    except ImportError as e:
        return {"error": f"no reference engine importable ({e})"}
    if not onnx.is_file():
        return {"error": f"onnxruntime is installed but `{onnx}` does not exist"}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    t0 = time.perf_counter()
    session = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding()
    load = time.perf_counter() - t0
    wanted = {i.name for i in session.get_inputs()}

    def embed(texts: List[str]) -> List[List[float]]:
        enc = tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
        m = mask[..., None].astype(hidden.dtype)
        pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).tolist()

    rates = _time_batches(embed, repeats)
    return {"engine": f"onnxruntime {ort.__version__}", "load_s": load, "rates": rates, "vectors": embed(SENTENCES)}


# --- driver ---------------------------------------------------------------------------------


def run_worker(python: str, kind: str, model_dir: Path, threads: int, repeats: int) -> Dict[str, Any]:
    env = dict(os.environ)
    for var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    cmd = [python, __file__, "--worker", kind, "--model-dir", str(model_dir), "--threads", str(threads),
           "--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"error": f"worker exited with {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def min_cosine(a: List[List[float]], b: List[List[float]]) -> float:
    def cos(x: List[float], y: List[float]) -> float:
        dot = sum(p * q for p, q in zip(x, y))
        return dot / ((sum(p * p for p in x) ** 0.5) * (sum(q * q for q in y) ** 0.5))

    return min(cos(x, y) for x, y in zip(a, b))


def default_reference_python() -> Optional[str]:
    candidate = Path.home() / ".cache/lsrs-baseline/venv/bin/python"
    return str(candidate) if candidate.exists() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=default_model_dir())
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ours-python", default=sys.executable)
    ap.add_argument("--reference-python", default=default_reference_python(),
                    help="interpreter with sentence-transformers or onnxruntime; 'none' to skip")
    ap.add_argument("--worker", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        threads = int(args.threads)
        if args.worker == "ours":
            out = worker_ours(str(args.model_dir), args.repeats)
        else:
            out = worker_reference(str(args.model_dir), args.repeats, threads)
        print(json.dumps(out))
        return 0

    if not (args.model_dir / "model.safetensors").is_file():
        print(f"no model in {args.model_dir}: run `cargo test --test embeddings` once (it fetches it), "
              "or pass --model-dir", file=sys.stderr)
        return 2
    ref_python = None if args.reference_python in (None, "none") else args.reference_python
    print(f"model: {args.model_dir}\nours: {args.ours_python}\nreference: {ref_python or 'skipped'}\n"
          f"batch: {len(SENTENCES)} short sentences, median of {args.repeats} after a warm-up batch\n")

    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        ours = run_worker(args.ours_python, "ours", args.model_dir, threads, args.repeats)
        ref = run_worker(ref_python, "reference", args.model_dir, threads, args.repeats) if ref_python else None
        for res in (ours, ref):
            if res is None:
                continue
            if "error" in res:
                rows.append((res.get("engine", "?"), threads, None, None, res["error"]))
                continue
            cosine = ""
            if res is ours and ref and "vectors" in ref:
                cosine = f"{min_cosine(ours['vectors'], ref['vectors']):.7f}"
            rows.append((res["engine"], threads, res["load_s"], statistics.median(res["rates"]), cosine))

    header = ("engine", "threads", "load s", "sentences/s", "min cosine to reference")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for engine, threads, load, rate, note in rows:
        load_s = f"{load:.2f}" if load is not None else "-"
        rate_s = f"{rate:.1f}" if rate is not None else "-"
        print(f"| {engine} | {threads} | {load_s} | {rate_s} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
