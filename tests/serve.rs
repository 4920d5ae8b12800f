//! `hearth serve` driven over real sockets: the endpoints, streaming and not, the OpenAI-style
//! errors, concurrency through the one GPU queue, a client leaving mid-stream, and shutdown.

mod common;

use common::send_signal;
use common::server::{Server, run_temp0};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::time::Duration;

/// Long enough for any wait these tests make; a guard against hanging, not a speed check.
const PATIENCE: Duration = Duration::from_secs(300);

/// A text completion that counts on and on at temperature 0: it holds the GPU until it is
/// cancelled or reaches `max_tokens`.
fn counting(max_tokens: usize) -> String {
    format!(r#"{{"prompt": "1, 2, 3, 4, 5, 6,", "max_tokens": {max_tokens}, "temperature": 0, "stream": true}}"#)
}

/// Starts a streamed request and returns once its first event has arrived (it is running).
fn start_stream(server: &Server, body: &str) -> BufReader<TcpStream> {
    let mut reader = BufReader::new(server.send("POST", "/v1/completions", body, &[]));
    let mut line = String::new();
    while !line.starts_with("data: ") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended before its first event");
    }
    reader
}

fn rest_of(mut reader: BufReader<TcpStream>) -> String {
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    rest
}

const QUESTION: &str = "What is the capital of France?";

