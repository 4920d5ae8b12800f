//! `hearth serve` driven by the clients people point at it: the official `openai` Python
//! package and LangChain's OpenAI chat model as an agent framework (tests/clients/openai_driver.py,
//! the versions pinned in requirements.txt, installed from PyPI into target/tmp on first use)
//! and curl. Temperature-0 answers must be
//! `hearth run --temp 0`'s, whole, streamed and under 100 requests from 8 clients at once
//! (the same question, whole or streamed: after the first, each reuses the cached prompt).

mod common;

use common::server::{Server, run_temp0};
use std::path::{Path, PathBuf};
use std::process::Command;

const QUESTION: &str = "What is the capital of France?";
const PROMPT: &str = "The three primary colors are";
const MAX_TOKENS: usize = 8;

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A folder the pinned openai package is installed in (once per requirements file), for
/// python3's PYTHONPATH.
fn openai_site() -> PathBuf {
    let requirements_path = manifest_path("tests/clients/requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path).expect("tests/clients/requirements.txt");
    let site = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openai-client");
    let marker = site.join("hearth-requirements.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(requirements.as_str()) {
        return site;
    }
    let _ = std::fs::remove_dir_all(&site);
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", "--target"])
        .arg(&site)
        .arg("-r")
        .arg(&requirements_path)
        .output()
        .expect("python3 runs (the openai client tests need Python 3 with pip)");
    assert!(
        out.status.success(),
        "installing the openai client from PyPI failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&marker, &requirements).expect("the install marker");
    site
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("text expected, got {v}"))
}

#[test]
fn the_official_openai_client_gets_run_s_answers_alone_and_with_8_clients_at_once() {
    let want_chat = run_temp0(QUESTION, MAX_TOKENS, &[]);
    let want_completion = run_temp0(PROMPT, MAX_TOKENS, &["--raw"]);
    // A stop string from inside the answer: the answer must end just before it.
    let stop = want_chat.split_inclusive(' ').nth(2).map(|w| format!(" {}", w.trim())).expect("a three-word answer");
    let want_stopped = &want_chat[..want_chat.find(&stop).expect("the stop string is in the answer")];

    let server = Server::start(&["--api-key", "sesame", "--queue", "16"]);
    let args = ["--base-url", &server.base_url(), "--api-key", "sesame", "--question", QUESTION, "--prompt", PROMPT];
    let max_tokens = MAX_TOKENS.to_string();
    let out = Command::new("python3")
        .arg(manifest_path("tests/clients/openai_driver.py"))
        .args(args)
        .args(["--stop", &stop, "--max-tokens", &max_tokens, "--clients", "8", "--requests", "100"])
        .env("PYTHONPATH", openai_site())
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the openai driver failed:\n{stderr}");
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the driver prints JSON");

    assert_eq!(text(&seen["chat"]["text"]), want_chat);
    let generated = seen["chat"]["usage"]["completion_tokens"].as_u64().expect("usage");
    let finish = if generated == MAX_TOKENS as u64 { "length" } else { "stop" };
    assert_eq!(seen["chat"]["finish_reason"], finish, "{generated} tokens");
    let pieces = seen["chat_stream"]["pieces"].as_array().expect("pieces");
    assert!(pieces.len() > 1, "the answer arrives in pieces: {pieces:?}");
    assert_eq!(pieces.iter().map(text).collect::<String>(), want_chat);
    assert_eq!(seen["chat_stream"]["finish_reason"], finish);
    assert_eq!(seen["chat_stream"]["usage"], seen["chat"]["usage"], "the usage chunk include_usage asks for");
    assert_eq!(text(&seen["chat_stop"]["text"]), want_stopped, "stopped before {stop:?}");
    assert_eq!(seen["chat_stop"]["finish_reason"], "stop");
    assert_eq!(seen["chat_seeded"][0], seen["chat_seeded"][1], "the same seed samples the same answer");

    assert_eq!(text(&seen["completion"]["text"]), want_completion);
    let pieces = seen["completion_stream"]["pieces"].as_array().expect("pieces");
    assert_eq!(pieces.iter().map(text).collect::<String>(), want_completion);

    // Log-probabilities as the client's own types read them: greedy picks each step's most likely.
    let steps = seen["chat_logprobs"].as_array().expect("chat logprobs");
    assert_eq!(steps.iter().map(|s| text(&s["token"])).collect::<String>(), want_chat);
    for step in steps {
        assert_eq!(step["top"].as_array().map(Vec::len), Some(2), "{step}");
        assert_eq!(step["logprob"], step["top"][0], "{step}");
    }
    let tokens = seen["completion_logprobs"]["tokens"].as_array().expect("completion tokens");
    assert_eq!(tokens.iter().map(text).collect::<String>(), want_completion);
    assert_eq!(seen["completion_logprobs"]["token_logprobs"].as_array().map(Vec::len), Some(tokens.len()));

    // Structured output through the client's own helpers: parse() validated the answer into its
    // Pydantic model (a refusal or a validation error would show here), json_object parses, a
    // forced call names the tool with arguments under its schema, whole and streamed (assembled
    // by the client), and the tool's answer goes back for a text reply.
    let structured = &seen["structured"];
    assert!(structured["parsed"]["city"].is_string(), "{structured}");
    assert!(["France", "Germany", "Italy"].contains(&text(&structured["parsed"]["country"])), "{structured}");
    let object: serde_json::Value = serde_json::from_str(text(&structured["json_object"])).expect("JSON");
    assert!(object.is_object(), "{structured}");
    for key in ["tool_call", "tool_call_stream"] {
        let call = &structured[key];
        assert_eq!(call["finish_reason"], "tool_calls", "{key}: {call}");
        assert_eq!(call["name"], "get_weather", "{key}: {call}");
        assert!(call["arguments"]["city"].is_string(), "{key}: {call}");
    }
    let answered = &structured["tool_loop"];
    assert!(answered["content"].is_string() && answered["finish_reason"] != "tool_calls", "{answered}");

    // An agent framework's two-step loop (LangChain's ChatOpenAI, bind_tools): the forced first
    // step is a call it parses into its own tool-call objects; the tool's answer goes back and a
    // final reply comes.
    let agent = &seen["agent"];
    let calls = agent["calls"].as_array().expect("LangChain's tool calls");
    assert!(!calls.is_empty() && calls.iter().all(|c| c["name"] == "get_weather"), "{agent}");
    assert!(calls[0]["args"]["city"].is_string(), "{agent}");
    assert!(agent["final_content"].is_string() && agent["final_finish_reason"].is_string(), "{agent}");

    assert_eq!(seen["bad_max_tokens"]["status"], 400, "{}", seen["bad_max_tokens"]);
    assert!(text(&seen["bad_max_tokens"]["message"]).contains("max_tokens"));
    assert_eq!(seen["bad_key"]["status"], 401);

    let answers = seen["concurrent"].as_array().expect("the concurrent answers");
    assert_eq!(answers.len(), 100);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(text(&answer[1]), want_chat, "request {i} ({})", answer[0]);
    }
    let health = server.health();
    assert_eq!((health["failed"].as_u64(), health["rejected"].as_u64()), (Some(0), Some(0)), "{health}");
}

