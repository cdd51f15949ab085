//! The agents provider driven by a scripted model: event order, history, client tools, shields,
//! retrieval with attachments, persistence and the errors a client can cause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a failed unwrap is a failed test")]

mod agents_common;

use agents_common::*;
use llama_stack_rs::providers::RequestContext;
use llama_stack_rs::types::agents::{AgentTurnResponseEventPayload, Step};
use llama_stack_rs::types::common::{Message, StopReason, ToolChoice};
use serde_json::json;

async fn agent_and_session(r: &Rig, extra: serde_json::Value) -> (String, String) {
    let agent = r.agents.create_agent(agent_config(extra)).await.unwrap();
    let session = r.agents.create_session(&agent, "test").await.unwrap();
    (agent, session)
}

fn user(text: &str) -> serde_json::Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn a_text_turn_streams_upstreams_events_and_is_stored() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({})).await;
    r.model.push(say("Hello there friend"));
    let events = collect(&r.agents, turn_request(&agent, &session, user("hi"))).await;
    assert_eq!(
        shape(&events),
        [
            "turn_start",
            "step_start:inference",
            "step_progress:inference",
            "step_progress:inference",
            "step_progress:inference",
            "step_complete:inference",
            "turn_complete"
        ]
    );
    let deltas: Vec<String> = events
        .iter()
        .filter_map(|c| match &c.event.payload {
            AgentTurnResponseEventPayload::StepProgress(p) => p.model_response_text_delta.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(deltas.concat(), "Hello there friend");

    let turn = final_turn(&events);
    assert_eq!(turn.output_message.content.as_text(""), "Hello there friend");
    assert_eq!(turn.output_message.stop_reason, StopReason::EndOfTurn);
    assert_eq!(
        serde_json::to_value(&turn.input_messages).unwrap(),
        json!([{"role": "user", "content": "hi", "context": null}])
    );
    assert_eq!(turn.steps.len(), 1);
    let AgentTurnResponseEventPayload::TurnStart(start) = &events[0].event.payload else { panic!() };
    assert_eq!(start.turn_id, turn.turn_id);

    // The model got the agent's settings: system message, sampling, tool choice and format.
    let sent = &r.model.requests()[0];
    assert_eq!(sent.model, MODEL);
    assert!(matches!(&sent.messages[0], Message::System(s) if s.content.as_text("") == "You are a helpful assistant"));
    assert_eq!(sent.messages.len(), 2);
    assert_eq!(sent.sampling_params.as_ref().and_then(|s| s.max_tokens), Some(64));
    assert_eq!(sent.tool_choice, Some(ToolChoice::Auto));
    assert!(sent.tools.is_empty());
    assert_eq!(sent.stream, Some(true));

    // Stored: by turn id, by step id, and in the session.
    let stored = r.agents.get_turn(&agent, &turn.turn_id).await.unwrap();
    assert_eq!(stored, turn);
    let step = r.agents.get_step(&agent, &turn.turn_id, turn.steps[0].step_id()).await.unwrap();
    assert!(matches!(step, Step::Inference(_)));
    let s = r.agents.get_session(&agent, &session, None).await.unwrap();
    assert_eq!(s.turns, vec![turn]);
    assert_eq!(s.session_name, "test");
}

#[tokio::test]
async fn history_is_chronological_and_instructions_lead_every_turn() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({})).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        r.model.push(say(&format!("answer {i}")));
        let events = collect(&r.agents, turn_request(&agent, &session, user(&format!("question {i}")))).await;
        ids.push(final_turn(&events).turn_id);
    }
    let last = r.model.requests().pop().unwrap();
    let texts: Vec<String> = last.messages.iter().map(|m| m.content().as_text("")).collect();
    assert_eq!(
        texts,
        [
            "You are a helpful assistant",
            "question 0",
            "answer 0",
            "question 1",
            "answer 1",
            "question 2",
            "answer 2",
            "question 3"
        ]
    );
    let session_turns: Vec<String> =
        r.agents.get_session(&agent, &session, None).await.unwrap().turns.into_iter().map(|t| t.turn_id).collect();
    assert_eq!(session_turns, ids);
    let picked = r.agents.get_session(&agent, &session, Some(&[ids[2].clone()])).await.unwrap();
    assert_eq!(picked.turns.len(), 1);
    assert_eq!(picked.turns[0].turn_id, ids[2]);
}

