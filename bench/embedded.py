#!/usr/bin/env python3
"""Embedded generation speed: our `embedded` provider against llama.cpp's Python binding
(llama-cpp-python) on the same GGUF file and thread count, side by side in one run.

    python bench/embedded.py [--gguf FILE] [--threads 1,2] [--repeats 3] [--rounds 2]
                             [--gen-tokens 128] [--ours-python PY] [--llamacpp-python PY]

Each measurement runs in a fresh worker process (so load time is a cold load from the page
cache and RSS is the process's own); the engines alternate, `--rounds` workers per engine and
thread count. A worker loads the model, then runs `--repeats` greedy completions of one fixed
prompt (~225 tokens) for exactly `--gen-tokens` tokens (the answer must end on the token limit;
a completion that stops early is reported as an error rather than timed), streamed:

  prompt tok/s      prompt tokens / time to the first streamed token (prompt evaluation, plus
                    one decode step, on both sides alike)
  generation tok/s  (gen tokens - 1) / time from the first to the last streamed token

Ours is driven through the public in-process API (`LlamaStack(...).inference.completion(...,
stream=True)`), so the numbers include our request handling and streaming, not just llama.cpp.
The median over repeats is kept per worker, and the median over workers is printed.

`--ours-python` needs our wheel from a release build (`maturin build --release`);
`--llamacpp-python` needs `llama-cpp-python` (its pip build compiles llama.cpp: minutes).
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

MODEL_ID = "SmolLM2-135M-Instruct"

# A plain-text prompt (no chat template, so both sides feed the same tokens) that a small model
# keeps continuing rather than ending.
PROMPT = (
    "The following is a long, detailed report about the history of the river towns in the northern valley. "
    "It covers the founding of each town, the trade routes that connected them, the bridges and mills that "
    "were built over the centuries, the floods that shaped them, and the families who lived there. "
    "Chapter one describes the oldest settlement, a small fishing village at the mouth of the river, where "
    "the first wooden houses were raised on stilts above the marsh. The villagers traded dried fish, salt "
    "and reeds with the farmers of the upper valley, who sent grain, wool and timber down the river on "
    "flat boats every spring. Over time the village grew into a market town with a stone church, a guild "
    "hall and a harbour wall. Chapter two follows the river upstream to the second town, which grew around "
    "a ford where the old road crossed the water. Its story begins"
)


def default_gguf() -> Path:
    """The model cache's copy (`llama model download`), else the test suite's shared cache."""
    bases = [os.environ.get("LLAMA_STACK_CONFIG_DIR") or os.path.expanduser("~/.llama"),
             os.environ.get("LSRS_MODEL_CACHE") or os.path.expanduser("~/.cache/lsrs/models")]
    paths = [Path(b) / "checkpoints" / MODEL_ID / f"{MODEL_ID}.Q4_1.gguf" for b in bases]
    return next((p for p in paths if p.is_file()), paths[0])


def max_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- workers (run in a child process) -------------------------------------------------------


def _summary(load: float, runs: List[Dict[str, float]], prompt_tokens: Optional[int]) -> Dict[str, Any]:
    ttft = statistics.median(r["ttft"] for r in runs)
    gen = statistics.median(r["gen_rate"] for r in runs)
    out: Dict[str, Any] = {"load_s": load, "ttft_s": ttft, "gen_tok_s": gen, "rss_mib": max_rss_mib()}
    if prompt_tokens:
        out["prompt_tokens"] = prompt_tokens
        out["prompt_tok_s"] = prompt_tokens / ttft
    return out


def worker_llamacpp(gguf: str, threads: int, repeats: int, gen_tokens: int) -> Dict[str, Any]:
    from llama_cpp import Llama

    t0 = time.perf_counter()
    llm = Llama(model_path=gguf, n_threads=threads, n_threads_batch=threads, n_ctx=1024, n_batch=512, verbose=False)
    load = time.perf_counter() - t0
    prompt_tokens = len(llm.tokenize(PROMPT.encode(), add_bos=True))
    runs = []
    for _ in range(repeats):
        llm.reset()  # no prompt cache between repeats: each one evaluates the whole prompt
        t0 = time.perf_counter()
        first = last = None
        count = 0
        finish = None
        for part in llm.create_completion(PROMPT, max_tokens=gen_tokens, temperature=0.0, top_k=1, stream=True):
            now = time.perf_counter()
            choice = part["choices"][0]
            if choice.get("text"):
                count += 1
                first = first or now
                last = now
            finish = choice.get("finish_reason") or finish
        if finish != "length":
            raise SystemExit(f"llama.cpp stopped early ({finish}) after {count} pieces")
        runs.append({"ttft": first - t0, "gen_rate": (gen_tokens - 1) / (last - first)})
    return _summary(load, runs, prompt_tokens)


def worker_ours(gguf: str, threads: int, repeats: int, gen_tokens: int, prompt_tokens: Optional[int]) -> Dict[str, Any]:
    import asyncio

    from llama_stack.distribution.stack import LlamaStack

    config = {
        "version": "2",
        "image_name": "bench",
        "apis": ["inference"],
        "providers": {
            "inference": [
                {
                    "provider_id": "embedded",
                    "provider_type": "embedded",
                    "config": {"model": gguf, "embedding_model": "", "threads": threads, "context_length": 1024},
                }
            ]
        },
    }

    async def main() -> Dict[str, Any]:
        t0 = time.perf_counter()
        stack = await LlamaStack.create(config)
        models = await stack.models.list_models()
        load = time.perf_counter() - t0
        model = models[0].identifier
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            first = last = None
            stop = None
            stream = stack.inference.completion(
                model=model,
                content=PROMPT,
                sampling_params={"strategy": "greedy", "max_tokens": gen_tokens},
                stream=True,
            )
            async for chunk in stream:
                now = time.perf_counter()
                if chunk.delta:
                    first = first or now
                    last = now
                stop = chunk.stop_reason or stop
            if str(getattr(stop, "value", stop)) != "out_of_tokens":
                raise SystemExit(f"ours stopped early ({stop})")
            runs.append({"ttft": first - t0, "gen_rate": (gen_tokens - 1) / (last - first)})
        await stack.close()
        return _summary(load, runs, prompt_tokens)

    return asyncio.run(main())


# --- driver ---------------------------------------------------------------------------------


def run_worker(python: str, engine: str, args: argparse.Namespace, threads: int, prompt_tokens: Optional[int]) -> Dict[str, Any]:
    cmd = [python, __file__, "--worker", engine, "--gguf", str(args.gguf), "--threads", str(threads),
           "--repeats", str(args.repeats), "--gen-tokens", str(args.gen_tokens)]
    if prompt_tokens:
        cmd += ["--prompt-tokens", str(prompt_tokens)]
    env = dict(os.environ, LLAMA_STACK_LOG=os.environ.get("LLAMA_STACK_LOG", "warn"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def has_module(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def median_of(results: List[Dict[str, Any]], key: str) -> Optional[float]:
    vals = [r[key] for r in results if key in r]
    return statistics.median(vals) if vals else None


def fmt(v: Optional[float], spec: str) -> str:
    return "—" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=default_gguf())
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="worker processes per engine and thread count")
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ours-python", default=os.path.expanduser("~/.cache/lsrs/bench-venv/bin/python"))
    ap.add_argument("--llamacpp-python", default=os.path.expanduser("~/.cache/lsrs/llamacpp-venv/bin/python"))
    ap.add_argument("--worker", choices=["ours", "llamacpp"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        threads = int(args.threads)
        if args.worker == "llamacpp":
            out = worker_llamacpp(str(args.gguf), threads, args.repeats, args.gen_tokens)
        else:
            out = worker_ours(str(args.gguf), threads, args.repeats, args.gen_tokens, args.prompt_tokens)
        print(json.dumps(out))
        return

    if not args.gguf.is_file():
        raise SystemExit(f"{args.gguf} not found: run `llama model download --model-id {MODEL_ID}` first")
    engines = []
    if has_module(args.ours_python, "llama_stack._core"):
        engines.append(("ours", args.ours_python))
    else:
        print(f"ours: {args.ours_python} has no llama_stack._core; skipped", file=sys.stderr)
    if has_module(args.llamacpp_python, "llama_cpp"):
        engines.append(("llamacpp", args.llamacpp_python))
    else:
        print(f"llama.cpp: {args.llamacpp_python} has no llama_cpp; skipped", file=sys.stderr)

    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        results: Dict[str, List[Dict[str, Any]]] = {name: [] for name, _ in engines}
        prompt_tokens = args.prompt_tokens
        for rnd in range(args.rounds):
            # llama.cpp first: it reports the prompt's token count, which ours uses too (same file,
            # same tokenizer, same beginning-of-text token).
            for name, python in sorted(engines, key=lambda e: e[0] != "llamacpp"):
                r = run_worker(python, name, args, threads, prompt_tokens)
                print(f"threads={threads} round={rnd + 1} {name}: {r}", file=sys.stderr)
                results[name].append(r)
                prompt_tokens = prompt_tokens or r.get("prompt_tokens")
        rows.append((threads, results))

    print(f"\nEmbedded generation, {args.gguf.name}: {args.gen_tokens} greedy tokens after a "
          f"{prompt_tokens or '?'}-token prompt; median of {args.rounds} workers x {args.repeats} runs\n")
    print("| threads | engine | load (s) | prompt tok/s | generation tok/s | RSS (MiB) | errors |")
    print("|---|---|---|---|---|---|---|")
    for threads, results in rows:
        for name, rs in results.items():
            ok = [r for r in rs if "error" not in r]
            errs = len(rs) - len(ok)
            label = "ours (embedded)" if name == "ours" else "llama.cpp (llama-cpp-python)"
            print(f"| {threads} | {label} | {fmt(median_of(ok, 'load_s'), '.3f')} | {fmt(median_of(ok, 'prompt_tok_s'), '.0f')} "
                  f"| {fmt(median_of(ok, 'gen_tok_s'), '.1f')} | {fmt(median_of(ok, 'rss_mib'), '.0f')} | {errs} |")
        ours = median_of([r for r in results.get("ours", []) if "error" not in r], "gen_tok_s")
        ref = median_of([r for r in results.get("llamacpp", []) if "error" not in r], "gen_tok_s")
        if ours and ref:
            pours = median_of(results["ours"], "prompt_tok_s")
            pref = median_of(results["llamacpp"], "prompt_tok_s")
            prompt_ratio = f"{pours / pref:.0%}" if pours and pref else "—"
            print(f"| {threads} | **ours / llama.cpp** | | **{prompt_ratio}** | **{ours / ref:.0%}** | | |")

if __name__ == "__main__":
    main()
