"""`remote::pgvector` through the official client: two `llama stack run` processes, each with its
own registration store, on one PostgreSQL with pgvector serve the same banks and documents.

PostgreSQL comes from the `pgserver` wheel (`$LSRS_PGVECTOR_BIN`, its `pginstall/bin`, set by
scripts/test.sh); without it the test is skipped, except under `CI=true`, where it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest
from llama_stack_client import LlamaStackClient

from conftest import free_port
from test_memory import EMBED_MODEL, home, minilm  # noqa: F401  (fixtures)

PASSWORD = "pgvector-py-secret"


def _pg_bin() -> Path:
    value = os.environ.get("LSRS_PGVECTOR_BIN", "")
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail("LSRS_PGVECTOR_BIN is not set: scripts/test.sh points it at the pgserver wheel's pginstall/bin")
        pytest.skip("LSRS_PGVECTOR_BIN is not set (a PostgreSQL bin directory whose server has pgvector)")
    return Path(value)


def _server_user() -> List[str]:
    """postgres refuses to run as root: then it runs as `postgres` or `nobody`, through setpriv."""
    if os.geteuid() != 0:
        return []
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"]
    pytest.fail("running as root with neither a `postgres` nor a `nobody` user to run PostgreSQL as")


@pytest.fixture
def postgres() -> Iterator[int]:
    """A PostgreSQL with pgvector on a free loopback port; yields the port."""
    bin_dir = _pg_bin()
    run_as = _server_user()
    work = Path(tempfile.mkdtemp(prefix="lsrs-pgv-"))
    if run_as:
        # The server's user may not reach the wheel under /root: copy the installation (and the
        # libraries its RPATH names, `../../../pgserver.libs`) into a directory it owns.
        install, package = bin_dir.parent, bin_dir.parent.parent
        dest = work / "site" / package.name / install.name
        shutil.copytree(install, dest, symlinks=True)
        libs = package.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, work / "site" / "pgserver.libs", symlinks=True)
        bin_dir = dest / "bin"
    (work / "pwfile").write_text(PASSWORD)
    if run_as:
        owner = run_as[1].split("=")[1]
        subprocess.run(["chown", "-R", owner, str(work)], check=True)
        work.chmod(0o755)
    subprocess.run(
        run_as + [str(bin_dir / "initdb"), "-D", str(work / "data"), "-U", "llama", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", f"--pwfile={work / 'pwfile'}"],
        check=True, capture_output=True, cwd=work,
    )
    port = free_port()
    log = open(work / "postgres.log", "w")
    proc = subprocess.Popen(
        run_as + [str(bin_dir / "postgres"), "-D", str(work / "data"), "-k", str(work), "-p", str(port),
                  "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=log, stderr=subprocess.STDOUT, cwd=work,
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-d", "postgres"]).returncode != 0:
            assert proc.poll() is None, (work / "postgres.log").read_text()
            assert time.monotonic() < deadline, "postgres not ready within 60s"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def pg_config(home: Path, name: str, port: int) -> Dict[str, Any]:
    return {
        "version": "2",
        "image_name": f"pgvector-{name}",
        "apis": ["memory"],
        "providers": {
            "memory": [{
                "provider_id": "pgv",
                "provider_type": "remote::pgvector",
                "config": {"host": "127.0.0.1", "port": port, "db": "postgres", "user": "llama", "password": PASSWORD},
            }],
        },
        # Each process its own registration store: what they share is PostgreSQL.
        "metadata_store": {"type": "sqlite", "db_path": str(home / f"registry-{name}.db")},
    }


def wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.2)


def test_two_servers_on_one_pgvector_database(home: Path, server, postgres: int) -> None:  # noqa: F811
    one = server(pg_config(home, "one", postgres))
    two = server(pg_config(home, "two", postgres))
    c1, c2 = LlamaStackClient(base_url=one.url), LlamaStackClient(base_url=two.url)

    c1.memory_banks.register(
        memory_bank={"identifier": "shared", "embedding_model": EMBED_MODEL, "chunk_size_in_tokens": 64}
    )
    c1.memory.insert(
        bank_id="shared",
        documents=[
            {"document_id": "cats", "content": "Cats purr and sleep in the sun for most of the day."},
            {"document_id": "rust", "content": "Rust prevents data races with ownership and borrowing."},
            {"document_id": "paris", "content": "Paris is the capital of France, on the Seine."},
        ],
    )
    r = c1.memory.query(bank_id="shared", query="Which animal purrs?", params={"max_chunks": 2})
    assert [c.document_id for c in r.chunks][0] == "cats"
    assert len(r.scores) == 2 and r.scores[0] > r.scores[1]

    # The other process lists the bank (read from PostgreSQL) and answers from the same documents.
    wait_for(lambda: "shared" in [b.identifier for b in c2.memory_banks.list()], "the bank is listed by the second server")
    bank = c2.memory_banks.retrieve(identifier="shared")
    assert bank.provider_id == "pgv" and bank.embedding_model == EMBED_MODEL
    r2 = c2.memory.query(bank_id="shared", query="Which animal purrs?", params={"max_chunks": 2})
    assert [c.document_id for c in r2.chunks] == [c.document_id for c in r.chunks]
    assert r2.scores == pytest.approx(r.scores, abs=1e-5)
    r2 = c2.memory.query(bank_id="shared", query="capital city of France", params={"max_chunks": 1})
    assert [c.document_id for c in r2.chunks] == ["paris"] and "Seine" in r2.chunks[0].content

    # A document deleted on one is gone on the other; inserted on the second, found on the first.
    c2.memory.documents.delete(bank_id="shared", document_ids=["cats"])
    r = c1.memory.query(bank_id="shared", query="Which animal purrs?", params={"max_chunks": 10})
    assert {c.document_id for c in r.chunks} == {"rust", "paris"}
    c2.memory.insert(bank_id="shared", documents=[{"document_id": "dogs", "content": "Dogs bark at the postman."}])
    r = c1.memory.query(bank_id="shared", query="barking dog", params={"max_chunks": 1})
    assert [c.document_id for c in r.chunks] == ["dogs"]

    # Bad input on either process: a 4xx naming what is wrong, and nothing changed.
    h = httpx.Client(base_url=two.url, timeout=60)
    before = c1.memory.query(bank_id="shared", query="anything", params={"max_chunks": 100})
    resp = h.post("/memory/insert", json={"bank_id": "shared", "documents": [
        {"document_id": "fine", "content": "fine"}, {"document_id": "bad", "content": {"uri": "file:///etc/passwd"}}]})
    assert resp.status_code == 400 and "`bad`" in resp.text, resp.text
    resp = h.post("/memory/update", json={"bank_id": "shared", "documents": [{"document_id": "ghost", "content": "x"}]})
    assert resp.status_code == 400 and "ghost" in resp.text, resp.text
    resp = h.post("/memory_banks/register", json={"memory_bank": {"identifier": "kw", "type": "keyword"}})
    assert resp.status_code == 400 and "kw" in resp.text, resp.text
    after = c1.memory.query(bank_id="shared", query="anything", params={"max_chunks": 100})
    assert [c.document_id for c in after.chunks] == [c.document_id for c in before.chunks]

    # Dropping the bank on one process deletes it with its documents; the other, which may still
    # know it for a while, finds nothing in it and cannot bring it back with an insert.
    # The route answers the id as JSON, as every route does; the client of the era, typed `str`,
    # hands back the body's text unparsed.
    assert json.loads(c1.memory.drop(bank_id="shared")) == "shared"
    assert "shared" not in [b.identifier for b in c1.memory_banks.list()]
    resp = h.post("/memory/query", json={"bank_id": "shared", "query": "anything", "params": {"max_chunks": 10}})
    assert (resp.status_code == 200 and resp.json()["chunks"] == []) or (
        resp.status_code == 400 and "not registered" in resp.text
    ), resp.text
    resp = h.post("/memory/insert", json={"bank_id": "shared", "documents": [{"document_id": "late", "content": "x"}]})
    assert resp.status_code == 400 and "shared" in resp.text, resp.text