#[tokio::test]
async fn a_client_tool_call_ends_the_turn_and_the_answer_comes_next_turn() {
    let r = rig().await;
    let tool = json!({"type": "function_call", "function_name": "get_boiling_point",
                      "description": "Boiling point of a liquid",
                      "parameters": {"liquid_name": {"param_type": "string", "description": "liquid", "required": true}}});
    let (agent, session) = agent_and_session(&r, json!({"tools": [tool]})).await;
    r.model.push(call("c1", "get_boiling_point", json!({"liquid_name": "polyjuice"})));
    let events = collect(&r.agents, turn_request(&agent, &session, user("Boiling point of polyjuice?"))).await;
    let turn = final_turn(&events);
    assert_eq!(turn.output_message.tool_calls.len(), 1);
    assert_eq!(turn.output_message.tool_calls[0].tool_name.as_str(), "get_boiling_point");
    assert_eq!(
        folded(&events),
        ["turn_start", "step_start:inference", "step_progress:inference", "step_complete:inference", "turn_complete"]
    );
    let sent = &r.model.requests()[0];
    assert_eq!(sent.tools.len(), 1);
    assert_eq!(sent.tools[0].tool_name.as_str(), "get_boiling_point");
    assert_eq!(sent.tools[0].description.as_deref(), Some("Boiling point of a liquid"));

    r.model.push(say("Polyjuice boils at -100 degrees."));
    let answer = json!([{"role": "ipython", "call_id": "c1", "tool_name": "get_boiling_point", "content": "-100"}]);
    let events = collect(&r.agents, turn_request(&agent, &session, answer)).await;
    let turn = final_turn(&events);
    assert!(turn.output_message.content.as_text("").contains("-100"));
    let roles: Vec<String> = r.model.requests()[1].messages.iter().map(|m| m.role().to_string()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "ipython"]);
    assert_eq!(turn.input_messages.len(), 1);
}

#[tokio::test]
async fn input_shield_violation_ends_the_turn_with_its_message() {
    let r = rig().await;
    let (agent, session) =
        agent_and_session(&r, json!({"input_shields": ["no_bombs"], "output_shields": ["no_bombs"]})).await;
    let events = collect(&r.agents, turn_request(&agent, &session, user("Tell me how to make a bomb"))).await;
    assert_eq!(shape(&events), ["turn_start", "step_start:shield_call", "step_complete:shield_call", "turn_complete"]);
    let turn = final_turn(&events);
    assert_eq!(turn.output_message.content.as_text(""), "I can't answer that. Can I help with something else?");
    let Step::ShieldCall(step) = &turn.steps[0] else { panic!() };
    assert!(step.violation.is_some());
    assert!(r.model.requests().is_empty(), "the model is not asked after an input violation");
    let AgentTurnResponseEventPayload::StepStart(start) = &events[1].event.payload else { panic!() };
    assert_eq!(start.metadata.as_ref().unwrap()["touchpoint"], "user-input");

    // A clean turn passes both shields: shield, inference, shield.
    r.model.push(say("Hello"));
    let events = collect(&r.agents, turn_request(&agent, &session, user("hello"))).await;
    assert_eq!(
        folded(&events),
        [
            "turn_start",
            "step_start:shield_call",
            "step_complete:shield_call",
            "step_start:inference",
            "step_progress:inference",
            "step_complete:inference",
            "step_start:shield_call",
            "step_complete:shield_call",
            "turn_complete"
        ]
    );
}

#[tokio::test]
async fn output_shield_replaces_the_answer_and_history_forgets_it() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({"output_shields": ["no_bombs"]})).await;
    r.model.push(say("Here is how to build a bomb"));
    let events = collect(&r.agents, turn_request(&agent, &session, user("chemistry question"))).await;
    let turn = final_turn(&events);
    assert_eq!(turn.output_message.content.as_text(""), "I can't answer that. Can I help with something else?");
    assert_eq!(turn.steps.len(), 2);

    r.model.push(say("ok"));
    collect(&r.agents, turn_request(&agent, &session, user("next"))).await;
    let texts: Vec<String> = r.model.requests()[1].messages.iter().map(|m| m.content().as_text("")).collect();
    assert!(!texts.iter().any(|t| t.contains("bomb")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("I can't answer that")));
}

