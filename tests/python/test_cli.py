"""The `llama` command line, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import llama_stack

PACKAGE_PARENT = Path(llama_stack.__file__).resolve().parents[1]


def _core_has(name: str) -> bool:
    try:
        from llama_stack import _core
    except ImportError:
        return False
    return hasattr(_core, name)


needs_catalogue = pytest.mark.skipif(
    not (_core_has("provider_types") and _core_has("check_run_config")),
    reason="llama_stack._core lacks provider_types/check_run_config",
)
needs_serve = pytest.mark.skipif(not _core_has("serve"), reason="llama_stack._core lacks serve")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["LLAMA_STACK_CONFIG_DIR"] = str(tmp_path / "cfg")
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), e.get("PYTHONPATH")]))
    for var in [v for v in e if v.startswith("LLAMA_STACK_") and v != "LLAMA_STACK_CONFIG_DIR"]:
        del e[var]
    return e


def llama(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llama_stack.cli.llama", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def table_rows(text: str) -> list[list[str]]:
    """Cells of a boxed table, one list per printed line (wrapped cells give extra lines)."""
    return [[c.strip() for c in line.strip()[1:-1].split("|")] for line in text.splitlines() if line.startswith("|")]


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip(), "an error must say what went wrong"


# --- help and startup -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["model"],
        ["model", "--help"],
        ["model", "list", "--help"],
        ["model", "describe", "--help"],
        ["stack"],
        ["stack", "--help"],
        ["stack", "build", "--help"],
        ["stack", "configure", "--help"],
        ["stack", "list-apis", "--help"],
        ["stack", "list-providers", "--help"],
        ["stack", "run", "--help"],
    ],
)
def test_help_on_every_level(env: dict[str, str], argv: list[str]) -> None:
    proc = llama(env, *argv)
    assert proc.returncode == 0, proc.stderr
    prog = " ".join(["llama", *[a for a in argv if not a.startswith("-")]])
    assert proc.stdout.startswith(f"usage: {prog}"), proc.stdout


def test_help_loads_nothing_heavy(env: dict[str, str]) -> None:
    script = (
        "import sys, json\n"
        "from llama_stack.cli.llama import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ['pydantic', 'llama_stack._core', 'yaml', 'llama_models']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_python_dash_m_llama_stack_is_the_cli(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "llama_stack", "stack", "list-apis"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert ["inspect"] in table_rows(proc.stdout)


def test_unknown_command_fails(env: dict[str, str]) -> None:
    assert_clean_failure(llama(env, "frobnicate"), 2)
    assert_clean_failure(llama(env, "stack", "frobnicate"), 2)
    assert_clean_failure(llama(env, "model", "describe"), 2)  # -m is required


# --- list-apis and models ---------------------------------------------------------------------


def test_list_apis(env: dict[str, str]) -> None:
    proc = llama(env, "stack", "list-apis")
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert rows[0] == ["API"]
    assert [r[0] for r in rows[1:]] == [
        "inference", "safety", "agents", "memory", "telemetry", "models", "shields", "memory_banks", "inspect",
    ]


def test_model_list_shows_featured_models(env: dict[str, str]) -> None:
    from llama_models.sku_list import all_registered_models

    proc = llama(env, "model", "list")
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert rows[0] == ["Model Descriptor", "Hugging Face Repo", "Context Length"]
    assert ["Llama3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "128K"] in rows
    assert ["Llama-Guard-2-8B", "meta-llama/Llama-Guard-2-8B", "4K"] in rows
    featured = [m.descriptor() for m in all_registered_models() if m.is_featured]
    assert [r[0] for r in rows[1:]] == featured

    everything = table_rows(llama(env, "model", "list", "--show-all").stdout)
    names = [r[0] for r in everything[1:]]
    assert names == [m.descriptor() for m in all_registered_models()] + ["Prompt-Guard-86M"]
    assert ["Llama-2-7b", "meta-llama/Llama-2-7b", "4K"] in everything


def test_model_describe(env: dict[str, str]) -> None:
    from llama_models.sku_list import resolve_model

    proc = llama(env, "model", "describe", "-m", "Llama3.1-8B-Instruct")
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert ["Model", "Llama3.1-8B-Instruct"] in rows
    assert ["Hugging Face ID", "meta-llama/Llama-3.1-8B-Instruct"] in rows
    assert ["Context Length", "128K tokens"] in rows
    assert ["Weights format", "bf16"] in rows
    # Multi-line cells: join the right-hand column of each labelled block back into JSON.
    blocks: dict[str, str] = {}
    label = ""
    for left, right in rows:
        label = left or label
        blocks[label] = blocks.get(label, "") + right
    model = resolve_model("Llama3.1-8B-Instruct")
    assert model is not None
    assert json.loads(blocks["Model params.json"]) == model.arch_args
    sampling = json.loads(blocks["Recommended sampling params"])
    assert sampling == {"strategy": "top_p", "temperature": 1.0, "top_p": 0.9, "top_k": 0}


def test_model_describe_unknown_model(env: dict[str, str]) -> None:
    proc = llama(env, "model", "describe", "-m", "Llama9-1T")
    assert_clean_failure(proc, 1)
    assert "Llama9-1T" in proc.stderr and proc.stdout == ""


# --- list-providers ---------------------------------------------------------------------------


def test_list_providers_rejects_unknown_and_table_apis(env: dict[str, str]) -> None:
    proc = llama(env, "stack", "list-providers", "nosuch")
    assert_clean_failure(proc, 2)
    assert "nosuch" in proc.stderr and "inference, safety, agents, memory, telemetry" in proc.stderr
    proc = llama(env, "stack", "list-providers", "models")
    assert_clean_failure(proc, 2)
    assert "inference" in proc.stderr


@needs_catalogue
def test_list_providers_shows_the_catalogue(env: dict[str, str]) -> None:
    from llama_stack import _core

    expected = [p for p in json.loads(_core.provider_types()) if p["api"] == "inference"]
    proc = llama(env, "stack", "list-providers", "inference")
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert rows[0][:2] == ["Provider Type", "Available"]
    first_cells = {r[0]: r[1] for r in rows[1:] if r[0]}
    assert {p["provider_type"]: ("yes" if p["available"] else "no") for p in expected} == first_cells
    assert "remote::ollama" in first_cells


# --- build ------------------------------------------------------------------------------------


def test_build_lists_templates(env: dict[str, str]) -> None:
    proc = llama(env, "stack", "build", "--list-templates")
    assert proc.returncode == 0, proc.stderr
    names = [r[0] for r in table_rows(proc.stdout)[1:] if r[0]]
    assert {"default", "ollama"} <= set(names)


def test_build_argument_errors(env: dict[str, str]) -> None:
    assert_clean_failure(llama(env, "stack", "build"), 2)
    assert_clean_failure(llama(env, "stack", "build", "--providers", "inference=remote::ollama"), 2)
    proc = llama(env, "stack", "build", "--name", "x", "--providers", "inference")
    assert_clean_failure(proc, 2)
    assert "API=PROVIDER_TYPE" in proc.stderr
    proc = llama(env, "stack", "build", "--name", "x", "--providers", "models=remote::ollama")
    assert_clean_failure(proc, 2)
    assert "models" in proc.stderr
    proc = llama(env, "stack", "build", "--template", "nosuch")
    assert_clean_failure(proc, 2)
    assert "default" in proc.stderr  # lists the templates that exist


def _field_defaults(api: str, provider_type: str) -> dict[str, object]:
    from llama_stack import _core

    for p in json.loads(_core.provider_types()):
        if p["api"] == api and p["provider_type"] == provider_type:
            return {f["name"]: f["default"] for f in p["config_fields"]}
    raise AssertionError(f"{api}/{provider_type} not in the catalogue")


@needs_catalogue
def test_build_from_template(env: dict[str, str], tmp_path: Path) -> None:
    from llama_stack.distribution.datatypes import StackRunConfig

    proc = llama(env, "stack", "build", "--template", "default")
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "cfg" / "builds" / "default-run.yaml"
    assert str(path) in proc.stdout
    data = yaml.safe_load(path.read_text())
    assert list(data)[:7] == ["version", "built_at", "image_name", "docker_image", "conda_env", "apis", "providers"]
    cfg = StackRunConfig(**data)
    assert cfg.version == "2" and cfg.image_name == "default"
    assert cfg.docker_image is None and cfg.conda_env is None
    assert cfg.apis == ["agents", "inference", "memory", "safety", "telemetry"]
    (inference,) = cfg.providers["inference"]
    assert (inference.provider_id, inference.provider_type) == ("embedded", "embedded")
    # The template's values win; every other field carries the catalogue's default.
    assert inference.config == {
        **_field_defaults("inference", "embedded"),
        "model": "SmolLM2-135M-Instruct",
        "embedding_model": "all-MiniLM-L6-v2",
    }
    assert [(p.provider_id, p.provider_type) for p in cfg.providers["telemetry"]] == [("console", "meta-reference")]
    assert [(p.provider_id, p.provider_type) for p in cfg.providers["safety"]] == [
        ("codeshield", "meta-reference/codeshield")
    ]
    assert [(p.provider_id, p.provider_type) for p in cfg.providers["memory"]] == [("meta-reference", "meta-reference")]
    assert [(p.provider_id, p.provider_type) for p in cfg.providers["agents"]] == [("meta-reference", "meta-reference")]
    assert cfg.metadata_store is not None and cfg.metadata_store["type"] == "sqlite"
    assert cfg.metadata_store["db_path"].startswith(str(tmp_path / "cfg"))

    out = tmp_path / "elsewhere" / "mine.yaml"
    proc = llama(env, "stack", "build", "--template", "ollama", "--name", "mine", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    cfg = StackRunConfig(**yaml.safe_load(out.read_text()))
    assert cfg.image_name == "mine"
    assert set(cfg.providers) == {"inference", "memory", "safety", "agents", "telemetry"}


UPSTREAM_TEMPLATES = [
    "local-ollama", "local-tgi", "local-together", "local-fireworks", "local-databricks",
    "local-hf-endpoint", "local-hf-serverless", "local-bedrock-conda-example",
]


@needs_catalogue
@pytest.mark.parametrize("template", UPSTREAM_TEMPLATES)
def test_upstream_template_names_build_stacks_that_start(template: str, env: dict[str, str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream's template names work with `--template`, and the stack they write starts, even
    with its backend out of reach (remote providers connect on first use)."""
    from llama_stack.distribution.stack import LlamaStack

    proc = llama(env, "stack", "build", "--template", template, "--name", "t")
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "cfg" / "builds" / "t-run.yaml"
    monkeypatch.setenv("LLAMA_STACK_CONFIG_DIR", str(tmp_path / "cfg"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)

    async def start() -> list:
        async with LlamaStack(str(path)) as stack:
            return await stack.inspect.list_providers()

    import asyncio

    providers = asyncio.run(start())
    assert [p.provider_type for p in providers["inference"]] == [
        yaml.safe_load(path.read_text())["providers"]["inference"][0]["provider_type"]
    ]


@needs_catalogue
def test_build_from_providers(env: dict[str, str], tmp_path: Path) -> None:
    from llama_stack.distribution.datatypes import StackRunConfig

    proc = llama(
        env, "stack", "build", "--name", "demo",
        "--providers", "inference=remote::ollama,inference=remote::ollama@gpu-box",
        "--providers", "telemetry=meta-reference",
    )
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "cfg" / "builds" / "demo-run.yaml"
    cfg = StackRunConfig(**yaml.safe_load(path.read_text()))
    assert cfg.image_name == "demo"
    assert cfg.apis == ["inference", "telemetry"]
    assert [p.provider_id for p in cfg.providers["inference"]] == ["ollama", "gpu-box"]
    assert cfg.providers["inference"][0].config == _field_defaults("inference", "remote::ollama")
    assert [(p.provider_id, p.provider_type) for p in cfg.providers["telemetry"]] == [
        ("meta-reference", "meta-reference")
    ]

    proc = llama(env, "stack", "build", "--name", "bad", "--providers", "inference=remote::nosuch")
    assert_clean_failure(proc, 2)
    assert "remote::nosuch" in proc.stderr and "remote::ollama" in proc.stderr
    assert not (tmp_path / "cfg" / "builds" / "bad-run.yaml").exists()


# --- configure --------------------------------------------------------------------------------

# A stack like the default one but on Ollama, whose config has fields of every kind to configure.
OLLAMA_DEMO_BUILD = ("stack", "build", "--name", "demo", "--providers", "inference=remote::ollama,telemetry=meta-reference")


@needs_catalogue
def test_configure_with_set_and_env(env: dict[str, str], tmp_path: Path) -> None:
    assert llama(env, *OLLAMA_DEMO_BUILD).returncode == 0
    path = tmp_path / "cfg" / "builds" / "demo-run.yaml"

    proc = llama(
        {**env, "LLAMA_STACK_INFERENCE_OLLAMA_TIMEOUT": "12.5"},
        "stack", "configure", "demo",
        "--set", "inference.ollama.url=http://gpu-box:11434",
        "--set", "inference.ollama.port=1234",
    )
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(path.read_text())["providers"]["inference"][0]["config"]
    assert config["url"] == "http://gpu-box:11434"
    assert config["port"] == 1234
    assert config["timeout"] == 12.5

    # Without --set and without a terminal it never prompts, and keeps the values.
    before = yaml.safe_load(path.read_text())
    proc = llama(env, "stack", "configure", str(path), stdin="http://ignored\n")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(path.read_text())["providers"] == before["providers"]


@needs_catalogue
def test_configure_errors_name_the_field(env: dict[str, str], tmp_path: Path) -> None:
    assert llama(env, *OLLAMA_DEMO_BUILD).returncode == 0
    path = tmp_path / "cfg" / "builds" / "demo-run.yaml"
    before = path.read_text()

    proc = llama(env, "stack", "configure", "demo", "--set", "inference.ollama.colour=blue")
    assert_clean_failure(proc, 2)
    assert "colour" in proc.stderr and "url" in proc.stderr

    proc = llama(env, "stack", "configure", "demo", "--set", "inference.nobody.url=x")
    assert_clean_failure(proc, 2)
    assert "nobody" in proc.stderr and "ollama" in proc.stderr

    proc = llama(env, "stack", "configure", "demo", "--set", "inference.ollama.port=many")
    assert_clean_failure(proc, 2)
    assert "port" in proc.stderr and "integer" in proc.stderr
    assert path.read_text() == before

    assert_clean_failure(llama(env, "stack", "configure", "nosuch"), 1)

    # A required field left empty fails the core's check; the file stays as it was.
    proc = llama(env, "stack", "build", "--name", "tgi", "--providers", "inference=remote::tgi")
    assert proc.returncode == 0, proc.stderr
    assert "inference.tgi.url" in proc.stderr
    built = tmp_path / "cfg" / "builds" / "tgi-run.yaml"
    before = built.read_text()
    proc = llama(env, "stack", "configure", "tgi", "--yes")
    assert_clean_failure(proc, 1)
    assert "providers.inference[0].config.url" in proc.stderr
    assert built.read_text() == before
    proc = llama(env, "stack", "configure", "tgi", "--set", "inference.tgi.url=http://tgi:8080")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(built.read_text())["providers"]["inference"][0]["config"]["url"] == "http://tgi:8080"


@needs_catalogue
def test_configure_prompts_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    assert llama(env, *OLLAMA_DEMO_BUILD).returncode == 0
    path = tmp_path / "cfg" / "builds" / "demo-run.yaml"
    # Every field of each provider is asked in turn: ollama's, then the console telemetry's.
    fields = list(_field_defaults("inference", "remote::ollama")) + list(_field_defaults("telemetry", "meta-reference"))
    answers = {"port": ["many", "4321"], "url": ["null"]}  # a bad answer is asked again
    lines = [a for name in fields for a in answers.get(name, [""])]

    controller, terminal = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_stack.cli.llama", "stack", "configure", "demo"],
            env=env, stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        os.write(controller, "".join(f"{line}\n" for line in lines).encode())
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 0, err
    assert "must be an integer" in out
    config = yaml.safe_load(path.read_text())["providers"]["inference"][0]["config"]
    assert config["port"] == 4321 and config["url"] is None
    assert config["host"] == _field_defaults("inference", "remote::ollama")["host"]


# --- run --------------------------------------------------------------------------------------


def test_run_unknown_config_name(env: dict[str, str]) -> None:
    proc = llama(env, "stack", "run", "nosuch")
    assert_clean_failure(proc, 1)
    assert "llama stack build" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _link_default_models(env: dict[str, str]) -> None:
    """The default config runs the embedded provider: its models are fetched once into the cache
    shared by test runs and linked into this test's config dir, so `llama stack run` finds them."""
    root = Path(os.environ.get("LSRS_MODEL_CACHE") or Path.home() / ".cache" / "lsrs" / "models")
    checkpoints = Path(env["LLAMA_STACK_CONFIG_DIR"]) / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    for model_id in ("SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"):
        proc = llama({**env, "LLAMA_STACK_CONFIG_DIR": str(root)}, "model", "download", "-m", model_id, timeout=900)
        assert proc.returncode == 0, proc.stderr
        (checkpoints / model_id).symlink_to(root / "checkpoints" / model_id, target_is_directory=True)


@needs_serve
def test_run_default_config_serves_and_stops_on_sigint(env: dict[str, str]) -> None:
    import httpx

    _link_default_models(env)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_stack.cli.llama", "stack", "run", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, proc.stderr.read() if proc.poll() is not None else "no answer from /health"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_serve
def test_run_bad_config_exits_1_naming_the_field(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad-run.yaml"
    bad.write_text(
        "version: '2'\nimage_name: bad\nproviders:\n  inference:\n"
        "  - provider_id: x\n    provider_type: remote::ollama\n    config: {port: not-a-port}\n"
    )
    proc = llama(env, "stack", "run", str(bad), "--port", str(_free_port()), timeout=30)
    assert_clean_failure(proc, 1)
    assert "providers.inference[0]" in proc.stderr and "port" in proc.stderr