#[test]
fn chat_and_completions_answer_like_run_whole_and_streamed() {
    let server = Server::start(&[]);
    assert_eq!(server.request("GET", "/health", None, &[]).0, 200);
    let (status, models) = server.request("GET", "/v1/models", None, &[]);
    assert!(status == 200 && models.contains("\"object\":\"list\""), "{models}");

    let want = run_temp0(QUESTION, 24, &[]);
    let body =
        format!(r#"{{"messages": [{{"role": "user", "content": "{QUESTION}"}}], "temperature": 0, "max_tokens": 24}}"#);
    let (status, reply) = server.json("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], want.as_str());
    assert_eq!(reply["object"], "chat.completion");
    let usage = &reply["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    let streamed = body.replace("\"max_tokens\": 24", "\"max_tokens\": 24, \"stream\": true");
    let (status, events) = server.request("POST", "/v1/chat/completions", Some(&streamed), &[]);
    assert_eq!(status, 200);
    let mut text = String::new();
    let data: Vec<&str> = events.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    for chunk in &data[..data.len() - 1] {
        let v: serde_json::Value = serde_json::from_str(chunk).unwrap();
        text.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(text, want, "streamed pieces join to the whole answer");

    // The next turn of that conversation processes only what the KV cache does not hold.
    let cached_before = server.health()["prompt_tokens_cached"].as_u64().expect("a count");
    let next_turn = serde_json::json!({"messages": [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": want},
        {"role": "user", "content": "And of Germany?"}], "temperature": 0, "max_tokens": 4});
    let (status, reply) = server.json("/v1/chat/completions", &next_turn.to_string());
    assert_eq!(status, 200, "{reply}");
    let cached = server.health()["prompt_tokens_cached"].as_u64().expect("a count") - cached_before;
    let first_prompt = usage["prompt_tokens"].as_u64().expect("a count");
    assert!(cached >= first_prompt, "{cached} of the first turn's {first_prompt} prompt tokens reused");

    let (status, reply) =
        server.json("/v1/completions", r#"{"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0}"#);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    assert_eq!(reply["usage"]["completion_tokens"], 5);
}

#[test]
fn bad_requests_get_openai_errors_and_leave_the_server_working() {
    let server = Server::start(&["--ctx", "128"]);
    let long = "word ".repeat(300);
    let cases = [
        ("{not json", 400),
        (r#"{"prompt": 5}"#, 400),
        (r#"{"prompt": "hi", "max_tokens": 0}"#, 400),
        (r#"{"prompt": "hi", "max_tokens": -3}"#, 400),
        (r#"{"prompt": "hi", "temperature": "hot"}"#, 400),
        (r#"{"prompt": "hi", "n": 2}"#, 400),
        (r#"{"prompt": "hi", "presence_penalty": 3}"#, 400),
        // 1e39 is beyond f32: an infinite temperature.
        (r#"{"prompt": "hi", "temperature": 1e39}"#, 400),
        (&format!(r#"{{"prompt": "{long}"}}"#) as &str, 400),
    ];
    for (body, want) in cases {
        let (status, reply) = server.json("/v1/completions", body);
        assert_eq!(status, want, "{body}: {reply}");
        assert!(reply["error"]["message"].is_string(), "{reply}");
    }
    // Text that could not fit however it were tokenized is refused before it is tokenized.
    let huge = format!(r#"{{"prompt": "{}"}}"#, "a".repeat(200_000));
    let (status, reply) = server.json("/v1/completions", &huge);
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap_or("").contains("is at least"), "{reply}");
    assert_eq!(server.request("GET", "/nowhere", None, &[]).0, 404);
    // The model by its id, as clients look it up; another id, and embeddings, are refused.
    let (_, models) = server.request("GET", "/v1/models", None, &[]);
    let models: serde_json::Value = serde_json::from_str(&models).unwrap();
    let id = models["data"][0]["id"].as_str().expect("an id").to_string();
    let (status, card) = server.request("GET", &format!("/v1/models/{}", id.replace(' ', "%20")), None, &[]);
    assert_eq!(status, 200, "{card}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&card).unwrap()["id"], id.as_str());
    assert_eq!(server.request("GET", "/v1/models/gpt-4", None, &[]).0, 404);
    let (status, reply) = server.json("/v1/embeddings", r#"{"input": "hi"}"#);
    assert_eq!(status, 400, "{reply}");
    let (status, _) = server.json("/v1/completions", r#"{"prompt": "hi", "max_tokens": 2}"#);
    assert_eq!(status, 200, "a failed request leaves the next one unaffected");
}

/// The logprobs of a text completion's steps: (chosen, [top...]) per token.
fn step_logprobs(logprobs: &serde_json::Value) -> Vec<(f64, Vec<f64>)> {
    let chosen = logprobs["token_logprobs"].as_array().expect("token_logprobs");
    let tops = logprobs["top_logprobs"].as_array().expect("top_logprobs");
    assert_eq!(chosen.len(), tops.len(), "{logprobs}");
    let mut steps = Vec::new();
    for (c, top) in chosen.iter().zip(tops) {
        let mut top: Vec<f64> = top.as_object().expect("a map").values().map(|v| v.as_f64().unwrap()).collect();
        top.sort_by(|a, b| b.total_cmp(a));
        steps.push((c.as_f64().expect("a logprob"), top));
    }
    steps
}

#[test]
fn log_probabilities_match_the_float32_references_margins() {
    let server = Server::start(&[]);
    let reference = common::json("greedy_f32_reference.json");
    for r in reference["results"].as_array().expect("results") {
        let prompt = r["prompt"].as_str().expect("prompt");
        let margins: Vec<f64> = r["ref_margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap()).collect();
        // Before the reference's first near-tie, greedy picks its token and the top two are in its order.
        let steps = r["first_step_margin_lt_0.1"].as_u64().map_or(8, |s| s as usize).min(8);
        let body = format!(r#"{{"prompt": "{prompt}", "max_tokens": {steps}, "temperature": 0, "logprobs": 2}}"#);
        let (status, reply) = server.json("/v1/completions", &body);
        assert_eq!(status, 200, "{reply}");
        let logprobs = &reply["choices"][0]["logprobs"];
        let tokens: Vec<&str> = logprobs["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(tokens.concat(), reply["choices"][0]["text"].as_str().unwrap(), "{logprobs}");
        let got = step_logprobs(logprobs);
        assert_eq!(got.len(), steps, "{prompt:?}: {logprobs}");
        for (i, (chosen, top)) in got.iter().enumerate() {
            assert!(top.len() == 2 && top[0] <= 0.0 && top[0].exp() + top[1].exp() <= 1.0 + 1e-4, "{top:?}");
            assert_eq!(*chosen, top[0], "{prompt:?} step {i}: greedy takes the most likely token");
            // The top two logits' gap survives the log-softmax unchanged (lavapipe's f32 path
            // is within 1e-4 of the reference; temperature or penalties would move it far more).
            let gap = top[0] - top[1];
            assert!(
                (gap - margins[i]).abs() < 0.01,
                "{prompt:?} step {i}: gap {gap} vs the reference's {}",
                margins[i]
            );
        }
    }

    // Streamed, the chunks carry the same tokens; chat reports them per token with bytes.
    let body = r#"{"prompt": "Once upon a time,", "max_tokens": 6, "temperature": 0, "logprobs": 1}"#;
    let (_, whole) = server.json("/v1/completions", body);
    let stream_body = body.replace("}", r#", "stream": true}"#);
    let (status, events) = server.request("POST", "/v1/completions", Some(&stream_body), &[]);
    assert_eq!(status, 200, "{events}");
    let mut streamed = Vec::new();
    for line in events.lines().filter_map(|l| l.strip_prefix("data: {")) {
        let chunk: serde_json::Value = serde_json::from_str(&format!("{{{line}")).unwrap();
        if let Some(tokens) = chunk["choices"][0]["logprobs"]["tokens"].as_array() {
            streamed.extend(tokens.iter().map(|t| t.as_str().unwrap().to_string()));
        }
    }
    assert_eq!(serde_json::json!(streamed), whole["choices"][0]["logprobs"]["tokens"], "{events}");
    let chat = r#"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0,
        "logprobs": true, "top_logprobs": 3}"#;
    let (status, reply) = server.json("/v1/chat/completions", chat);
    assert_eq!(status, 200, "{reply}");
    let content = reply["choices"][0]["logprobs"]["content"].as_array().expect("content");
    assert_eq!(content.len() as u64, reply["usage"]["completion_tokens"].as_u64().unwrap(), "{reply}");
    let text: String = content.iter().map(|t| t["token"].as_str().unwrap()).collect();
    assert_eq!(text, reply["choices"][0]["message"]["content"].as_str().unwrap());
    assert!(content.iter().all(|t| t["top_logprobs"].as_array().unwrap().len() == 3 && t["bytes"].is_array()));

    for bad in [r#"{"prompt": "Hi", "logprobs": 21}"#, r#"{"prompt": "Hi", "logprobs": -1}"#] {
        assert_eq!(server.json("/v1/completions", bad).0, 400, "{bad}");
    }
    let (status, reply) =
        server.json("/v1/chat/completions", r#"{"messages": [{"role": "user", "content": "Hi"}], "top_logprobs": 2}"#);
    assert!(status == 400 && reply["error"]["message"].as_str().unwrap().contains("logprobs"), "{reply}");
}

#[test]
fn a_body_larger_than_the_context_could_use_is_refused_before_it_is_read() {
    let server = Server::start(&["--ctx", "128"]);
    // Announces 64 MB and sends none of it: the answer comes from the headers alone.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 67108864\r\n\r\n";
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).unwrap();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    // A body within the bound is read as before.
    let (status, _) = server.json("/v1/completions", r#"{"prompt": "hi", "max_tokens": 2}"#);
    assert_eq!(status, 200);
}

#[test]
fn an_api_key_is_required_when_set() {
    let server = Server::start(&["--api-key", "sesame"]);
    let refused = server.exchange("GET", "/v1/models", None, &[]);
    assert_eq!((refused.status, refused.header("WWW-Authenticate")), (401, Some("Bearer")), "{}", refused.head);
    assert_eq!(server.request("GET", "/v1/models", None, &["Authorization: Bearer wrong"]).0, 401);
    assert_eq!(server.request("GET", "/v1/models", None, &["Authorization: Bearer sesame"]).0, 200);
    assert_eq!(server.request("GET", "/health", None, &[]).0, 200);
}

#[test]
fn browsers_are_served_for_local_and_allowed_pages_only() {
    let server = Server::start(&["--api-key", "sesame", "--allow-origin", "https://chat.example.org"]);
    let key = "Authorization: Bearer sesame";
    let body = r#"{"prompt": "Hello", "max_tokens": 2}"#;
    // A browser asks before it sends a key: the preflight needs none.
    for origin in ["http://localhost:5173", "https://chat.example.org"] {
        let origin_header = format!("Origin: {origin}");
        let preflight = server.exchange(
            "OPTIONS",
            "/v1/completions",
            None,
            &[&origin_header, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization"],
        );
        assert_eq!(preflight.status, 204, "{}", preflight.head);
        assert_eq!(preflight.header("Access-Control-Allow-Origin"), Some(origin), "{}", preflight.head);
        let allowed_headers = preflight.header("Access-Control-Allow-Headers").unwrap_or("").to_lowercase();
        assert!(allowed_headers.contains("authorization"), "{}", preflight.head);

        let answer = server.exchange("POST", "/v1/completions", Some(body), &[&origin_header, key]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("Access-Control-Allow-Origin"), Some(origin), "{}", answer.head);
    }
    let streamed = body.replace("}", r#", "stream": true}"#);
    let answer = server.exchange("POST", "/v1/completions", Some(&streamed), &["Origin: http://127.0.0.1:3000", key]);
    assert!(answer.body.contains("data: [DONE]"), "{}", answer.body);
    assert_eq!(answer.header("Access-Control-Allow-Origin"), Some("http://127.0.0.1:3000"), "{}", answer.head);

    // Another site's page is refused before anything runs, even with the key.
    let completed = server.health()["completed"].clone();
    let refused = server.exchange("POST", "/v1/completions", Some(body), &["Origin: https://evil.example", key]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("--allow-origin https://evil.example"), "{}", refused.body);
    assert_eq!(refused.header("Access-Control-Allow-Origin"), None);
    assert_eq!(server.health()["completed"], completed, "the refused request did not run");
    // Clients that are not browsers send no Origin and are served as before.
    let plain = server.exchange("POST", "/v1/completions", Some(body), &[key]);
    assert_eq!((plain.status, plain.header("Access-Control-Allow-Origin")), (200, None), "{}", plain.head);
}

#[test]
fn a_client_leaving_mid_stream_is_cancelled_and_frees_its_place() {
    let server = Server::start(&["--queue", "1"]);
    let stream = start_stream(&server, &counting(2000));
    drop(stream);
    let health = server.wait_for("the abandoned stream ends", PATIENCE, |h| h["running"] == 0);
    assert_eq!((health["cancelled"].as_u64(), health["completed"].as_u64()), (Some(1), Some(0)), "{health}");
    // Cancelled at the next token, not when the 2000 were done (the client read one).
    assert!(health["tokens_generated"].as_u64().is_some_and(|n| n < 200), "{health}");
    let (status, reply) = server.json("/v1/completions", r#"{"prompt": "Hello", "max_tokens": 3}"#);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(server.health()["completed"], 1);
}

#[test]
fn a_client_leaving_before_its_whole_answer_is_cancelled() {
    let server = Server::start(&[]);
    let waiting = server.send("POST", "/v1/completions", &counting(2000).replace("true", "false"), &[]);
    server.wait_for("the request runs", PATIENCE, |h| h["running"] == 1);
    drop(waiting);
    let health = server.wait_for("the abandoned request ends", PATIENCE, |h| h["running"] == 0);
    assert_eq!((health["cancelled"].as_u64(), health["completed"].as_u64()), (Some(1), Some(0)), "{health}");
    assert!(health["tokens_generated"].as_u64().is_some_and(|n| n < 2000), "{health}");
}

#[test]
fn parallel_requests_share_each_decode_step_and_answer_as_alone() {
    let server = Server::start(&["--parallel", "3"]);
    // Three requests counting on at once: all three run.
    let streams: Vec<_> = (0..3).map(|_| start_stream(&server, &counting(2000))).collect();
    let health = server.wait_for("three requests run together", PATIENCE, |h| h["running"] == 3);
    assert_eq!(health["parallel"], 3, "{health}");
    drop(streams);
    let health = server.wait_for("the abandoned ones end", PATIENCE, |h| h["running"] == 0);
    assert_eq!(health["cancelled"], 3, "{health}");
    // Different questions at once: each gets `hearth run`'s answer.
    let questions = [QUESTION, "Name three colors.", "What is 2 + 2?"];
    let wants: Vec<String> = questions.iter().map(|q| run_temp0(q, 16, &[])).collect();
    let answers: Vec<String> = std::thread::scope(|scope| {
        let asked: Vec<_> = questions
            .iter()
            .map(|q| {
                let server = &server;
                scope.spawn(move || {
                    let body = serde_json::json!({"messages": [{"role": "user", "content": q}],
                        "temperature": 0, "max_tokens": 16});
                    let (status, reply) = server.json("/v1/chat/completions", &body.to_string());
                    assert_eq!(status, 200, "{reply}");
                    reply["choices"][0]["message"]["content"].as_str().unwrap_or("").to_string()
                })
            })
            .collect();
        asked.into_iter().map(|a| a.join().expect("an answer")).collect()
    });
    assert_eq!(answers, wants);

    // n choices, each in a sequence of its own with its own seed: whole, and streamed with
    // their indexes; more than --parallel is refused.
    let body = r#"{"prompt": "Once upon a time", "max_tokens": 8, "temperature": 1.0, "seed": 5, "n": 3}"#;
    let (status, reply) = server.json("/v1/completions", body);
    assert_eq!(status, 200, "{reply}");
    let choices = reply["choices"].as_array().expect("choices");
    let indexes: Vec<Option<u64>> = choices.iter().map(|c| c["index"].as_u64()).collect();
    assert_eq!(indexes, [Some(0), Some(1), Some(2)], "{reply}");
    let texts: Vec<&str> = choices.iter().filter_map(|c| c["text"].as_str()).collect();
    assert!(texts.len() == 3 && (texts[0] != texts[1] || texts[1] != texts[2]), "{reply}");
    let completion = reply["usage"]["completion_tokens"].as_u64().unwrap_or(0);
    assert!((3..=24).contains(&completion), "{reply}");
    let streamed = body.replace("\"n\": 3", "\"n\": 3, \"stream\": true");
    let (status, events) = server.request("POST", "/v1/completions", Some(&streamed), &[]);
    assert_eq!(status, 200, "{events}");
    let data: Vec<&str> = events.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.iter().filter(|d| **d == "[DONE]").count(), 1, "{events}");
    assert_eq!(data.last(), Some(&"[DONE]"));
    let mut finished = [0; 3];
    for chunk in &data[..data.len() - 1] {
        let v: serde_json::Value = serde_json::from_str(chunk).expect("a chunk");
        let choice = &v["choices"][0];
        if choice["finish_reason"].is_string() {
            finished[choice["index"].as_u64().expect("an index") as usize] += 1;
        }
    }
    assert_eq!(finished, [1, 1, 1], "{events}");
    let (status, reply) = server.json("/v1/completions", &body.replace("\"n\": 3", "\"n\": 4"));
    assert!(status == 400 && reply["error"]["message"].as_str().unwrap_or("").contains("--parallel"), "{reply}");
}

#[test]
fn a_full_queue_answers_503_and_the_waiting_request_is_served() {
    let server = Server::start(&["--queue", "1"]);
    let running = start_stream(&server, &counting(2000));
    let waiting = server.send("POST", "/v1/completions", r#"{"prompt": "Hello", "max_tokens": 3}"#, &[]);
    server.wait_for("the second request waits", PATIENCE, |h| h["waiting"] == 1);
    let (status, reply) = server.json("/v1/completions", r#"{"prompt": "Hi", "max_tokens": 3}"#);
    assert_eq!(status, 503, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap_or("").contains("busy"), "{reply}");
    drop(running);
    let mut answer = String::new();
    BufReader::new(waiting).read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let health = server.health();
    let counts = ["completed", "cancelled", "rejected", "waiting", "running"].map(|k| health[k].as_u64());
    assert_eq!(counts, [1, 1, 1, 0, 0].map(Some), "{health}");
}

#[test]
fn a_signal_finishes_the_answer_in_progress_and_turns_away_the_rest() {
    let mut server = Server::start(&["--queue", "4"]);
    let running = start_stream(&server, &counting(200));
    let waiting = server.send("POST", "/v1/completions", r#"{"prompt": "Hello", "max_tokens": 3}"#, &[]);
    server.wait_for("the second request waits", PATIENCE, |h| h["waiting"] == 1);
    send_signal(server.pid(), "TERM");
    let rest = rest_of(running);
    assert!(rest.contains(r#""finish_reason":"length""#), "the running answer is finished: {rest}");
    assert!(rest.contains(r#""completion_tokens":200"#) && rest.contains("data: [DONE]"), "{rest}");
    let mut refused = String::new();
    BufReader::new(waiting).read_to_string(&mut refused).unwrap();
    assert!(refused.starts_with("HTTP/1.1 503") && refused.contains("shutting down"), "{refused}");
    let (status, log) = server.wait();
    assert!(status.success() && log.contains("stopped"), "{status}: {log}");
    assert!(TcpStream::connect(&server.addr).is_err(), "nothing listens after the exit");
}

#[test]
fn a_second_signal_cancels_the_answer_in_progress() {
    let mut server = Server::start(&[]);
    let running = start_stream(&server, &counting(2000));
    send_signal(server.pid(), "TERM");
    // The first signal closes the listener, so the log says when it has been seen.
    server.wait_for_log("finishing the answer", PATIENCE);
    send_signal(server.pid(), "TERM");
    let rest = rest_of(running);
    assert!(rest.contains("shutting down") && rest.contains("data: [DONE]"), "{rest}");
    assert!(!rest.contains("finish_reason\":\"length"), "{rest}");
    let (status, log) = server.wait();
    assert!(status.success() && log.contains("cancelling"), "{status}: {log}");
}

#[test]
fn tools_and_a_tool_loop_reach_a_template_that_knows_them() {
    // A tiny random model with Qwen 3's template, which lists the tools in its system turn and
    // writes earlier calls and the tools' answers in its own markup.
    let spec = hearth::model::testing::TinyLlama {
        chat_template: Some(include_str!("fixtures/templates/Qwen-Qwen3-0.6B.jinja")),
        ..Default::default()
    };
    let file = common::Scratch::file("tools.gguf", &spec.to_gguf());
    let server = Server::start_with(&file.0, &["--ctx", "2048"]);
    let tools = r#"[{"type": "function", "function": {"name": "get_weather", "description": "The weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]"#;
    let loop_messages = r#"[{"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}]"#;
    let prompt_tokens = |extra: &str| {
        let body = format!(r#"{{"messages": {loop_messages}, "max_tokens": 1{extra}}}"#);
        let (status, reply) = server.json("/v1/chat/completions", &body);
        assert_eq!(status, 200, "{reply}");
        reply["usage"]["prompt_tokens"].as_u64().expect("a count")
    };
    let without = prompt_tokens("");
    assert!(prompt_tokens(&format!(r#", "tools": {tools}"#)) > without + 50, "the tools are described");
    assert_eq!(prompt_tokens(&format!(r#", "tools": {tools}, "tool_choice": "none""#)), without);
    // Streamed with tools: the text (no call from a random model) still streams to its end.
    let streamed = format!(r#"{{"messages": {loop_messages}, "tools": {tools}, "max_tokens": 8, "stream": true}}"#);
    let (status, events) = server.request("POST", "/v1/chat/completions", Some(&streamed), &[]);
    assert_eq!(status, 200, "{events}");
    let finished = events.contains("\"finish_reason\":\"length\"") || events.contains("\"finish_reason\":\"stop\"");
    assert!(finished && events.contains("data: [DONE]"), "{events}");
    // Forced calls: whatever the random model would say, the answer is a call of the tool named,
    // its arguments valid under the tool's schema.
    let strict = r#"[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"enum": ["Paris", "Oslo"]}}, "required": ["city"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
        "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"], "additionalProperties": false}}}]"#;
    let named = r#"{"type": "function", "function": {"name": "get_time"}}"#;
    let forced = format!(
        r#"{{"messages": {loop_messages}, "tools": {strict}, "tool_choice": {named}, "parallel_tool_calls": false,
            "max_tokens": 200}}"#
    );
    let (status, reply) = server.json("/v1/chat/completions", &forced);
    assert_eq!(status, 200, "{reply}");
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{reply}");
    let calls = choice["message"]["tool_calls"].as_array().expect("tool calls");
    assert_eq!(calls.len(), 1, "{reply}");
    assert_eq!(calls[0]["function"]["name"], "get_time");
    let arguments: serde_json::Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().expect("JSON text")).expect("JSON");
    assert!(arguments["zone"] == "UTC" || arguments["zone"] == "CET", "{arguments}");
    let required = format!(
        r#"{{"messages": {loop_messages}, "tools": {strict}, "tool_choice": "required", "max_tokens": 200,
            "parallel_tool_calls": false, "stream": true}}"#
    );
    let (status, events) = server.request("POST", "/v1/chat/completions", Some(&required), &[]);
    assert_eq!(status, 200, "{events}");
    // One call (parallel calls would let a random model run on to max_tokens): the grammar ends
    // the answer there.
    assert!(events.contains("\"tool_calls\":[{") && events.contains("\"finish_reason\":\"tool_calls\""), "{events}");
    // A JSON answer under a schema.
    let schema = r#"{"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"],
        "additionalProperties": false}"#;
    let asked = format!(
        r#"{{"messages": [{{"role": "user", "content": "Is it warm?"}}], "max_tokens": 100,
            "response_format": {{"type": "json_schema", "json_schema": {{"name": "a", "schema": {schema}}}}}}}"#
    );
    let (status, reply) = server.json("/v1/chat/completions", &asked);
    assert_eq!(status, 200, "{reply}");
    let content = reply["choices"][0]["message"]["content"].as_str().expect("content");
    let answer: serde_json::Value = serde_json::from_str(content).expect("the content is JSON");
    assert!(answer["answer"] == "yes" || answer["answer"] == "no", "{content}");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    // What cannot be served is refused before any work.
    for (extra, says) in [
        (format!(r#""tools": {strict}, "tool_choice": {{"type": "function", "function": {{"name": "fly"}}}}"#), "\"fly\""),
        (r#""tool_choice": "required""#.to_string(), "at least one tool"),
        (r#""response_format": {"type": "xml"}"#.to_string(), "response_format"),
        (r##""response_format": {"type": "json_schema", "json_schema": {"schema": {"properties": {"a": {"$ref": "#/no"}}}}}"##.to_string(), "cannot be used"),
        (format!(r#""tools": {strict}, "tool_choice": "required", "response_format": {{"type": "json_object"}}"#), "exclude"),
    ] {
        let body = format!(r#"{{"messages": [{{"role": "user", "content": "Hi"}}], {extra}}}"#);
        let (status, reply) = server.json("/v1/chat/completions", &body);
        assert_eq!(status, 400, "{extra}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap_or("").contains(says), "{extra}: {reply}");
    }
}

/// A forced call's answer: one call of get_weather, its finish reason `tool_calls`, a city of
/// the enum; its arguments and the whole reply.
fn forced_weather_call(server: &Server, body: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    let (status, reply) = server.json("/v1/chat/completions", &body.to_string());
    assert_eq!(status, 200, "{reply}");
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{reply}");
    let call = &choice["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather", "{reply}");
    let arguments: serde_json::Value = serde_json::from_str(call["arguments"].as_str().unwrap_or("")).expect("JSON");
    assert!(arguments["city"] == "Paris" || arguments["city"] == "Oslo", "{reply}");
    (arguments, reply)
}

#[test]
fn a_forced_call_on_gpt_oss_is_a_harmony_message_to_the_function() {
    // A tiny random gpt-oss with harmony's markup tokens and gpt-oss's own template: whatever
    // it would say, the forced answer is one message to the function named, which the server
    // reads back as its call.
    let spec = hearth::model::testing::TinyLlama {
        arch: "gpt-oss",
        experts: Some((8, 2)),
        tied: false,
        sliding_window: Some(4),
        head_dim: Some(32),
        markup_tokens: hearth::model::testing::HARMONY_TOKENS,
        chat_template: Some(include_str!("fixtures/templates/openai-gpt-oss-120b.jinja")),
        ..Default::default()
    };
    let file = common::Scratch::file("oss-tools.gguf", &spec.to_gguf());
    let server = Server::start_with(&file.0, &["--ctx", "2048"]);
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"enum": ["Paris", "Oslo"]}}, "required": ["city"], "additionalProperties": false}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "max_tokens": 200
    });
    forced_weather_call(&server, &body);
}

#[test]
fn a_forced_call_on_a_gemma4_template_is_written_in_its_syntax_and_read_back_as_json() {
    // A tiny random model with Gemma 4's markup tokens and chat template: the forced call
    // comes out as `<|tool_call>call:NAME{…}<tool_call|>` with `<|"|>` strings, by grammar, and
    // the server reads it back as JSON arguments valid under the schema.
    let spec = hearth::model::testing::TinyLlama {
        markup_tokens: hearth::model::testing::GEMMA4_TOKENS,
        chat_template: Some(include_str!("fixtures/templates/google-gemma-4-31B-it.jinja")),
        ..Default::default()
    };
    let file = common::Scratch::file("gemma4-tools.gguf", &spec.to_gguf());
    let server = Server::start_with(&file.0, &["--ctx", "2048"]);
    let body = serde_json::json!({
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"enum": ["Paris", "Oslo"]}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
            "required": ["city", "days"]}}}],
        "tool_choice": "required",
        "max_tokens": 200
    });
    let (arguments, reply) = forced_weather_call(&server, &body);
    assert!(arguments["days"].is_i64(), "{reply}");
    assert!(arguments.get("metric").is_none_or(serde_json::Value::is_boolean), "{reply}");
}

#[test]
fn a_conversation_longer_than_the_context_loses_its_oldest_exchanges_and_says_so() {
    let server = Server::start(&["--ctx", "192"]);
    let turn = |i: usize| {
        [
            serde_json::json!({"role": "user", "content": format!("Tell me something about the number {i}, in a few words please, as short as you can.")}),
            serde_json::json!({"role": "assistant", "content": format!("The number {i} is a small whole number, one of many.")}),
        ]
    };
    let mut messages = vec![serde_json::json!({"role": "system", "content": "Be brief."})];
    messages.extend((1..=5).flat_map(turn));
    messages.push(serde_json::json!({"role": "user", "content": "What is 2+2?"}));
    let ask = |messages: &[serde_json::Value]| {
        let body = serde_json::json!({"messages": messages, "max_tokens": 8, "temperature": 0}).to_string();
        server.exchange("POST", "/v1/chat/completions", Some(&body), &[])
    };
    let answer = ask(&messages);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let dropped: usize = answer.header("X-Hearth-Dropped-Messages").and_then(|n| n.parse().ok()).expect("the header");
    assert!(dropped >= 2 && dropped.is_multiple_of(2) && dropped < 10, "whole exchanges: {dropped}");
    // The same as asking without those messages: the system prompt and the rest, in order.
    let mut shorter = vec![messages[0].clone()];
    shorter.extend_from_slice(&messages[1 + dropped..]);
    let alone = ask(&shorter);
    assert_eq!(alone.header("X-Hearth-Dropped-Messages"), None, "{}", alone.head);
    let content = |r: &common::server::Response| {
        serde_json::from_str::<serde_json::Value>(&r.body).expect("JSON")["choices"][0]["message"]["content"].clone()
    };
    assert_eq!(content(&answer), content(&alone));
    // Only as many as needed: with the last exchange left out given back, it is left out again.
    let mut longer = vec![messages[0].clone()];
    longer.extend_from_slice(&messages[dropped - 1..]);
    assert_eq!(ask(&longer).header("X-Hearth-Dropped-Messages"), Some("2"));
    let (status, reply) = server.json(
        "/v1/chat/completions",
        &serde_json::json!({"messages": [messages[0], {"role": "user", "content": "word ".repeat(400)}]}).to_string(),
    );
    assert_eq!(status, 400, "a last message that cannot fit alone is refused: {reply}");
}
