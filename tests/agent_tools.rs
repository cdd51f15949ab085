//! The agents' built-in tools. Web search (Brave, Bing) and Wolfram Alpha run against fakes on
//! 127.0.0.1 that speak each service's documented request and answer format; the code
//! interpreter runs real Python in the real bubblewrap sandbox, and the tests try to break out
//! of it: reading files outside its directory, opening sockets, fork bombs, outliving its time
//! limit, eating memory.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
#![allow(clippy::panic, reason = "a panic is a failed test")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use llama_stack_rs::agents::tools::{self, Tool, ToolContext, ToolOutput, ToolSettings};
use llama_stack_rs::error::Error;
use llama_stack_rs::types::agents::AgentTool;
use llama_stack_rs::types::common::{InterleavedTextMedia, JsonObject, ToolCall};
use llama_stack_rs::types::memory::DocumentContent;
use serde_json::{Value, json};

type Params = HashMap<String, String>;

/// What the fake saw of each request: its query parameters and headers.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(Params, Params)>>>);

impl Seen {
    fn last(&self) -> (Params, Params) {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

fn record(seen: &Seen, q: HashMap<String, String>, headers: &HeaderMap) {
    let headers =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    seen.0.lock().unwrap().push((q, headers));
}

/// Brave Search API: `GET /res/v1/web/search?q=...` with `X-Subscription-Token`.
async fn brave(
    State(seen): State<Seen>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    record(&seen, q.clone(), &headers);
    if headers.get("x-subscription-token").is_none_or(|v| v != "brave-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "status": 401}})),
        );
    }
    let query = q.get("q").cloned().unwrap_or_default();
    (
        StatusCode::OK,
        Json(json!({
            "type": "search",
            "query": {"original": query, "show_strict_warning": false, "is_navigational": false},
            "mixed": {"type": "mixed", "main": [
                {"type": "web", "index": 0, "all": false},
                {"type": "news", "all": true},
                {"type": "web", "index": 1, "all": false},
                {"type": "web", "index": 2, "all": false}
            ], "top": [], "side": []},
            "web": {"type": "search", "family_friendly": true, "results": [
                {"title": "Llama - Wikipedia", "url": "https://en.wikipedia.org/wiki/Llama", "is_source_local": false,
                 "description": "The <strong>llama</strong> is a domesticated South American camelid.", "page_age": "2024-09-30",
                 "type": "search_result", "subtype": "generic", "profile": {"name": "Wikipedia"}, "language": "en",
                 "extra_snippets": ["Llamas are social animals."]},
                {"title": "Llama facts", "url": "https://example.org/llama", "description": "Facts.", "type": "search_result", "age": "1 day"},
                {"title": "Third", "url": "https://example.org/3", "description": "Not shown.", "type": "search_result"}
            ]},
            "news": {"type": "news", "results": [
                {"title": "Llamas in the news", "url": "https://news.example/llama", "description": "News.", "age": "2 hours ago",
                 "breaking": false, "type": "news_result"}
            ]}
        })),
    )
}

/// Bing Web Search API v7: `GET /v7.0/search?q=...` with `Ocp-Apim-Subscription-Key`.
async fn bing(
    State(seen): State<Seen>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    record(&seen, q.clone(), &headers);
    let query = q.get("q").cloned().unwrap_or_default();
    Json(json!({
        "_type": "SearchResponse",
        "queryContext": {"originalQuery": query},
        "webPages": {"webSearchUrl": "https://www.bing.com/search?q=llama", "totalEstimatedMatches": 1000, "value": [
            {"id": "https://api.bing.microsoft.com/api/v7/#WebPages.0", "name": "Llama - Wikipedia",
             "url": "https://en.wikipedia.org/wiki/Llama", "isFamilyFriendly": true, "displayUrl": "en.wikipedia.org/wiki/Llama",
             "snippet": "The <b>llama</b> is a domesticated South American camelid.", "language": "en"}
        ]},
        "news": {"id": "https://api.bing.microsoft.com/api/v7/#News", "value": [
            {"name": "Llama news", "url": "https://news.example/l", "description": "Café llamas.", "datePublished": "2024-10-01T00:00:00.0000000Z"}
        ]},
        "rankingResponse": {"mainline": {"items": []}}
    }))
}

/// Wolfram|Alpha Full Results API: `GET /v2/query?input=...&appid=...&output=json`.
async fn wolfram(
    State(seen): State<Seen>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    record(&seen, q.clone(), &headers);
    Json(json!({"queryresult": {
        "success": true, "error": false, "numpods": 3, "datatypes": "Math", "timedout": "", "timedoutpods": "",
        "timing": 0.6, "parsetiming": 0.1, "parsetimedout": false, "recalculate": "", "id": "MSP1", "host": "https://www6b3.wolframalpha.com",
        "server": "7", "related": "", "version": "2.6", "inputstring": q.get("input").cloned().unwrap_or_default(),
        "pods": [
            {"title": "Input", "scanner": "Identity", "id": "Input", "position": 100, "error": false, "numsubpods": 1,
             "subpods": [{"title": "", "plaintext": "integral x^2 dx"}], "expressiontypes": {"name": "Default"}},
            {"title": "Result", "scanner": "Integral", "id": "IndefiniteIntegral", "position": 200, "error": false, "numsubpods": 1,
             "primary": true, "subpods": [{"title": "", "plaintext": "x^3/3 + constant"}], "states": [{"name": "Step-by-step solution"}]},
            {"title": "Plots of the integral", "scanner": "Integral", "id": "Plot", "position": 300, "subpods": []}
        ],
        "assumptions": {"type": "Clash", "word": "x"}
    }}))
}

async fn start_fakes() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/res/v1/web/search", get(brave))
        .route("/v7.0/search", get(bing))
        .route("/v2/query", get(wolfram))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn settings_for(base: &str) -> ToolSettings {
    ToolSettings::from_config(&object(json!({"tools": {
        "brave_url": format!("{base}/res/v1/web/search"),
        "bing_url": format!("{base}/v7.0/search"),
        "wolfram_url": format!("{base}/v2/query"),
    }})))
    .unwrap()
}

fn tool(def: Value, settings: &ToolSettings) -> Arc<dyn Tool> {
    let def: AgentTool = serde_json::from_value(def).unwrap();
    tools::builtin(&def, settings).unwrap().unwrap()
}

fn call(tool_name: &str, args: &Value) -> ToolCall {
    serde_json::from_value(json!({"call_id": "call-1", "tool_name": tool_name, "arguments": args})).unwrap()
}

fn text(out: &ToolOutput) -> String {
    match &out.response.content {
        InterleavedTextMedia::Text(t) => t.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn brave_search_asks_brave_and_keeps_the_top_three_results() {
    let (base, seen) = start_fakes().await;
    let settings = settings_for(&base);
    let t = tool(json!({"type": "brave_search", "api_key": "brave-key", "engine": "brave"}), &settings);
    assert_eq!(t.name(), "brave_search");
    let out =
        t.run(&call("brave_search", &json!({"query": "what is a llama"})), &ToolContext::default()).await.unwrap();
    let (q, headers) = seen.last();
    assert_eq!(q.get("q").map(String::as_str), Some("what is a llama"));
    assert_eq!(headers.get("x-subscription-token").map(String::as_str), Some("brave-key"));
    assert_eq!(headers.get("accept").map(String::as_str), Some("application/json"));
    assert_eq!(out.response.call_id, "call-1");
    assert_eq!(serde_json::to_value(&out.response.tool_name).unwrap(), json!("brave_search"));
    assert!(out.attachments.is_empty());
    // Python's json.dumps layout, keys in the answer's order, the three first ranked results.
    assert_eq!(
        text(&out),
        concat!(
            r#"{"query": "what is a llama", "top_k": ["#,
            r#"{"title": "Llama - Wikipedia", "url": "https://en.wikipedia.org/wiki/Llama", "description": "The <strong>llama</strong> is a domesticated South American camelid.", "type": "search_result", "extra_snippets": ["Llamas are social animals."]}, "#,
            r#"[{"title": "Llamas in the news", "url": "https://news.example/llama", "description": "News.", "type": "news_result"}], "#,
            r#"{"title": "Llama facts", "url": "https://example.org/llama", "description": "Facts.", "type": "search_result"}]}"#
        )
    );

    // A key the service refuses is an upstream error naming the tool and the answer.
    let t = tool(json!({"type": "brave_search", "api_key": "wrong"}), &settings);
    let err = t.run(&call("brave_search", &json!({"query": "x"})), &ToolContext::default()).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("brave_search") && msg.contains("401") && msg.contains("SUBSCRIPTION_TOKEN_INVALID"), "{msg}");
}

#[tokio::test]
async fn bing_engine_asks_bing_with_its_parameters() {
    let (base, seen) = start_fakes().await;
    let t = tool(json!({"type": "brave_search", "api_key": "bing-key", "engine": "bing"}), &settings_for(&base));
    assert_eq!(t.name(), "brave_search");
    let out = t.run(&call("brave_search", &json!({"query": "llama news"})), &ToolContext::default()).await.unwrap();
    let (q, headers) = seen.last();
    for (k, v) in [("q", "llama news"), ("count", "3"), ("textDecorations", "True"), ("textFormat", "HTML")] {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(headers.get("ocp-apim-subscription-key").map(String::as_str), Some("bing-key"));
    assert_eq!(
        text(&out),
        concat!(
            r#"{"query": "llama news", "top_k": [{"name": "Llama - Wikipedia", "url": "https://en.wikipedia.org/wiki/Llama", "snippet": "The <b>llama</b> is a domesticated South American camelid."}, "#,
            r#"[{"name": "Llama news", "url": "https://news.example/l", "description": "Caf\u00e9 llamas."}]]}"#
        )
    );
}

#[tokio::test]
async fn wolfram_alpha_gets_plaintext_json_and_cuts_after_the_result() {
    let (base, seen) = start_fakes().await;
    let t = tool(json!({"type": "wolfram_alpha", "api_key": "wa-app-id"}), &settings_for(&base));
    assert_eq!(t.name(), "wolfram_alpha");
    let out = t.run(&call("wolfram_alpha", &json!({"query": "integrate x^2"})), &ToolContext::default()).await.unwrap();
    let (q, _) = seen.last();
    for (k, v) in [("input", "integrate x^2"), ("appid", "wa-app-id"), ("format", "plaintext"), ("output", "json")] {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(
        text(&out),
        concat!(
            r#"{"queryresult": {"success": true, "inputstring": "integrate x^2", "pods": ["#,
            r#"{"title": "Input", "subpods": [{"title": "", "plaintext": "integral x^2 dx"}]}, "#,
            r#"{"title": "Result", "primary": true, "subpods": [{"title": "", "plaintext": "x^3/3 + constant"}]}]}}"#
        )
    );
}

#[tokio::test]
async fn web_tools_report_bad_calls_and_unreachable_services() {
    // Nothing listens on the discard port.
    let settings = settings_for("http://127.0.0.1:9");
    let t = tool(json!({"type": "wolfram_alpha", "api_key": "k"}), &settings);
    let err = t.run(&call("wolfram_alpha", &json!({"query": "x"})), &ToolContext::default()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("wolfram_alpha") && err.to_string().contains("127.0.0.1:9"), "{err}");
    let err = t.run(&call("wolfram_alpha", &json!({"q": "x"})), &ToolContext::default()).await.unwrap_err();
    assert!(err.to_string().contains("`query`"), "{err}");
    let err = t.run(&call("wolfram_alpha", &json!({"query": 3})), &ToolContext::default()).await.unwrap_err();
    assert!(err.to_string().contains("`query`") && err.to_string().contains("string"), "{err}");
}

#[tokio::test]
async fn missing_api_keys_are_named() {
    let settings = ToolSettings::default();
    for (def, tool) in [
        (json!({"type": "brave_search", "api_key": "", "engine": "brave"}), "brave_search"),
        (json!({"type": "brave_search", "api_key": "", "engine": "bing"}), "brave_search"),
        (json!({"type": "wolfram_alpha", "api_key": ""}), "wolfram_alpha"),
    ] {
        let def: AgentTool = serde_json::from_value(def).unwrap();
        let err = tools::builtin(&def, &settings).err().unwrap();
        assert_eq!(err.status_code(), 400);
        let msg = err.to_string();
        assert!(msg.contains(tool) && msg.contains("api_key"), "{msg}");
    }
}

#[tokio::test]
async fn photogen_says_no_image_was_made() {
    let t = tool(json!({"type": "photogen"}), &ToolSettings::default());
    let out =
        t.run(&call("photogen", &json!({"query": "a llama on the moon"})), &ToolContext::default()).await.unwrap();
    assert!(text(&out).contains("no image"), "{}", text(&out));
    assert!(out.attachments.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The code interpreter.

fn sandbox_settings(extra: Value) -> ToolSettings {
    let mut ci = json!({"timeout": 20});
    if let (Some(ci), Value::Object(extra)) = (ci.as_object_mut(), extra) {
        ci.extend(extra);
    }
    ToolSettings::from_config(&object(json!({"tools": {"code_interpreter": ci}}))).unwrap()
}

async fn run_code(settings: &ToolSettings, dir: &Path, code: &str) -> (String, ToolOutput) {
    let t = tool(json!({"type": "code_interpreter"}), settings);
    assert_eq!(t.name(), "code_interpreter");
    let ctx = ToolContext { work_dir: dir.to_path_buf(), ..ToolContext::default() };
    let out = t.run(&call("code_interpreter", &json!({"code": code})), &ctx).await.unwrap();
    (text(&out), out)
}

#[tokio::test]
async fn code_runs_and_reports_output_and_errors_in_the_reference_format() {
    let dir = tempfile::tempdir().unwrap();
    let settings = sandbox_settings(json!({}));
    let (text, _) =
        run_code(&settings, dir.path(), "import random\nprint(sum(range(10)))\nprint(random.random())").await;
    // random is seeded with 0, like the reference interpreter.
    assert_eq!(text, "completed\n[stdout]\n45\n0.8444218515250481\n[/stdout]");
    let (text, _) = run_code(&settings, dir.path(), "import numpy as np\nprint(np.random.rand())").await;
    assert_eq!(text, "completed\n[stdout]\n0.5488135039273248\n[/stdout]");

    let (text, _) = run_code(&settings, dir.path(), "x = 1\nprint('before')\ny = x / 0\n").await;
    assert_eq!(
        text,
        "completed\n[stdout]\nbefore\n[/stdout]\n[stderr]\nTraceback (most recent call last):\n  line 3, in <module>\nZeroDivisionError: division by zero\n[/stderr]"
    );
    let (text, _) = run_code(&settings, dir.path(), "def f(:\n").await;
    assert!(text.starts_with("completed\n[stderr]\nline 1\n") && text.contains("SyntaxError"), "{text}");
}

#[tokio::test]
async fn code_sees_its_directory_and_attachments_but_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("session");
    std::fs::create_dir(&work).unwrap();
    // The executor materialises attachments as files in the working directory.
    std::fs::write(work.join("data.csv"), "a,b\n1,2\n3,4\n").unwrap();
    let repo_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    assert!(repo_file.exists());
    let code = format!(
        r#"
import os
rows = open("data.csv").read().splitlines()
print("rows", len(rows))
open("out.txt", "w").write("written in the sandbox")
for path in ["/etc/shadow", "/etc/passwd", {repo:?}, "/root", "/work", "/home", "/proc/1/root/etc/shadow"]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path).read()
        print("READ", path)
    except OSError as e:
        print("denied", path, type(e).__name__)
# The directories above the working directory are empty shells.
print("parent holds", os.listdir({parent:?}))
print("uid", os.getuid())
"#,
        repo = repo_file.display().to_string(),
        parent = dir.path().display().to_string(),
    );
    let (text, _) = run_code(&sandbox_settings(json!({})), &work, &code).await;
    assert!(text.contains("rows 3"), "{text}");
    assert!(!text.contains("READ"), "{text}");
    assert_eq!(text.matches("denied").count(), 7, "{text}");
    assert!(text.contains("parent holds ['session']"), "{text}");
    assert!(!text.contains("uid 0\n"), "the program runs as root: {text}");
    assert_eq!(std::fs::read_to_string(work.join("out.txt")).unwrap(), "written in the sandbox");

    // A second run (another uid) can still change what the first one wrote.
    let (text, _) =
        run_code(&sandbox_settings(json!({})), &work, "open('out.txt', 'a').write('!')\nprint(open('out.txt').read())")
            .await;
    assert!(text.contains("written in the sandbox!"), "{text}");
}

#[tokio::test]
async fn code_cannot_open_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let code = format!(
        r#"
import socket
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("::1", {port})]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("CONNECTED", host)
    except OSError as e:
        print("blocked", host, type(e).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("RESOLVED")
except OSError as e:
    print("no dns", type(e).__name__)
"#
    );
    let (text, _) = run_code(&sandbox_settings(json!({})), dir.path(), &code).await;
    assert!(!text.contains("CONNECTED") && !text.contains("RESOLVED"), "{text}");
    assert_eq!(text.matches("blocked").count(), 3, "{text}");
    // The listener on the host never saw a connection.
    assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
}

/// Processes whose command line holds `token`.
fn processes_with(token: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(token))
        .collect()
}

#[tokio::test]
async fn a_fork_bomb_hits_the_process_limit() {
    let dir = tempfile::tempdir().unwrap();
    let settings = sandbox_settings(json!({"max_processes": 8, "timeout": 10}));
    let code = r#"
import os, time
children = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError as e:
        print("fork refused:", type(e).__name__)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children += 1
print("children", children)
"#;
    let (text, _) = run_code(&settings, dir.path(), code).await;
    assert!(text.contains("fork refused: BlockingIOError"), "{text}");
    let children: u32 = text.split("children ").nth(1).unwrap().lines().next().unwrap().trim().parse().unwrap();
    assert!(children < 8, "{text}");

    // The real thing: every process forks forever. The run ends (at its time limit at most)
    // and leaves no process behind.
    let token = format!("forkbomb{}", std::process::id());
    let settings = sandbox_settings(json!({"max_processes": 16, "timeout": 3}));
    let code =
        format!("import os\n# {token}\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
    let t = tool(json!({"type": "code_interpreter"}), &settings);
    let ctx = ToolContext { work_dir: dir.path().to_path_buf(), ..ToolContext::default() };
    let out = t.run(&call("code_interpreter", &json!({"code": code})), &ctx).await.unwrap();
    assert!(text_of(&out).starts_with("timeout") || text_of(&out).starts_with("completed"), "{}", text_of(&out));
    assert!(processes_with(&token).is_empty(), "{:?}", processes_with(&token));
}

fn text_of(out: &ToolOutput) -> String {
    text(out)
}

#[tokio::test]
async fn nothing_outlives_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("sleeper{}", std::process::id());
    let settings = sandbox_settings(json!({"timeout": 2}));
    // A child that ignores SIGTERM, leaves the session and closes its output, then a loop.
    let code = format!(
        r#"
import os, signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n# {token}\nwhile True: time.sleep(0.1)"],
                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("started", flush=True)
while True:
    pass
"#
    );
    let (text, _) = run_code(&settings, dir.path(), &code).await;
    assert_eq!(text, "timeout\n[stdout]\nTimed out\n[/stdout]\n[stderr]\nTimed out\n[/stderr]");
    // The sandbox's PID namespace is gone, and the child with it.
    let mut left = processes_with(&token);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = processes_with(&token);
    }
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn memory_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let settings = sandbox_settings(json!({"memory_mb": 256}));
    let code = "try:\n    b = bytearray(1024 * 1024 * 1024)\n    print('ALLOCATED')\nexcept MemoryError:\n    print('memory refused')\nsmall = bytearray(16 * 1024 * 1024)\nprint('small ok')";
    let (text, _) = run_code(&settings, dir.path(), code).await;
    assert_eq!(text, "completed\n[stdout]\nmemory refused\nsmall ok\n[/stdout]");
}

#[tokio::test]
async fn output_is_cut_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let settings = sandbox_settings(json!({"max_output_bytes": 1000}));
    let (text, _) = run_code(&settings, dir.path(), "print('x' * 100000)").await;
    assert!(text.contains("[output cut: 100001 bytes written, the first 1000 kept]"), "{text}");
    assert!(text.len() < 1200, "{}", text.len());
}

