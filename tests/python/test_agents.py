"""Agents end to end: the official client (and its EventLogger) against `llama stack run`, the
in-process `LlamaStack`, and one turn on the embedded model. The model is our fake Ollama, which
answers text, or a call to the first tool for a model whose name holds "tools"."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from llama_stack_client import AsyncLlamaStackClient, BadRequestError, LlamaStackClient
from llama_stack_client.lib.agents.event_logger import EventLogger as ClientEventLogger

from conftest import run_config
from test_embedded import cached_models, home  # noqa: F401  (fixtures)
from llama_stack.apis.agents import AgentConfig, AgentTurnResponseStreamChunk, Turn
from llama_stack.apis.agents.event_logger import EventLogger
from llama_stack.distribution.stack import LlamaStack
from llama_models.llama3.api.datatypes import ToolResponseMessage, UserMessage

TEXT_MODEL = "Llama3.2-3B-Instruct"
TOOLS_TAG = "llama3.1-tools:8b"


def agents_config(state_dir: Path, url: str) -> dict:
    cfg = run_config(state_dir, {"ollama": url})
    cfg["apis"] = ["inference", "telemetry", "agents"]
    cfg["providers"]["agents"] = [
        {
            "provider_id": "meta-reference",
            "provider_type": "meta-reference",
            "config": {"persistence_store": {"type": "sqlite", "db_path": str(state_dir / "agents.db")}},
        }
    ]
    return cfg


def agent_config(model: str = TEXT_MODEL, **extra) -> dict:
    cfg = {
        "model": model,
        "instructions": "You are a helpful assistant",
        "sampling_params": {"strategy": "greedy", "temperature": 1.0, "top_p": 0.9},
        "enable_session_persistence": False,
    }
    cfg.update(extra)
    return cfg


BOILING_TOOL = {
    "type": "function_call",
    "function_name": "get_boiling_point",
    "description": "Get the boiling point of a liquid",
    "parameters": {"liquid_name": {"param_type": "string", "description": "The liquid", "required": True}},
}


@pytest.fixture
def backend(fake_ollama):
    return fake_ollama(models=["llama3.2:3b-instruct-fp16", TOOLS_TAG], tokens=6)


@pytest.mark.asyncio
async def test_official_client_streams_a_turn_the_event_logger_prints(backend, state_dir, server, capsys):
    s = server(agents_config(state_dir, backend))
    client = AsyncLlamaStackClient(base_url=s.url)
    agent = await client.agents.create(agent_config=agent_config())
    session = await client.agents.session.create(agent_id=agent.agent_id, session_name="demo")
    stream = await client.agents.turn.create(
        agent_id=agent.agent_id,
        session_id=session.session_id,
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
    )
    chunks = []

    async def recorded():
        async for c in stream:
            chunks.append(c)
            yield c

    async for log in ClientEventLogger().log(recorded()):
        if log is not None:
            log.print()
    printed = capsys.readouterr().out
    assert "inference>" in printed and "tok0" in printed, printed
    kinds = [c.event.payload.event_type for c in chunks]
    assert kinds[0] == "turn_start" and kinds[-1] == "turn_complete"
    assert kinds[1] == "step_start" and "step_progress" in kinds and kinds[-2] == "step_complete"
    turn = chunks[-1].event.payload.turn
    assert turn.input_messages[0].content == "Say hello"
    assert turn.output_message.content.strip().startswith("tok0")
    await client.close()


def test_official_client_tool_round_trip_reads_and_deletes(backend, state_dir, server):
    s = server(agents_config(state_dir, backend))
    client = LlamaStackClient(base_url=s.url)
    agent = client.agents.create(agent_config=agent_config(TOOLS_TAG, tools=[BOILING_TOOL], tool_prompt_format="json"))
    session = client.agents.session.create(agent_id=agent.agent_id, session_name="tools")

    first = list(
        client.agents.turn.create(
            agent_id=agent.agent_id,
            session_id=session.session_id,
            messages=[{"role": "user", "content": "What is the boiling point of polyjuice?"}],
            stream=True,
        )
    )
    turn = first[-1].event.payload.turn
    call = turn.output_message.tool_calls[0]
    assert call.tool_name == "get_boiling_point" and call.arguments == {"liquid_name": "fake"}

    reply = {"role": "ipython", "call_id": call.call_id, "tool_name": call.tool_name, "content": "-100"}
    second = list(
        client.agents.turn.create(
            agent_id=agent.agent_id, session_id=session.session_id, messages=[reply], stream=True
        )
    )
    answer = second[-1].event.payload.turn
    assert answer.output_message.tool_calls == [] and answer.output_message.content.strip()

    # Reads: turn and step by GET with query ids, session with ids in the query.
    got = client.agents.turn.retrieve(agent_id=agent.agent_id, turn_id=turn.turn_id)
    assert got.turn_id == turn.turn_id and got.output_message.tool_calls[0].call_id == call.call_id
    step_id = turn.steps[0].step_id
    step = client.agents.steps.retrieve(agent_id=agent.agent_id, turn_id=turn.turn_id, step_id=step_id)
    assert step.step.step_id == step_id
    sess = client.agents.session.retrieve(agent_id=agent.agent_id, session_id=session.session_id)
    assert [t.turn_id for t in sess.turns] == [turn.turn_id, answer.turn_id]

    # Upstream's server form: POST with the ids in the body (session/get with a turn filter).
    r = httpx.post(f"{s.url}/agents/turn/get", json={"agent_id": agent.agent_id, "turn_id": turn.turn_id})
    assert r.status_code == 200 and r.json()["turn_id"] == turn.turn_id
    body = {"agent_id": agent.agent_id, "turn_id": turn.turn_id, "step_id": step_id}
    r = httpx.post(f"{s.url}/agents/step/get", json=body)
    assert r.status_code == 200 and r.json()["step"]["step_type"] == "inference"
    body = {"agent_id": agent.agent_id, "session_id": session.session_id, "turn_ids": [answer.turn_id]}
    r = httpx.post(f"{s.url}/agents/session/get", json=body)
    assert [t["turn_id"] for t in r.json()["turns"]] == [answer.turn_id]
    r = httpx.post(f"{s.url}/agents/turn/create", json={"agent_id": agent.agent_id, "session_id": session.session_id,
                                                      "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["session_id"] == session.session_id and r.json()["steps"]

    # Unknown ids are 400s naming the id, before any stream starts.
    with pytest.raises(BadRequestError) as err:
        list(client.agents.turn.create(agent_id=agent.agent_id, session_id="nope", messages=[reply], stream=True))
    assert "nope" in err.value.response.text
    with pytest.raises(BadRequestError) as err:
        client.agents.turn.retrieve(agent_id=agent.agent_id, turn_id="t-missing")
    assert "t-missing" in err.value.response.text
    with pytest.raises(BadRequestError) as err:
        client.agents.create(agent_config=agent_config("no-such-model", input_shields=["ghost"]))
    assert "no-such-model" in err.value.response.text and "ghost" in err.value.response.text

    client.agents.session.delete(agent_id=agent.agent_id, session_id=session.session_id)
    with pytest.raises(BadRequestError):
        client.agents.session.retrieve(agent_id=agent.agent_id, session_id=session.session_id)
    client.agents.delete(agent_id=agent.agent_id)
    with pytest.raises(BadRequestError):
        client.agents.session.create(agent_id=agent.agent_id, session_name="again")


@pytest.mark.asyncio
async def test_inprocess_turn_stream_yields_chunk_models(backend, state_dir, capsys):
    async with LlamaStack(agents_config(state_dir, backend)) as stack:
        created = await stack.agents.create_agent(agent_config=AgentConfig(**agent_config()))
        session = await stack.agents.create_agent_session(agent_id=created.agent_id, session_name="in-process")
        chunks = []
        async for chunk in stack.agents.create_agent_turn(
            agent_id=created.agent_id,
            session_id=session.session_id,
            messages=[UserMessage(content="Say hello")],
            stream=True,
        ):
            assert isinstance(chunk, AgentTurnResponseStreamChunk)
            chunks.append(chunk)
        turn = chunks[-1].event.payload.turn
        assert isinstance(turn, Turn)

        async def replay():
            for c in chunks:
                yield c

        async for log in EventLogger().log(replay()):
            log.print()
        assert "inference>" in capsys.readouterr().out

        whole = await stack.agents.create_agent_turn(
            agent_id=created.agent_id,
            session_id=session.session_id,
            messages=[UserMessage(content="Again")],
            stream=False,
        )
        assert isinstance(whole, Turn)
        got = await stack.agents.get_agents_session(agent_id=created.agent_id, session_id=session.session_id)
        assert [t.turn_id for t in got.turns] == [turn.turn_id, whole.turn_id]

        with pytest.raises(ValueError, match="nope"):
            await stack.agents.get_agents_turn(agent_id=created.agent_id, turn_id="nope")


@pytest.mark.asyncio
async def test_inprocess_client_tool_message(backend, state_dir):
    async with LlamaStack(agents_config(state_dir, backend)) as stack:
        created = await stack.agents.create_agent(
            agent_config=AgentConfig(**agent_config(TOOLS_TAG, tools=[BOILING_TOOL]))
        )
        session = await stack.agents.create_agent_session(agent_id=created.agent_id, session_name="t")
        first = await stack.agents.create_agent_turn(
            agent_id=created.agent_id, session_id=session.session_id,
            messages=[UserMessage(content="Boiling point of polyjuice?")],
        )
        call = first.output_message.tool_calls[0]
        second = await stack.agents.create_agent_turn(
            agent_id=created.agent_id, session_id=session.session_id,
            messages=[ToolResponseMessage(call_id=call.call_id, tool_name=call.tool_name, content="-100")],
        )
        assert not second.output_message.tool_calls
        assert second.input_messages[0].content == "-100"


@pytest.mark.asyncio
async def test_embedded_model_runs_a_turn_offline(home, tmp_path):
    """A whole turn on the embedded SmolLM2 model, no network: streamed events, then the stored turn."""
    from test_embedded import CHAT_MODEL

    cfg = {
        "version": "2",
        "image_name": "agents-embedded",
        "apis": ["inference", "agents"],
        "providers": {
            "inference": [
                {"provider_id": "embedded", "provider_type": "embedded", "config": {"model": CHAT_MODEL}}
            ],
            "agents": [
                {
                    "provider_id": "meta-reference",
                    "provider_type": "meta-reference",
                    "config": {"persistence_store": {"type": "sqlite", "db_path": str(tmp_path / "agents.db")}},
                }
            ],
        },
        "metadata_store": {"type": "sqlite", "db_path": str(tmp_path / "registry.db")},
    }
    async with LlamaStack(cfg) as stack:
        created = await stack.agents.create_agent(
            agent_config=AgentConfig(
                model=CHAT_MODEL,
                instructions="You are a helpful assistant. Answer in one short sentence.",
                sampling_params={"strategy": "greedy", "max_tokens": 16},
                enable_session_persistence=True,
            )
        )
        session = await stack.agents.create_agent_session(agent_id=created.agent_id, session_name="offline")
        chunks = [
            c
            async for c in stack.agents.create_agent_turn(
                agent_id=created.agent_id,
                session_id=session.session_id,
                messages=[UserMessage(content="What colour is the sky?")],
                stream=True,
            )
        ]
        kinds = [c.event.payload.event_type for c in chunks]
        assert kinds[0] == "turn_start" and kinds[-1] == "turn_complete" and "step_progress" in kinds
        turn = chunks[-1].event.payload.turn
        text = turn.output_message.content
        assert text.strip()
        deltas = "".join(
            c.event.payload.model_response_text_delta or ""
            for c in chunks
            if c.event.payload.event_type == "step_progress"
        )
        assert deltas == text
        stored = await stack.agents.get_agents_turn(agent_id=created.agent_id, turn_id=turn.turn_id)
        assert stored == turn
