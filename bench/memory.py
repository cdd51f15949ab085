#!/usr/bin/env python3
"""Memory banks side by side: servers already running (this project's, upstream 0.0.41 with its
faiss provider), the same documents and queries for each, one after the other in one run.

    python bench/memory.py --target ours=http://127.0.0.1:15001 --target upstream=http://127.0.0.1:15000 \\
        --embedding-model upstream=$HF_HOME/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/REV \\
        [--docs 10000] [--large ours=100000] [--index-wait ours=600] [--batch 100] [--queries 200] \
        [--provider-id faiss0]

Per target:
- insert `--docs` short documents (one chunk each) into a new vector bank, in batches of
  `--batch`: documents/s (a first one-document insert loads the model and is reported apart;
  that document stays in the bank, one chunk more than the count);
- when the target serves the bank's model on `/inference/embeddings`: the same texts in the same
  batches through it alone (texts/s), and insert rate / embedding rate: the share the rest of
  the insert path (chunking, index, storage) leaves;
- `--queries` queries at one client (`max_chunks` 10): p50 / p99 latency, the embedding of the
  query included; and recall@10 against exact search: the vectors of every document and query
  (from `/inference/embeddings`, one query at a time as the bank embeds it) ranked by cosine
  with numpy; a returned document counts when its exact similarity reaches the 10th best (so a
  tie is no miss);
- `--large NAME=N`: then grow that target's bank to N documents and measure queries again.

A bank over the server's exact-search limit is answered by an approximate index that is built
in the background after its first query; until it is ready queries are exact (and slower). So
with `--index-wait NAME=SECONDS`, before measuring, the script sends a query every few seconds
until the latency falls below a third of the first one, for at most that long, and reports how
long that took.

Needs numpy for recall (run it with an interpreter that has it, e.g. the upstream venv);
standard library otherwise. Only ratios within one run mean anything on a shared machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse
import uuid
from typing import Any, Dict, List, Optional, Tuple

SUBJECTS = (
    "The old fisherman", "A young engineer", "My grandmother", "The city council", "A tired nurse", "The new teacher",
    "A curious child", "The night guard", "Our neighbour", "The head chef", "A quiet librarian", "The football coach",
    "A travelling salesman", "The museum curator", "A retired pilot", "The village baker", "A street musician",
    "The company lawyer", "A forest ranger", "The ship captain", "A data analyst", "The hotel manager",
    "A mountain guide", "The bus driver", "A local farmer", "The school principal", "A famous painter",
    "The train conductor", "A young doctor", "The park gardener", "A software tester", "The radio host",
    "A careful surgeon", "The market vendor", "A nervous student", "The tax inspector", "A wildlife photographer",
    "The postman", "A beekeeper", "The harbour master",
)
VERBS = (
    "repaired", "painted", "sold", "photographed", "described", "carried", "cleaned", "inspected", "forgot",
    "borrowed", "ordered", "measured", "hid", "found", "built", "delivered", "returned", "tested", "counted",
    "studied", "moved", "replaced", "opened", "locked", "weighed", "packed", "mended", "shared", "stole",
    "designed", "polished", "recorded", "translated", "checked", "planted", "cooked", "wrapped", "lifted",
    "sketched", "examined",
)
OBJECTS = (
    "a wooden boat", "the broken radio", "an old map", "three baskets of apples", "the red bicycle",
    "a stack of letters", "the kitchen table", "a silver watch", "the garden fence", "a box of tools",
    "the school bus", "a heavy suitcase", "the church bell", "a pair of boots", "the office printer",
    "a jar of honey", "the front door", "a small telescope", "the wedding cake", "a bag of flour",
    "the violin case", "a stone statue", "the fishing nets", "a bottle of wine", "the train schedule",
    "a blue umbrella", "the hospital beds", "a wool blanket", "the solar panels", "a set of keys",
    "the library books", "a leather wallet", "the tractor engine", "a glass vase", "the flower pots",
    "a paper lantern", "the water pump", "a birthday card", "the chess board", "a copper kettle",
)
PLACES = (
    "near the harbour", "in the village square", "behind the station", "at the farmers market", "in a quiet museum",
    "on the top floor", "beside the river", "in the old factory", "at the airport", "inside the cathedral",
    "on a crowded beach", "in the school yard", "at the mountain hut", "in the hospital basement",
    "outside the town hall", "on the night train", "in a small bakery", "at the football stadium",
    "in the botanical garden", "on the ferry", "at the border crossing", "in the city library",
    "under the bridge", "in a rented garage", "at the ski resort", "in the police station", "on the rooftop",
    "in the vineyard", "at the bus depot", "in a noisy cafe", "by the lighthouse", "in the concert hall",
    "at the science fair", "in the army barracks", "on the island", "in the desert camp", "at the zoo",
    "in the courtroom", "near the castle", "in the greenhouse",
)
TIMES = (
    "at dawn", "last winter", "on Monday", "after the storm", "before lunch", "during the festival",
    "late at night", "in early spring", "yesterday", "every Sunday", "after the election", "during the holidays",
    "at sunset", "on a rainy afternoon", "before the exam", "in the summer of 1998", "after midnight",
    "during the strike", "this morning", "at the end of the war", "on her birthday", "before the flood",
    "during the concert", "in the dry season", "on the first day of school", "after the harvest",
    "in the middle of the night", "before the wedding", "during the blackout", "on New Year's Eve",
    "at noon", "after the match", "in autumn", "during the heatwave", "on a foggy morning",
    "before the inspection", "after the funeral", "during the meeting", "on his last day", "at closing time",
)


class Lcg:
    """Deterministic numbers without the random module's version dependence."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def pick(self, items: Tuple[str, ...]) -> str:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return items[(self.state >> 33) % len(items)]


