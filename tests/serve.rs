//! `hearth serve` driven over real sockets: the endpoints, streaming and not, the OpenAI-style
//! errors, concurrency through the one GPU queue, a client leaving mid-stream, and shutdown.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let model = common::model_path();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["serve", "--model", model.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hearth serve starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the server exited before listening");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Server { child, addr }
    }

    /// One request; the status and the body.
    fn request(&self, method: &str, path: &str, body: Option<&str>, headers: &[&str]) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let body = body.unwrap_or("");
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    fn json(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.request("POST", path, Some(body), &[]);
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_temp0(prompt: &str, n: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["run", "--model", common::model_path().to_str().unwrap(), "--temp", "0", "-n", &n.to_string(), prompt])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string()
}

const QUESTION: &str = "What is the capital of France?";

#[test]
fn chat_and_completions_answer_like_run_whole_and_streamed() {
    let server = Server::start(&[]);
    assert_eq!(server.request("GET", "/health", None, &[]).0, 200);
    let (status, models) = server.request("GET", "/v1/models", None, &[]);
    assert!(status == 200 && models.contains("\"object\":\"list\""), "{models}");

    let want = run_temp0(QUESTION, 24);
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
        (&format!(r#"{{"prompt": "{long}"}}"#) as &str, 400),
    ];
    for (body, want) in cases {
        let (status, reply) = server.json("/v1/completions", body);
        assert_eq!(status, want, "{body}: {reply}");
        assert!(reply["error"]["message"].is_string(), "{reply}");
    }
    assert_eq!(server.request("GET", "/nowhere", None, &[]).0, 404);
    let (status, _) = server.json("/v1/completions", r#"{"prompt": "hi", "max_tokens": 2}"#);
    assert_eq!(status, 200, "a failed request leaves the next one unaffected");
}

#[test]
fn an_api_key_is_required_when_set() {
    let server = Server::start(&["--api-key", "sesame"]);
    assert_eq!(server.request("GET", "/v1/models", None, &[]).0, 401);
    assert_eq!(server.request("GET", "/v1/models", None, &["Authorization: Bearer wrong"]).0, 401);
    assert_eq!(server.request("GET", "/v1/models", None, &["Authorization: Bearer sesame"]).0, 200);
    assert_eq!(server.request("GET", "/health", None, &[]).0, 200);
}

#[test]
fn concurrent_clients_all_get_their_answers() {
    let server = Server::start(&["--queue", "64"]);
    let want = run_temp0(QUESTION, 8);
    let body =
        format!(r#"{{"messages": [{{"role": "user", "content": "{QUESTION}"}}], "temperature": 0, "max_tokens": 8}}"#);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..4 {
                        let (status, reply) = server.json("/v1/chat/completions", &body);
                        assert_eq!(status, 200, "{reply}");
                        assert_eq!(reply["choices"][0]["message"]["content"], want.as_str());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn a_client_leaving_mid_stream_frees_the_queue() {
    let server = Server::start(&["--queue", "1"]);
    let body = r#"{"prompt": "Write a long story.", "max_tokens": 2000, "temperature": 0, "stream": true}"#;
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(stream, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut first = [0u8; 64];
    stream.read_exact(&mut first).unwrap();
    drop(stream);
    // The abandoned generation ends at its next token; the next request is answered.
    let (status, reply) = server.json("/v1/completions", r#"{"prompt": "Hello", "max_tokens": 3}"#);
    assert_eq!(status, 200, "{reply}");
}
