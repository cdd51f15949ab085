#!/usr/bin/env python3
"""Memory bank throughput of a running server: insert N short documents in batches into a new
vector bank (documents/s, and the same texts through /inference/embeddings alone when the
server serves the model, for the share of time the index and storage take), then query latency
(p50/p99) with one client.

    python bench/memory.py --url http://127.0.0.1:5000 [--docs 10000] [--batch 100] [--queries 200]

Prints a markdown table. Uses only the standard library plus httpx.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import httpx

WORDS = (
    "river mountain engine kernel socket garden violin planet harbor lantern copper meadow quartz "
    "signal thunder orchard glacier canyon ember falcon prism compass velvet summit beacon"
).split()


def sentence(i: int) -> str:
    w = [WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(12)]
    return f"Document {i}: " + " ".join(w) + "."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embedding-model", default="all-MiniLM-L6-v2")
    a = ap.parse_args()
    c = httpx.Client(base_url=a.url, timeout=600)
    bank = f"bench-{uuid.uuid4().hex[:8]}"
    r = c.post("/memory_banks/register", json={"memory_bank": {
        "identifier": bank, "type": "vector", "embedding_model": a.embedding_model, "chunk_size_in_tokens": 512}})
    r.raise_for_status()
    texts = [sentence(i) for i in range(a.docs)]
    started = time.perf_counter()
    for i in range(0, len(texts), a.batch):
        docs = [{"document_id": f"d{j}", "content": t} for j, t in enumerate(texts[i:i + a.batch], start=i)]
        c.post("/memory/insert", json={"bank_id": bank, "documents": docs}).raise_for_status()
    insert_s = time.perf_counter() - started

    embed_rate = None
    if c.post("/inference/embeddings", json={"model": a.embedding_model, "contents": ["x"]}).status_code == 200:
        started = time.perf_counter()
        for i in range(0, len(texts), a.batch):
            c.post("/inference/embeddings", json={"model": a.embedding_model, "contents": texts[i:i + a.batch]})
        embed_rate = len(texts) / (time.perf_counter() - started)

    lat = []
    for i in range(a.queries):
        t = time.perf_counter()
        c.post("/memory/query", json={"bank_id": bank, "query": sentence(i * 31 + 5), "params": {"max_chunks": 10}}).raise_for_status()
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]

    print(f"| measure ({a.docs} docs, batch {a.batch}) | value |")
    print("|---|---|")
    print(f"| insert (docs/s) | {a.docs / insert_s:.1f} |")
    if embed_rate:
        print(f"| /inference/embeddings alone (texts/s) | {embed_rate:.1f} |")
        print(f"| insert rate / embedding rate | {a.docs / insert_s / embed_rate:.2f} |")
    print(f"| query p50 (ms) | {statistics.median(lat):.2f} |")
    print(f"| query p99 (ms) | {p99:.2f} |")


if __name__ == "__main__":
    main()
