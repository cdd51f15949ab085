"""The `meta-reference` memory provider end to end: banks registered through `/memory_banks`,
documents of every kind inserted and queried through the official client against
`llama stack run`, bad input answered with 4xx naming the document, and the documents kept
across a restart; then the same through the in-process `LlamaStack`.

Embeddings come from the embedded all-MiniLM-L6-v2, fetched once into the shared model cache
(`$LSRS_MODEL_CACHE`, default `~/.cache/lsrs/models`) and linked into each test's config dir.
"""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator

import httpx
import pytest
from llama_stack_client import LlamaStackClient

from conftest import free_port

EMBED_MODEL = "all-MiniLM-L6-v2"

DOCS = {
    "cats": "Cats sleep for most of the day and purr when they are content. A cat grooms its fur with its tongue.",
    "rust": "Rust is a systems programming language with ownership and borrowing that prevent data races.",
    "paris": "Paris is the capital of France; the Eiffel Tower stands on the Champ de Mars by the Seine.",
}


def _cache_root() -> Path:
    return Path(os.environ.get("LSRS_MODEL_CACHE") or Path.home() / ".cache" / "lsrs" / "models")


@pytest.fixture(scope="module")
def minilm() -> Path:
    root = _cache_root()
    env = dict(os.environ, LLAMA_STACK_CONFIG_DIR=str(root))
    proc = subprocess.run(
        [sys.executable, "-m", "llama_stack.cli.llama", "model", "download", "-m", EMBED_MODEL],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    return root / "checkpoints" / EMBED_MODEL


@pytest.fixture
def home(state_dir: Path, minilm: Path) -> Path:
    (state_dir / "checkpoints").mkdir(exist_ok=True)
    (state_dir / "checkpoints" / EMBED_MODEL).symlink_to(minilm, target_is_directory=True)
    return state_dir


def memory_config(home: Path, **provider_config: Any) -> Dict[str, Any]:
    return {
        "version": "2",
        "image_name": "memory-test",
        "apis": ["memory"],
        "providers": {
            "memory": [{"provider_id": "meta0", "provider_type": "meta-reference", "config": provider_config}],
        },
        "metadata_store": {"type": "sqlite", "db_path": str(home / "registry.db")},
    }


def hello_pdf(text: str) -> bytes:
    """A minimal one-page PDF showing `text`."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objects):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n{o}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.fixture
def local_site() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving one HTML page and one redirect."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/page.html":
                body = b"<html><body><h1>Volcanoes</h1><p>Magma rises through the crust.</p></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(302)
                self.send_header("Location", "/page.html")
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_http_banks_documents_errors_and_restart(home: Path, server, local_site: str) -> None:
    cfg = memory_config(home)
    s = server(cfg)
    client = LlamaStackClient(base_url=s.url)

    # No `type` and no `provider_id`: a vector bank on the only memory provider.
    client.memory_banks.register(
        memory_bank={"identifier": "notes", "embedding_model": EMBED_MODEL, "chunk_size_in_tokens": 64}
    )
    bank = client.memory_banks.retrieve(identifier="notes")
    assert bank.type == "vector" and bank.provider_id == "meta0"
    assert [b.identifier for b in client.memory_banks.list()] == ["notes"]

    client.memory.insert(
        bank_id="notes",
        documents=[
            {"document_id": "cats", "content": DOCS["cats"], "metadata": {"topic": "animals"}},
            {"document_id": "rust", "content": [DOCS["rust"][:40], DOCS["rust"][40:]]},
            {"document_id": "paris", "content": {"uri": data_url("text/markdown", DOCS["paris"].encode())}},
            {"document_id": "pdf", "content": {"uri": data_url("application/pdf", hello_pdf("Glaciers carve valleys of ice"))}},
        ],
    )
    r = client.memory.query(bank_id="notes", query="Which animal purrs?")
    assert len(r.chunks) == 3 == len(r.scores)  # max_chunks defaults to 3
    assert r.chunks[0].document_id == "cats"
    assert r.scores == sorted(r.scores, reverse=True)
    assert r.chunks[0].token_count > 0
    r = client.memory.query(bank_id="notes", query="capital city of France", params={"max_chunks": 1})
    assert [c.document_id for c in r.chunks] == ["paris"]
    r = client.memory.query(bank_id="notes", query="ice and valleys", params={"max_chunks": 1})
    assert r.chunks[0].document_id == "pdf" and "Glaciers" in r.chunks[0].content
    r = client.memory.query(bank_id="notes", query="purring cats", params={"max_chunks": 10, "score_threshold": 0.3})
    assert [c.document_id for c in r.chunks] == ["cats"]

    # Re-inserting a document id replaces it.
    client.memory.insert(bank_id="notes", documents=[{"document_id": "cats", "content": "Dogs bark at the postman."}])
    r = client.memory.query(bank_id="notes", query="Which animal purrs?", params={"max_chunks": 10})
    assert [c.document_id for c in r.chunks].count("cats") == 1
    assert all("purr" not in c.content for c in r.chunks)

    # Bad input: 4xx naming what is wrong, and the bank unchanged.
    h = httpx.Client(base_url=s.url, timeout=30)
    before = h.post("/memory/query", json={"bank_id": "notes", "query": "anything", "params": {"max_chunks": 100}}).json()
    for docs, needle in [
        ([{"document_id": "new", "content": "fine"}, {"document_id": "bad", "content": {"uri": f"{local_site}/page.html"}}], "bad"),
        ([{"document_id": "empty", "content": "   "}], "empty"),
        ([{"document_id": "baddata", "content": {"uri": "data:text/plain;base64,@@@"}}], "baddata"),
        ([{"document_id": "badpdf", "content": {"uri": data_url("application/pdf", b"%PDF-1.4 not really")}}], "badpdf"),
        ([{"document_id": "file", "content": {"uri": "file:///etc/passwd"}}], "file"),
    ]:
        resp = h.post("/memory/insert", json={"bank_id": "notes", "documents": docs})
        assert resp.status_code == 400, resp.text
        assert f"`{needle}`" in resp.text, resp.text
    resp = h.post("/memory/insert", json={"bank_id": "nope", "documents": [{"document_id": "a", "content": "x"}]})
    assert resp.status_code == 400 and "nope" in resp.text
    after = h.post("/memory/query", json={"bank_id": "notes", "query": "anything", "params": {"max_chunks": 100}}).json()
    assert after == before
    resp = h.post("/memory_banks/register", json={"memory_bank": {"identifier": "g", "type": "graph"}})
    assert resp.status_code == 501 and "graph" in resp.text
    resp = h.post("/memory/query", json={"bank_id": "notes", "query": "x", "params": {"max_chunks": -1}})
    assert resp.status_code == 400 and "max_chunks" in resp.text

    # Update and delete (routes beyond the 0.0.41 API).
    resp = h.post("/memory/update", json={"bank_id": "notes", "documents": [{"document_id": "ghost", "content": "x"}]})
    assert resp.status_code == 400 and "ghost" in resp.text
    assert h.post("/memory/update", json={"bank_id": "notes", "documents": [{"document_id": "rust", "content": "Go has goroutines."}]}).status_code == 200
    assert h.post("/memory/documents/delete", json={"bank_id": "notes", "document_ids": ["pdf"]}).status_code == 200
    r = client.memory.query(bank_id="notes", query="ice and valleys", params={"max_chunks": 10})
    assert {c.document_id for c in r.chunks} == {"cats", "rust", "paris"}

    # Keyword and keyvalue banks.
    client.memory_banks.register(memory_bank={"identifier": "kw", "type": "keyword"})
    client.memory.insert(bank_id="kw", documents=[{"document_id": k, "content": v} for k, v in DOCS.items()])
    r = client.memory.query(bank_id="kw", query="Eiffel Tower")
    assert [c.document_id for c in r.chunks] == ["paris"] and r.scores[0] > 0
    client.memory_banks.register(memory_bank={"identifier": "kv", "type": "keyvalue"})
    client.memory.insert(bank_id="kv", documents=[{"document_id": "greeting", "content": "hello there"}])
    r = client.memory.query(bank_id="kv", query="greeting")
    assert [c.content for c in r.chunks] == ["hello there"] and r.scores == [1.0]
    assert client.memory.query(bank_id="kv", query="missing").chunks == []

    expected = client.memory.query(bank_id="notes", query="Which animal purrs?", params={"max_chunks": 10})
    s.stop()

    # A new process on the same store serves the same banks and documents.
    s2 = server(cfg)
    client2 = LlamaStackClient(base_url=s2.url)
    assert {b.identifier for b in client2.memory_banks.list()} == {"notes", "kw", "kv"}
    again = client2.memory.query(bank_id="notes", query="Which animal purrs?", params={"max_chunks": 10})
    assert [c.document_id for c in again.chunks] == [c.document_id for c in expected.chunks]
    assert again.scores == pytest.approx(expected.scores, abs=1e-6)
    assert client2.memory.query(bank_id="kw", query="Eiffel").chunks[0].document_id == "paris"


def test_private_urls_can_be_allowed(home: Path, server, local_site: str) -> None:
    s = server(memory_config(home, allow_private_urls=True))
    client = LlamaStackClient(base_url=s.url)
    client.memory_banks.register(memory_bank={"identifier": "web", "type": "keyword"})
    # A redirect to an HTML page: its text, without markup.
    client.memory.insert(bank_id="web", documents=[{"document_id": "volcano", "content": {"uri": f"{local_site}/moved"}}])
    r = client.memory.query(bank_id="web", query="magma")
    assert r.chunks[0].document_id == "volcano"
    assert "Magma rises" in r.chunks[0].content and "<" not in r.chunks[0].content


async def test_inprocess_insert_and_query(home: Path) -> None:
    from llama_stack.apis.memory import MemoryBankDocument
    from llama_stack.apis.memory_banks import VectorMemoryBankDef
    from llama_stack.distribution.stack import LlamaStack

    async with LlamaStack(memory_config(home)) as stack:
        await stack.memory_banks.register_memory_bank(
            memory_bank=VectorMemoryBankDef(identifier="mem", embedding_model=EMBED_MODEL, chunk_size_in_tokens=512)
        )
        await stack.memory.insert_documents(
            bank_id="mem",
            documents=[MemoryBankDocument(document_id=k, content=v, metadata={}) for k, v in DOCS.items()],
        )
        r = await stack.memory.query_documents(bank_id="mem", query="borrow checker", params={"max_chunks": 2})
        assert r.chunks[0].document_id == "rust" and len(r.chunks) == 2
        with pytest.raises(ValueError, match="unknown-bank"):
            await stack.memory.query_documents(bank_id="unknown-bank", query="x")
