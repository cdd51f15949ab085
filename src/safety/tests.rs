//! The `llama_guard` shield end to end against a scripted guard model (the crate's
//! [`ScriptedInference`]: it answers each chat completion with the next reply of its script and
//! keeps the prompts).

use std::sync::Arc;

use super::llama_guard::{CANNED_RESPONSE, CATEGORIES, LlamaGuard, LlamaGuardConfig};
use super::meta_reference::{LLAMA_GUARD, MetaReferenceSafety};
use crate::error::Result;
use crate::providers::RequestContext;
use crate::providers::safety::SafetyProvider;
use crate::testing::{ScriptedInference, model_table};
use crate::types::common::{
    AssistantRole, CompletionMessage, InterleavedTextMedia, JsonObject, Message, StopReason, SystemMessage, SystemRole,
    UserMessage, UserRole,
};
use crate::types::safety::{RunShieldResponse, ViolationLevel};
use crate::types::shields::ShieldDefWithProvider;

struct Harness {
    guard: Arc<ScriptedInference>,
    safety: MetaReferenceSafety,
    shield: ShieldDefWithProvider,
}

async fn harness(model: &str, excluded: &[&str], input_off: bool, output_off: bool, replies: &[&str]) -> Harness {
    let guard = Arc::new(ScriptedInference::saying(model, replies.iter().copied()));
    let table = model_table("guard-backend", guard.clone()).await;
    let config = LlamaGuardConfig {
        model: model.to_owned(),
        excluded_categories: excluded.iter().map(|s| (*s).to_owned()).collect(),
        disable_input_check: input_off,
        disable_output_check: output_off,
    };
    let lg = LlamaGuard::new(config, "llama_guard_shield").unwrap();
    let safety = MetaReferenceSafety::new("safety", Some(lg), None, Some(table));
    let shield = super::shield_def(LLAMA_GUARD, JsonObject::new()).with_provider("safety");
    Harness { guard, safety, shield }
}

impl Harness {
    async fn run(&self, messages: Vec<Message>) -> Result<RunShieldResponse> {
        self.safety.run_shield(&self.shield, messages, JsonObject::new(), &RequestContext::default()).await
    }
    fn prompt(&self, i: usize) -> String {
        let prompts = self.guard.requests();
        let req = &prompts[i];
        assert_eq!(req.messages.len(), 1);
        assert!(matches!(req.messages[0], Message::User(_)));
        req.messages[0].content().as_text(" ")
    }
    fn calls(&self) -> usize {
        self.guard.requests().len()
    }
}

fn user(t: &str) -> Message {
    Message::User(UserMessage { role: UserRole::default(), content: t.into(), context: None })
}

fn assistant(t: &str) -> Message {
    Message::Assistant(CompletionMessage {
        role: AssistantRole::default(),
        content: t.into(),
        stop_reason: StopReason::EndOfTurn,
        tool_calls: vec![],
    })
}

const EXPECTED_PROMPT: &str = "Task: Check if there is unsafe content in 'User' messages in conversations according our safety policy with the below categories.

<BEGIN UNSAFE CONTENT CATEGORIES>
S1: Violent Crimes.
S2: Non-Violent Crimes.
S3: Sex Crimes.
S4: Child Exploitation.
S5: Defamation.
S6: Specialized Advice.
S7: Privacy.
S8: Intellectual Property.
S9: Indiscriminate Weapons.
S10: Hate.
S11: Self-Harm.
S12: Sexual Content.
S13: Elections.
<END UNSAFE CONTENT CATEGORIES>

<BEGIN CONVERSATION>

User: How do I bake bread?

<END CONVERSATION>

Provide your safety assessment for ONLY THE LAST User message in the above conversation:
 - First line must read 'safe' or 'unsafe'.
 - If unsafe, a second line must include a comma-separated list of violated categories.";

#[tokio::test]
async fn a_safe_answer_is_no_violation_and_the_prompt_is_upstreams() {
    let h = harness("Llama-Guard-3-1B", &[], false, false, &["safe"]).await;
    let r = h.run(vec![user("How do I bake bread?")]).await.unwrap();
    assert_eq!(r.violation, None);
    assert_eq!(h.prompt(0), EXPECTED_PROMPT);
    assert_eq!(h.guard.requests()[0].model, "Llama-Guard-3-1B");
}

#[tokio::test]
async fn every_category_code_becomes_an_error_violation() {
    let replies: Vec<String> = CATEGORIES.iter().map(|(c, _)| format!("unsafe\n{c}")).collect();
    let replies: Vec<&str> = replies.iter().map(String::as_str).collect();
    let h = harness("Llama-Guard-3-8B", &[], false, false, &replies).await;
    for (code, _) in CATEGORIES {
        let v = h.run(vec![user("something")]).await.unwrap().violation.expect(code);
        assert_eq!(v.violation_level, ViolationLevel::Error);
        assert_eq!(v.user_message.as_deref(), Some(CANNED_RESPONSE));
        assert_eq!(v.metadata.len(), 1);
        assert_eq!(v.metadata["violation_type"], code);
    }
    assert!(h.prompt(0).contains("S14: Code Interpreter Abuse.\n<END UNSAFE CONTENT CATEGORIES>"));
}