def sentences(n: int, seed: int) -> List[str]:
    rng = Lcg(seed)
    return [f"{rng.pick(SUBJECTS)} {rng.pick(VERBS)} {rng.pick(OBJECTS)} {rng.pick(PLACES)} {rng.pick(TIMES)}."
            for _ in range(n)]


class Client:
    """One keep-alive HTTP/1.1 connection (standard library), JSON in and out."""

    def __init__(self, base: str, timeout: float = 1200.0) -> None:
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.timeout = u.hostname or "127.0.0.1", u.port or 80, timeout
        self.conn: Optional[http.client.HTTPConnection] = None

    def post(self, path: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        data = json.dumps(body).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", path, data, {"Content-Type": "application/json"})
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, raw.decode(errors="replace")
        raise RuntimeError("unreachable")

    def ok(self, path: str, body: Dict[str, Any]) -> Any:
        status, out = self.post(path, body)
        if status != 200:
            raise SystemExit(f"{path} -> HTTP {status}: {str(out)[:400]}")
        return out


def pct(sorted_ms: List[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p))]


class Target:
    def __init__(self, name: str, url: str, model: str, provider_id: Optional[str], batch: int) -> None:
        self.name, self.c, self.model, self.batch = name, Client(url), model, batch
        self.bank = f"bench_{name}_{uuid.uuid4().hex[:6]}"
        body: Dict[str, Any] = {"identifier": self.bank, "type": "vector", "embedding_model": model,
                                "chunk_size_in_tokens": 512, "overlap_size_in_tokens": 64}
        if provider_id:
            body["provider_id"] = provider_id
        self.c.ok("/memory_banks/register", {"memory_bank": body})
        self.count = 0
        self.vectors: List[List[float]] = []

    def insert(self, texts: List[str]) -> float:
        """Inserts `texts` (documents numbered on from the bank's count); returns documents/s."""
        started = time.perf_counter()
        for i in range(0, len(texts), self.batch):
            docs = [{"document_id": f"doc-{self.count + j}", "content": t, "mime_type": "text/plain",
                     "metadata": {"n": self.count + j}} for j, t in enumerate(texts[i:i + self.batch], start=i)]
            self.c.ok("/memory/insert", {"bank_id": self.bank, "documents": docs})
        rate = len(texts) / (time.perf_counter() - started)
        self.count += len(texts)
        return rate

    def serves_embeddings(self) -> bool:
        status, _ = self.c.post("/inference/embeddings", {"model": self.model, "contents": ["probe"]})
        return status == 200

    def embed(self, texts: List[str], batch: int) -> Tuple[List[List[float]], float]:
        out: List[List[float]] = []
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            out.extend(self.c.ok("/inference/embeddings", {"model": self.model, "contents": texts[i:i + batch]})["embeddings"])
        return out, len(texts) / (time.perf_counter() - started)

    def query(self, text: str) -> Tuple[float, List[str]]:
        t0 = time.perf_counter()
        r = self.c.ok("/memory/query", {"bank_id": self.bank, "query": text, "params": {"max_chunks": 10}})
        ms = (time.perf_counter() - t0) * 1000
        return ms, [c["document_id"] for c in r["chunks"]]

    def settle(self, probe: str, wait: float) -> float:
        """Waits (at most `wait` s) for a background index: see the module docstring."""
        first, _ = self.query(probe)
        started = time.perf_counter()
        while time.perf_counter() - started < wait:
            time.sleep(3)
            ms = min(self.query(probe)[0] for _ in range(3))
            if ms < first / 3:
                break
        return time.perf_counter() - started