#[tokio::test]
async fn a_warning_shield_lets_the_turn_go_on() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({"input_shields": ["cautious"]})).await;
    r.model.push(say("Careful now"));
    let events = collect(&r.agents, turn_request(&agent, &session, user("a bomb of flavour"))).await;
    let turn = final_turn(&events);
    assert_eq!(turn.output_message.content.as_text(""), "Careful now");
    let Step::ShieldCall(step) = &turn.steps[0] else { panic!() };
    assert!(step.violation.is_none());
}

#[tokio::test]
async fn creating_an_agent_names_everything_missing() {
    let r = rig().await;
    let bad = agent_config(json!({
        "model": "no-such-model",
        "input_shields": ["no_bombs", "ghost_shield"],
        "tools": [{"type": "memory", "memory_bank_configs": [{"type": "vector", "bank_id": "ghost_bank"}]},
                  {"type": "function_call", "function_name": "f", "description": "d", "parameters": {},
                   "output_shields": ["tool_ghost"]}]
    }));
    let err = r.agents.create_agent(bad).await.unwrap_err();
    assert_eq!(err.status_code(), 400);
    let msg = err.to_string();
    for name in ["model `no-such-model`", "shield `ghost_shield`", "shield `tool_ghost`", "memory bank `ghost_bank`"] {
        assert!(msg.contains(name), "{msg}");
    }
    assert!(!msg.contains("`no_bombs`"), "{msg}");

    let custom = agent_config(json!({"tools": [{"type": "memory", "query_generator_config": {"type": "custom"}}]}));
    let err = r.agents.create_agent(custom).await.unwrap_err();
    assert_eq!(err.status_code(), 501);
    assert!(err.to_string().contains("custom"), "{err}");
}

#[tokio::test]
async fn unknown_ids_are_refused_before_any_event() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({})).await;
    let bad_agent = r.agents.create_turn(turn_request("nope", &session, user("hi")), RequestContext::default()).await;
    let err = bad_agent.err().unwrap();
    assert_eq!(err.status_code(), 400);
    assert!(err.to_string().contains("agent `nope`"), "{err}");
    let err =
        r.agents.create_turn(turn_request(&agent, "gone", user("hi")), RequestContext::default()).await.err().unwrap();
    assert!(err.to_string().contains("session `gone`"), "{err}");
    let err = r.agents.get_turn(&agent, "t-missing").await.unwrap_err();
    assert!(err.to_string().contains("turn `t-missing`"), "{err}");
    let err = r.agents.create_session("nope", "x").await.unwrap_err();
    assert!(err.to_string().contains("agent `nope`"), "{err}");
    let err = r.agents.get_session(&agent, "a:b", None).await.unwrap_err();
    assert_eq!(err.status_code(), 400);

    r.model.push(say("hi"));
    let turn = final_turn(&collect(&r.agents, turn_request(&agent, &session, user("hi"))).await);
    let err = r.agents.get_step(&agent, &turn.turn_id, "s-missing").await.unwrap_err();
    assert!(err.to_string().contains("step `s-missing`"), "{err}");
    let err = r.agents.get_session(&agent, &session, Some(&["t-missing".to_owned()])).await.unwrap_err();
    assert!(err.to_string().contains("t-missing"), "{err}");
    let empty = turn_request(&agent, &session, json!([]));
    assert_eq!(r.agents.create_turn(empty, RequestContext::default()).await.err().unwrap().status_code(), 400);
}

#[tokio::test]
async fn deleting_removes_sessions_and_turns() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({})).await;
    r.model.push(say("one"));
    let turn = final_turn(&collect(&r.agents, turn_request(&agent, &session, user("hi"))).await);
    let other = r.agents.create_session(&agent, "second").await.unwrap();

    r.agents.delete_session(&agent, &session).await.unwrap();
    assert!(r.agents.get_session(&agent, &session, None).await.is_err());
    assert!(r.agents.get_turn(&agent, &turn.turn_id).await.is_err());
    assert!(r.agents.get_session(&agent, &other, None).await.is_ok());

    r.agents.delete_agent(&agent).await.unwrap();
    assert!(r.agents.create_session(&agent, "x").await.is_err());
    assert!(r.agents.get_session(&agent, &other, None).await.is_err());
    assert_eq!(r.agents.delete_agent(&agent).await.unwrap_err().status_code(), 400);
}