#[tokio::test]
async fn excluded_categories_leave_the_prompt_and_do_not_count() {
    let h =
        harness("Llama-Guard-3-1B", &["S1", "S12"], false, false, &["unsafe\nS12", "unsafe\nS1,S12", "unsafe\nS1,S2"])
            .await;
    assert_eq!(h.run(vec![user("a")]).await.unwrap().violation, None);
    assert_eq!(h.run(vec![user("b")]).await.unwrap().violation, None);
    let v = h.run(vec![user("c")]).await.unwrap().violation.unwrap();
    assert_eq!(v.metadata["violation_type"], "S1,S2");
    let p = h.prompt(0);
    assert!(!p.contains("S1: ") && !p.contains("S12: ") && p.contains("\nS2: Non-Violent Crimes.\n"), "{p}");
}

#[tokio::test]
async fn multi_turn_conversations_judge_the_last_speaker() {
    let h = harness("Llama-Guard-3-1B", &[], false, false, &["unsafe\nS2", "safe"]).await;
    let conversation = vec![
        Message::System(SystemMessage { role: SystemRole::default(), content: "Be nice.".into() }),
        user("Hi"),
        assistant("Hello! How can I help?"),
        user("Tell me about locks."),
        assistant("Here is how to pick one."),
    ];
    let v = h.run(conversation).await.unwrap().violation.unwrap();
    assert_eq!(v.metadata["violation_type"], "S2");
    let p = h.prompt(0);
    // The system prompt became a user message, then the first of two user messages was dropped.
    assert!(p.starts_with("Task: Check if there is unsafe content in 'Assistant' messages"), "{p}");
    assert!(p.contains(
        "<BEGIN CONVERSATION>\n\nUser: Hi\n\nAssistant: Hello! How can I help?\n\nUser: Tell me about locks.\n\nAssistant: Here is how to pick one.\n\n<END CONVERSATION>"
    ), "{p}");
    assert!(p.contains("ONLY THE LAST Assistant message"));
    assert!(!p.contains("Be nice."));
    // Two user messages in a row after the start are refused.
    let e = h.run(vec![user("a"), assistant("b"), user("c"), user("d")]).await.unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("alternate"), "{e}");
    assert_eq!(h.calls(), 1);
}

#[tokio::test]
async fn malformed_answers_are_errors_not_safe() {
    let answers = ["I cannot judge this.", "unsafe", "UNSAFE\nS1", "unsafe\nS1\nextra", ""];
    let h = harness("Llama-Guard-3-1B", &[], false, false, &answers).await;
    for a in answers {
        let e = h.run(vec![user("x")]).await.unwrap_err();
        assert_eq!(e.status_code(), 502, "{a:?}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("guard model `Llama-Guard-3-1B`") && msg.contains("llama_guard"), "{msg}");
    }
}

#[tokio::test]
async fn disabled_checks_skip_the_guard() {
    let h = harness("Llama-Guard-3-1B", &[], true, false, &["unsafe\nS1"]).await;
    assert_eq!(h.run(vec![user("x")]).await.unwrap().violation, None);
    assert_eq!(h.calls(), 0);
    assert!(h.run(vec![user("x"), assistant("y")]).await.unwrap().violation.is_some());
    let h = harness("Llama-Guard-3-1B", &[], false, true, &["unsafe\nS1"]).await;
    assert_eq!(h.run(vec![user("x"), assistant("y")]).await.unwrap().violation, None);
    assert!(h.run(vec![user("x")]).await.unwrap().violation.is_some());
}

#[tokio::test]
async fn the_vision_guard_gets_the_latest_user_image_first() {
    let h = harness("Llama-Guard-3-11B-Vision", &[], false, false, &["safe"]).await;
    let image: InterleavedTextMedia =
        serde_json::from_value(serde_json::json!([{"image": {"uri": "https://example.com/a.png"}}, "what is this?"]))
            .unwrap();
    let with_image = Message::User(UserMessage { role: UserRole::default(), content: image, context: None });
    h.run(vec![with_image]).await.unwrap();
    let prompts = h.guard.requests();
    let InterleavedTextMedia::List(items) = prompts[0].messages[0].content() else { panic!("not a list") };
    assert_eq!(items.len(), 2);
    assert!(matches!(items[0], crate::types::common::MediaItem::Image(_)));
}

#[tokio::test]
async fn an_unserved_guard_model_and_unknown_shield_types_are_clear_errors() {
    let h = harness("Llama-Guard-3-1B", &[], false, false, &[]).await;
    let lg = LlamaGuard::new(
        LlamaGuardConfig {
            model: "Llama-Guard-3-8B".into(),
            excluded_categories: vec![],
            disable_input_check: false,
            disable_output_check: false,
        },
        "x",
    )
    .unwrap();
    let table = h.safety.models_for_tests();
    let other = MetaReferenceSafety::new("safety", Some(lg), None, table);
    let e =
        other.run_shield(&h.shield, vec![user("x")], JsonObject::new(), &RequestContext::default()).await.unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert!(e.to_string().contains("Llama-Guard-3-8B") && e.to_string().contains("Llama-Guard-3-1B"), "{e}");
    let code = super::shield_def("code_scanner", JsonObject::new()).with_provider("safety");
    let e = h.safety.register_shield(&code).await.unwrap_err().to_string();
    assert!(e.contains("`code_scanner`") && e.contains("serves: llama_guard"), "{e}");
}
