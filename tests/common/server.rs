//! `hearth serve` on a free loopback port with the default model, and a plain HTTP/1.1 client
//! for it over a std TcpStream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Response {
    pub status: u16,
    /// The status line and the headers.
    pub head: String,
    pub body: String,
}

impl Response {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

pub struct Server {
    child: Child,
    pub addr: String,
    /// Everything the server wrote to stderr so far.
    log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with(&super::model_path(), extra)
    }

    /// `hearth serve` with the model at `model`.
    pub fn start_with(model: &std::path::Path, extra: &[&str]) -> Server {
        Server::spawn(super::hearth_command(&serve_args(model, extra)))
    }

    /// `hearth serve` with the default model in a process that may have at most `limit` files
    /// open (the shell's `ulimit -n`), connections included.
    pub fn start_with_open_files(limit: usize, extra: &[&str]) -> Server {
        let model = super::model_path();
        let args = serve_args(&model, extra);
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_hearth"))
            .args(&args)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir());
        Server::spawn(command)
    }

    fn spawn(mut command: Command) -> Server {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("hearth serve starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let log = Arc::new(Mutex::new(String::new()));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the server exited before listening");
            log.lock().unwrap().push_str(&line);
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stderr so the server never blocks on it.
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server { child, addr, log }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server to exit; its status and what it wrote to stderr.
    pub fn wait(&mut self) -> (ExitStatus, String) {
        let status = self.child.wait().expect("the server process");
        // The drain thread reads to the end of stderr shortly after the exit.
        std::thread::sleep(Duration::from_millis(200));
        (status, self.log.lock().unwrap().clone())
    }

    /// Sends a request without reading the answer.
    pub fn send(&self, method: &str, path: &str, body: &str, headers: &[&str]) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr).expect("the server accepts connections");
        // A hang guard: every answer these tests wait for comes far sooner.
        stream.set_read_timeout(Some(Duration::from_secs(600))).expect("a read timeout");
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        stream
    }

    /// One request; the status and the body.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>, headers: &[&str]) -> (u16, String) {
        let response = self.exchange(method, path, body, headers);
        (response.status, response.body)
    }

    /// One request; the whole response.
    pub fn exchange(&self, method: &str, path: &str, body: Option<&str>, headers: &[&str]) -> Response {
        let mut stream = self.send(method, path, body.unwrap_or(""), headers);
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Response { status, head: head.to_string(), body: body.to_string() }
    }

    pub fn json(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.request("POST", path, Some(body), &[]);
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
    }

    /// GET /health: the counts of requests by stage.
    pub fn health(&self) -> serde_json::Value {
        let (status, text) = self.request("GET", "/health", None, &[]);
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Polls /health until `ready` holds for it, or fails after `limit` (a hang guard, not a
    /// speed requirement: the waits it guards take seconds).
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let health = self.health();
            if ready(&health) {
                return health;
            }
            assert!(start.elapsed() < limit, "{what}: still {health} after {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// Waits until the server's stderr contains `needle` (a hang guard, as in `wait_for`).
    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log.lock().unwrap().contains(needle) {
            assert!(start.elapsed() < limit, "the server never said {needle:?}: {}", self.log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn serve_args<'a>(model: &'a std::path::Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["serve", "--model", model.to_str().expect("a UTF-8 model path"), "--port", "0"];
    args.extend_from_slice(extra);
    args
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hearth run --temp 0 -n N [EXTRA] PROMPT`'s text: what a temperature-0 request must answer
/// (a chat completion; with `--raw`, a text completion).
pub fn run_temp0(prompt: &str, n: usize, extra: &[&str]) -> String {
    let model = super::model_path();
    let n = n.to_string();
    let mut args = vec!["run", "--model", model.to_str().expect("a UTF-8 model path"), "--temp", "0", "-n", &n];
    args.extend_from_slice(extra);
    args.push(prompt);
    let out = super::hearth_command(&args).output().expect("hearth run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string()
}