#[tokio::test]
async fn a_failing_model_ends_the_stream_with_an_error_and_stores_nothing() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({})).await;
    // No scripted reply: the model fails.
    let stream =
        r.agents.create_turn(turn_request(&agent, &session, user("hi")), RequestContext::default()).await.unwrap();
    let items: Vec<_> = futures::StreamExt::collect(stream).await;
    assert!(items.last().unwrap().is_err());
    assert!(r.agents.get_session(&agent, &session, None).await.unwrap().turns.is_empty());
}

#[tokio::test]
async fn the_non_streamed_turn_answers_the_finished_turn() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({})).await;
    r.model.push(say("done"));
    let mut req = turn_request(&agent, &session, user("hi"));
    req.stream = Some(false);
    let turn = r.agents.create_turn_and_wait(req, RequestContext::default()).await.unwrap();
    assert_eq!(turn.output_message.content.as_text(""), "done");
    assert_eq!(r.agents.get_turn(&agent, &turn.turn_id).await.unwrap(), turn);
}

#[tokio::test]
async fn turns_of_one_session_run_in_order() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({})).await;
    let n = 6;
    for i in 0..n {
        r.model.push(say(&format!("a{i}")));
    }
    let mut handles = Vec::new();
    for i in 0..n {
        let agents = r.agents.clone();
        let req = turn_request(&agent, &session, user(&format!("q{i}")));
        handles.push(tokio::spawn(async move { final_turn(&collect(&agents, req).await) }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Each request saw every earlier turn complete: the history grows by two each time.
    let lens: Vec<usize> = r.model.requests().iter().map(|q| q.messages.len()).collect();
    assert_eq!(lens, (0..n).map(|i| 2 + 2 * i).collect::<Vec<_>>());
    assert_eq!(r.agents.get_session(&agent, &session, None).await.unwrap().turns.len(), n);
}

#[tokio::test]
async fn attachments_go_into_the_session_bank_and_come_back_as_context() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({"tools": [{"type": "memory"}]})).await;
    r.model.push(say("Paris"));
    let req: llama_stack_rs::types::agents::CreateAgentTurnRequest = serde_json::from_value(json!({
        "agent_id": agent, "session_id": session, "stream": true,
        "messages": [{"role": "user", "content": "Which city is the capital of France?"}],
        "attachments": [
            {"content": "The capital of France is Paris, a city on the Seine.", "mime_type": "text/plain"},
            {"content": "Bananas are rich in potassium.", "mime_type": "text/plain"}
        ]
    }))
    .unwrap();
    let events = collect(&r.agents, req).await;
    assert_eq!(
        folded(&events)[..3],
        [
            "turn_start".to_owned(),
            "step_start:memory_retrieval".to_owned(),
            "step_complete:memory_retrieval".to_owned()
        ]
    );
    let AgentTurnResponseEventPayload::StepStart(start) = &events[1].event.payload else { panic!() };
    let turn = final_turn(&events);
    let Step::MemoryRetrieval(step) = &turn.steps[0] else { panic!() };
    assert_eq!(step.step_id, start.step_id);
    let bank = format!("memory_bank_{session}");
    assert_eq!(step.memory_bank_ids, std::slice::from_ref(&bank));
    let inserted = step.inserted_context.as_text("");
    assert!(
        inserted
            .starts_with("Here are the retrieved documents for relevant context:\n=== START-RETRIEVED-CONTEXT ===\n")
    );
    assert!(inserted.contains("capital of France is Paris"), "{inserted}");
    assert!(inserted.ends_with("\n=== END-RETRIEVED-CONTEXT ===\n"));

    // The model saw the context with the user's message; the stored turn did not keep it.
    let sent = &r.model.requests()[0];
    let Message::User(u) = sent.messages.last().unwrap() else { panic!() };
    assert!(u.context.as_ref().unwrap().as_text("").contains("Paris"));
    assert!(serde_json::to_value(&turn.input_messages).unwrap()[0]["context"].is_null());

    // The session records its bank, which the memory table now routes.
    let s = r.agents.get_session(&agent, &session, None).await.unwrap();
    assert_eq!(s.memory_bank.as_ref().map(|b| b.identifier().to_owned()), Some(bank.clone()));
    assert!(r.banks.get(&bank).await.unwrap().is_some());

    // A later turn without attachments still reads the session's bank.
    r.model.push(say("Seine"));
    let events = collect(&r.agents, turn_request(&agent, &session, user("Which river runs through Paris?"))).await;
    let Step::MemoryRetrieval(step) = &final_turn(&events).steps[0] else { panic!() };
    assert_eq!(step.memory_bank_ids, [bank]);
}