/// curl with the given arguments against the server; its stdout.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(["--silent", "--show-error"]).args(args).output().expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_gets_whole_and_streamed_answers_and_errors() {
    let want = run_temp0(QUESTION, MAX_TOKENS, &[]);
    let server = Server::start(&[]);
    let url = format!("{}/v1/chat/completions", server.base_url());
    let body = serde_json::json!({
        "model": "any",
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
    });
    let json_header = "Content-Type: application/json";
    let whole: serde_json::Value =
        serde_json::from_str(&curl(&[&url, "-H", json_header, "-d", &body.to_string()])).expect("a JSON answer");
    assert_eq!(text(&whole["choices"][0]["message"]["content"]), want);

    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let events = curl(&["--no-buffer", &url, "-H", json_header, "-d", &streamed.to_string()]);
    let data: Vec<&str> = events.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{events}");
    let joined: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<serde_json::Value>(d).expect("a JSON event"))
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(joined, want);

    let status_and_body = curl(&["--write-out", "\n%{http_code}", &url, "-H", json_header, "-d", "{\"messages\": 3}"]);
    let (error, status) = status_and_body.rsplit_once('\n').expect("a status line");
    assert_eq!(status, "400");
    let error: serde_json::Value = serde_json::from_str(error).expect("an OpenAI error body");
    assert!(error["error"]["message"].is_string(), "{error}");
}
