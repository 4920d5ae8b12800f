//! A tiny HTTP/1.1 server on 127.0.0.1 for the download tests: GET with optional
//! `Range: bytes=N-`, redirects, error statuses, and a connection cut mid-body.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server stops accepting after this many connections, so it cannot outlive its test by much.
const MAX_CONNECTIONS: usize = 32;

#[derive(Clone)]
pub(crate) enum Route {
    File {
        body: Vec<u8>,
        honour_ranges: bool,
    },
    /// Announces the whole body but closes after `cut_at` bytes the first time it is asked.
    CutOnce {
        body: Vec<u8>,
        cut_at: usize,
    },
    Redirect(String),
    Status(u16),
}

#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
}

pub(crate) struct TestServer {
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    pub fn start(routes: Vec<(&str, Route)>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let addr = listener.local_addr().expect("test server address");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&recorded);
        let mut routes: HashMap<String, Route> = routes.into_iter().map(|(p, r)| (p.to_owned(), r)).collect();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &mut routes, &log);
            }
        });
        TestServer { addr, recorded }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().expect("request log").clone()
    }
}

fn serve(stream: TcpStream, routes: &mut HashMap<String, Route>, log: &Mutex<Vec<Recorded>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let range_start = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    log.lock().expect("request log").push(Recorded { path: path.clone(), headers });

    let mut out = stream;
    match routes.get(&path).cloned() {
        Some(Route::File { body, honour_ranges: true }) if range_start.is_some_and(|s| s > 0) => {
            let start = range_start.unwrap_or(0);
            if start >= body.len() {
                return respond(&mut out, "416 Range Not Satisfiable", &[], b"");
            }
            let range = format!("Content-Range: bytes {start}-{}/{}", body.len() - 1, body.len());
            respond(&mut out, "206 Partial Content", &[&range], &body[start..])
        }
        Some(Route::File { body, .. }) => respond(&mut out, "200 OK", &[], &body),
        Some(Route::CutOnce { body, cut_at }) => {
            routes.insert(path, Route::File { body: body.clone(), honour_ranges: true });
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            out.write_all(&body[..cut_at])?;
            out.flush()
        }
        Some(Route::Redirect(to)) => respond(&mut out, "302 Found", &[&format!("Location: {to}")], b""),
        Some(Route::Status(code)) => respond(&mut out, &format!("{code} Test Status"), &[], b"nope"),
        None => respond(&mut out, "404 Not Found", &[], b"not found"),
    }
}

fn respond(out: &mut TcpStream, status: &str, extra: &[&str], body: &[u8]) -> std::io::Result<()> {
    write!(out, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len())?;
    for header in extra {
        write!(out, "{header}\r\n")?;
    }
    out.write_all(b"\r\n")?;
    out.write_all(body)?;
    out.flush()
}