#[tokio::test]
async fn memory_tool_limits_and_named_banks() {
    let r = rig().await;
    let bank = json!({"type": "vector", "identifier": "facts", "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 512});
    r.banks.register(serde_json::from_value(bank).unwrap()).await.unwrap();
    let docs: Vec<_> = (0..5)
        .map(|i| llama_stack_rs::types::memory::MemoryBankDocument {
            document_id: format!("d{i}"),
            content: llama_stack_rs::types::memory::DocumentContent::Media(
                format!("rivers fact number {i} about rivers").into(),
            ),
            mime_type: None,
            metadata: serde_json::Map::default(),
        })
        .collect();
    let (b, p) = r.banks.resolve("facts").await.unwrap();
    p.insert_documents(&b, docs, None, &RequestContext::default()).await.unwrap();
    let tool = json!({"type": "memory", "memory_bank_configs": [{"type": "vector", "bank_id": "facts"}],
                      "query_generator_config": {"type": "default", "sep": " | "},
                      "max_chunks": 3, "max_tokens_in_context": 13});
    let (agent, session) = agent_and_session(&r, json!({"tools": [tool]})).await;
    r.model.push(say("ok"));
    let turn = final_turn(&collect(&r.agents, turn_request(&agent, &session, user("tell me about rivers"))).await);
    let Step::MemoryRetrieval(step) = &turn.steps[0] else { panic!() };
    assert_eq!(step.memory_bank_ids, ["facts"]);
    // Chunks are 6 tokens: two fit in 13, the third would not.
    let pieces = match &step.inserted_context {
        llama_stack_rs::types::common::InterleavedTextMedia::List(items) => items.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(pieces, 2 + 2);
    let queries = r.memory.queries.lock().unwrap().clone();
    assert_eq!(queries[0].1, "you are a helpful assistant | tell me about rivers");
    assert_eq!(queries[0].2.as_ref().unwrap()["max_chunks"], 3);
}

#[tokio::test]
async fn the_llm_query_generator_asks_the_model() {
    let r = rig().await;
    let bank = json!({"type": "vector", "identifier": "facts", "embedding_model": "all-MiniLM-L6-v2", "chunk_size_in_tokens": 512});
    r.banks.register(serde_json::from_value(bank).unwrap()).await.unwrap();
    let tool = json!({"type": "memory", "memory_bank_configs": [{"type": "vector", "bank_id": "facts"}],
                      "query_generator_config": {"type": "llm", "model": MODEL,
                        "template": "Write a search query for: {% for m in messages %}{{ m.content }};{% endfor %}"}});
    let (agent, session) = agent_and_session(&r, json!({"tools": [tool]})).await;
    r.model.push(say("volcano query"));
    r.model.push(say("answer"));
    collect(&r.agents, turn_request(&agent, &session, user("volcanoes?"))).await;
    let requests = r.model.requests();
    assert_eq!(requests[0].stream, Some(false));
    assert_eq!(
        requests[0].messages[0].content().as_text(""),
        "Write a search query for: You are a helpful assistant;volcanoes?;"
    );
    assert_eq!(r.memory.queries.lock().unwrap()[0].1, "volcano query");
}

#[tokio::test]
async fn turns_survive_a_new_provider_on_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db").display().to_string();
    let store = json!({"type": "sqlite", "db_path": path});
    let first = rig_with_store(tempfile::tempdir().unwrap(), store.clone()).await;
    let (agent, session) = agent_and_session(&first, json!({})).await;
    first.model.push(say("remembered"));
    let turn = final_turn(&collect(&first.agents, turn_request(&agent, &session, user("hi"))).await);

    let second = rig_with_store(tempfile::tempdir().unwrap(), store).await;
    assert_eq!(second.agents.get_turn(&agent, &turn.turn_id).await.unwrap(), turn);
    second.model.push(say("again"));
    collect(&second.agents, turn_request(&agent, &session, user("and now?"))).await;
    let texts: Vec<String> = second.model.requests()[0].messages.iter().map(|m| m.content().as_text("")).collect();
    assert!(texts.contains(&"remembered".to_owned()), "{texts:?}");
    assert_eq!(first.agents.get_session(&agent, &session, None).await.unwrap().turns.len(), 2);
    drop(dir);
}

#[tokio::test]
async fn attachments_for_the_code_interpreter_become_files() {
    let r = rig().await;
    let (agent, session) =
        agent_and_session(&r, json!({"tools": [{"type": "code_interpreter"}], "tool_choice": "required"})).await;
    r.model.push(say("I will read it"));
    let req: llama_stack_rs::types::agents::CreateAgentTurnRequest = serde_json::from_value(json!({
        "agent_id": agent, "session_id": session, "stream": true,
        "messages": [{"role": "user", "content": "Plot the csv"}],
        "attachments": [
            {"content": "data:text/csv;base64,eWVhcix2YWx1ZQoyMDIwLDEK", "mime_type": "text/csv"},
            {"content": {"uri": "data:text/plain,hello%20world"}, "mime_type": "text/plain"},
            {"content": "inline notes", "mime_type": "text/plain"}
        ]
    }))
    .unwrap();
    let turn = final_turn(&collect(&r.agents, req).await);
    assert!(matches!(turn.steps[0], Step::Inference(_)), "no retrieval for the code interpreter");
    let sent = &r.model.requests()[0];
    let Message::Ipython(note) = sent.messages.last().unwrap() else { panic!("{:?}", sent.messages) };
    assert_eq!(note.tool_name.as_str(), "code_interpreter");
    let text = note.content.as_text("");
    let paths: Vec<&str> = text.lines().map(|l| l.split('"').nth(1).unwrap()).collect();
    assert_eq!(paths.len(), 3, "{text}");
    assert!(text.starts_with("# There is a file accessible to you at \""));
    assert_eq!(std::fs::read_to_string(paths[0]).unwrap(), "year,value\n2020,1\n");
    assert_eq!(std::path::Path::new(paths[0]).extension().and_then(|e| e.to_str()), Some("csv"));
    assert_eq!(std::fs::read_to_string(paths[1]).unwrap(), "hello world");
    assert_eq!(std::fs::read_to_string(paths[2]).unwrap(), "inline notes");
    let files: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();

    // A file on the server's disk is not for a client to name.
    let req: llama_stack_rs::types::agents::CreateAgentTurnRequest = serde_json::from_value(json!({
        "agent_id": agent, "session_id": session, "stream": true,
        "messages": [{"role": "user", "content": "read it"}],
        "attachments": [{"content": "file:///etc/passwd", "mime_type": "text/plain"}]
    }))
    .unwrap();
    let err = r.agents.create_turn(req, RequestContext::default()).await.err().unwrap();
    assert_eq!(err.status_code(), 400);
    assert!(err.to_string().contains("attachments[0]"), "{err}");

    // Deleting the session removes its files.
    r.agents.delete_session(&agent, &session).await.unwrap();
    assert!(files.iter().all(|f| !std::path::Path::new(f).exists()));
}

#[tokio::test]
async fn partial_messages_continue_until_max_infer_iters() {
    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({"max_infer_iters": 2})).await;
    for text in ["one", "two", "three", "never"] {
        r.model.push(Reply { text: text.to_owned(), calls: Vec::new(), stop: StopReason::EndOfMessage });
    }
    let turn = final_turn(&collect(&r.agents, turn_request(&agent, &session, user("go on"))).await);
    assert_eq!(turn.steps.len(), 3);
    assert_eq!(turn.output_message.content.as_text(""), "three");
    // Each round saw the partial answers before it.
    let lens: Vec<usize> = r.model.requests().iter().map(|q| q.messages.len()).collect();
    assert_eq!(lens, [2, 3, 4]);
}

/// Keeps every telemetry event it is given.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<llama_stack_rs::types::telemetry::Event>>);

#[async_trait::async_trait]
impl llama_stack_rs::providers::telemetry::TelemetryProvider for Recorder {
    async fn log_event(&self, event: llama_stack_rs::types::telemetry::Event) -> llama_stack_rs::error::Result<()> {
        self.0.lock().unwrap().push(event);
        Ok(())
    }
    async fn get_trace(&self, _: &str) -> llama_stack_rs::error::Result<llama_stack_rs::types::telemetry::Trace> {
        Err(llama_stack_rs::Error::invalid("not kept"))
    }
}

#[tokio::test]
async fn one_turn_reads_as_one_trace_with_its_steps_as_child_spans() {
    use llama_stack_rs::types::telemetry::{Event, StructuredLogPayload};

    let r = rig().await;
    let (agent, session) = agent_and_session(&r, json!({"input_shields": ["no_bombs"]})).await;
    r.model.push(say("Hello there"));
    let recorder = std::sync::Arc::new(Recorder::default());
    let tracer = llama_stack_rs::telemetry::Tracer::start(recorder.clone());
    let root = tracer.root("/agents/turn/create", None);
    let ctx = RequestContext::default().within(&root);
    let stream = r.agents.create_turn(turn_request(&agent, &session, user("hi")), ctx).await.unwrap();
    let events: Vec<_> = futures::StreamExt::collect::<Vec<_>>(stream).await;
    assert!(events.iter().all(Result::is_ok));
    drop(root);
    tracer.flush().await;

    // span id -> (name, parent span id), all in the root's trace.
    let mut spans = std::collections::HashMap::new();
    let mut ended = std::collections::HashSet::new();
    let mut trace_ids = std::collections::HashSet::new();
    for event in recorder.0.lock().unwrap().iter() {
        if let Event::StructuredLog(s) = event {
            trace_ids.insert(s.trace_id.clone());
            if let StructuredLogPayload::SpanStart(start) = &s.payload {
                spans.insert(s.span_id.clone(), (start.name.clone(), start.parent_span_id.clone()));
            } else {
                ended.insert(s.span_id.clone());
            }
        }
    }
    assert_eq!(trace_ids.len(), 1, "{trace_ids:?}");
    // Every span ended once the stream was read and the root's guard dropped.
    assert_eq!(ended, spans.keys().cloned().collect(), "{spans:?}");
    let parent_name = |name: &str| -> Option<String> {
        let (_, parent) = spans.values().find(|(n, _)| n == name)?;
        spans.get(parent.as_ref()?).map(|(n, _)| n.clone())
    };
    assert_eq!(parent_name("agents.turn").as_deref(), Some("/agents/turn/create"));
    assert_eq!(parent_name("agents.shield_call").as_deref(), Some("agents.turn"));
    assert_eq!(parent_name("safety.run_shield").as_deref(), Some("agents.shield_call"));
    assert_eq!(parent_name("agents.inference").as_deref(), Some("agents.turn"));
}

/// Upstream's 0.0.41 client sends an `AgentTurnCreateRequest` with every per-turn overridable
/// field filled in (its defaults, or what the caller set); the turn runs on the agent's own
/// configuration whatever they say, as upstream's agent does.
#[tokio::test]
async fn per_turn_config_fields_in_the_body_leave_the_agents_config_in_force() {
    let r = rig().await;
    let weather = json!({
        "type": "function_call", "function_name": "get_weather", "description": "Weather of a city",
        "parameters": {"city": {"param_type": "str", "description": "the city", "required": true}}
    });
    let (agent, session) =
        agent_and_session(&r, json!({"tools": [weather], "tool_choice": "required", "input_shields": ["no_bombs"]}))
            .await;
    r.model.push(say("Sunny"));
    let body = json!({
        "agent_id": agent, "session_id": session, "stream": true,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "attachments": null,
        "sampling_params": {"strategy": "greedy", "temperature": 0.0, "top_p": 0.95, "top_k": 0,
                            "max_tokens": 0, "repetition_penalty": 1.0},
        "input_shields": [], "output_shields": [], "tools": [], "tool_choice": "auto",
        "tool_prompt_format": "json", "max_infer_iters": 10, "instructions": "Talk like a pirate",
    });
    let request: llama_stack_rs::types::agents::CreateAgentTurnRequest = serde_json::from_value(body).unwrap();
    let events = collect(&r.agents, request).await;
    assert_eq!(final_turn(&events).output_message.content.as_text(""), "Sunny");

    let sent = &r.model.requests()[0];
    assert!(matches!(&sent.messages[0], Message::System(s) if s.content.as_text("") == "You are a helpful assistant"));
    assert_eq!(sent.tools.len(), 1);
    assert_eq!(sent.tools[0].tool_name.as_str(), "get_weather");
    assert_eq!(sent.tool_choice, Some(ToolChoice::Required));
    assert_eq!(sent.sampling_params.as_ref().and_then(|s| s.max_tokens), Some(64));
    let runs = r.shields.runs.lock().unwrap().clone();
    assert_eq!(runs, [("no_bombs".to_owned(), "Weather in Paris?".to_owned())]);
}