def recall_at_10(vectors: List[List[float]], queries: List[List[float]], answers: List[List[str]]) -> Optional[float]:
    try:
        import numpy as np
    except ImportError:
        return None
    docs = np.asarray(vectors, dtype=np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    found = 0
    for q, got in zip(queries, answers):
        qv = np.asarray(q, dtype=np.float32)
        sims = docs @ (qv / np.linalg.norm(qv))
        kth = np.partition(sims, -10)[-10]
        found += sum(1 for d in got[:10] if d.startswith("doc-") and sims[int(d[4:])] >= kth - 1e-5)
    return found / (10 * len(queries))


def measure_queries(t: Target, queries: List[str], row: Dict[str, Any], label: str, wait: float) -> None:
    if wait > 0:
        row[f"{label}: waited for the index (s)"] = t.settle(queries[0], wait)
    for q in queries[:5]:
        t.query(q)
    lat, answers = [], []
    for q in queries:
        ms, ids = t.query(q)
        lat.append(ms)
        answers.append(ids)
    lat.sort()
    row[f"{label}: query p50 (ms)"] = statistics.median(lat)
    row[f"{label}: query p99 (ms)"] = pct(lat, 0.99)
    if t.vectors:
        qvecs = [t.embed([q], 1)[0][0] for q in queries]
        row[f"{label}: recall@10 vs exact"] = recall_at_10(t.vectors, qvecs, answers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", action="append", required=True, help="NAME=URL; repeat")
    ap.add_argument("--embedding-model", action="append", default=[],
                    help="NAME=MODEL: the bank's embedding_model for that target (default all-MiniLM-L6-v2)")
    ap.add_argument("--large", action="append", default=[], help="NAME=N: grow that target's bank to N documents")
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--provider-id", default=None)
    ap.add_argument("--index-wait", action="append", default=[],
                    help="NAME=SECONDS: longest wait for that target's approximate index (default 0: no wait)")
    a = ap.parse_args()

    models = dict(m.split("=", 1) for m in a.embedding_model)
    large = {k: int(v) for k, v in (x.split("=", 1) for x in a.large)}
    waits = {k: float(v) for k, v in (x.split("=", 1) for x in a.index_wait)}
    texts = sentences(max([a.docs] + list(large.values())), seed=1)
    queries = sentences(a.queries, seed=2)
    results: Dict[str, Dict[str, Any]] = {}
    for spec in a.target:
        name, url = spec.split("=", 1)
        t = Target(name, url, models.get(name, "all-MiniLM-L6-v2"), a.provider_id, a.batch)
        row = results.setdefault(name, {})
        print(f"[{name}] bank {t.bank}: first insert (loads the model)…", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        t.c.ok("/memory/insert", {"bank_id": t.bank, "documents": [{"document_id": "warm", "content": "warm up"}]})
        row["first insert, model load (s)"] = time.perf_counter() - t0
        print(f"[{name}] inserting {a.docs} documents…", file=sys.stderr, flush=True)
        row[f"insert {a.docs} docs (docs/s)"] = t.insert(texts[:a.docs])
        if t.serves_embeddings():
            t.vectors, rate = t.embed(texts[:a.docs], a.batch)
            row["/inference/embeddings, same texts and batches (texts/s)"] = rate
            row["insert rate / embedding rate"] = row[f"insert {a.docs} docs (docs/s)"] / rate
        print(f"[{name}] querying at {t.count} documents…", file=sys.stderr, flush=True)
        measure_queries(t, queries, row, f"{t.count} chunks", waits.get(name, 0.0))
        if name in large and large[name] > t.count:
            more = texts[t.count:large[name]]
            print(f"[{name}] inserting {len(more)} more…", file=sys.stderr, flush=True)
            row[f"insert {len(more)} more docs (docs/s)"] = t.insert(more)
            if t.vectors:
                extra, _ = t.embed(more, a.batch)
                t.vectors.extend(extra)
            print(f"[{name}] querying at {t.count} documents…", file=sys.stderr, flush=True)
            measure_queries(t, queries, row, f"{t.count} chunks", waits.get(name, 0.0))
        print(f"[{name}] {json.dumps(row)}", file=sys.stderr, flush=True)

    names = list(results)
    measures: List[str] = []
    for r in results.values():
        measures.extend(m for m in r if m not in measures)
    print("| measure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for m in measures:
        cells = []
        for n in names:
            v = results[n].get(m)
            cells.append("—" if v is None else f"{v:.3f}" if isinstance(v, float) and v < 10 else
                         f"{v:,.1f}" if isinstance(v, float) else str(v))
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(json.dumps(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