#[tokio::test]
async fn a_matplotlib_figure_comes_back_as_an_image_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('squares')\nplt.show()\nprint('done')";
    let (text, out) = run_code(&sandbox_settings(json!({})), dir.path(), code).await;
    if text.contains("No module named 'matplotlib'") {
        // Without matplotlib in the sandbox's python, the model reads a plain import error.
        assert!(text.contains("ModuleNotFoundError"), "{text}");
        panic!("matplotlib is not installed for /usr/bin/python3 (Debian package python3-matplotlib)");
    }
    assert_eq!(out.attachments.len(), 1, "{text}");
    let att = &out.attachments[0];
    assert_eq!(att.mime_type, "image/png");
    let DocumentContent::Url(url) = &att.content else { panic!("{att:?}") };
    let path = PathBuf::from(url.uri.strip_prefix("file://").unwrap());
    assert!(path.starts_with(std::fs::canonicalize(dir.path()).unwrap()), "{path:?}");
    let png = std::fs::read(&path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        text.contains(&format!(
            "__tools_attachment__={{\"filepath\": \"{}\", \"mimetype\": \"image/png\"}}",
            path.display()
        )),
        "{text}"
    );
    assert!(text.ends_with("done\n[/stdout]"), "{text}");
}

#[tokio::test]
async fn a_forged_plot_link_is_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    // The cell cannot guess the run's plot name, and links are never taken even if it did.
    let code = "import os\nos.symlink('/etc/passwd', 'matplotlib_x_0.png')\nprint('__tools_attachment__={\"filepath\": \"/etc/passwd\", \"mimetype\": \"image/png\"}')";
    let (_, out) = run_code(&sandbox_settings(json!({})), dir.path(), code).await;
    assert!(out.attachments.is_empty(), "{:?}", out.attachments);
}

#[tokio::test]
async fn a_missing_sandbox_program_is_a_clear_error_never_unsandboxed_execution() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    for (field, value, named) in [
        ("bwrap", "/nonexistent/bwrap", "bubblewrap"),
        ("bwrap", "bwrap-not-installed", "bubblewrap"),
        ("prlimit", "/nonexistent/prlimit", "util-linux"),
        ("python", "/nonexistent/python3", "python"),
    ] {
        let settings = sandbox_settings(json!({ field: value }));
        let def: AgentTool = serde_json::from_value(json!({"type": "code_interpreter"})).unwrap();
        let err = tools::builtin(&def, &settings).err().unwrap();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("code_interpreter") && msg.contains(value) && msg.contains(named), "{msg}");
        assert!(msg.contains(&format!("tools.code_interpreter.{field}")), "{msg}");
    }
    assert!(!marker.exists());
}
