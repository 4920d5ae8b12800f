//! `hearth serve` against clients that hold connections without finishing requests: a burst
//! of idle connections beyond the process's file limit, a connection that sends nothing, a
//! request head or body that stalls, a header line that never ends. Each is cut off and the
//! server goes on answering.

mod common;

use common::server::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Long enough for any wait these tests make; a guard against hanging, not a speed check.
const PATIENCE: Duration = Duration::from_secs(300);

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(&server.addr).expect("a connection");
    stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
    stream
}

/// Whether the server closed the connection without answering (end of stream or reset).
fn closed_unanswered(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// The status line the server answered on `stream` with.
fn status_line(stream: &TcpStream) -> String {
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line
}

#[test]
fn a_burst_of_idle_connections_beyond_the_file_limit_leaves_the_server_answering() {
    let server = Server::start_with_open_files(64, &["--timeout", "2"]);
    let addr: SocketAddr = server.addr.parse().expect("an address");
    // More connections than the process may have files open: accepting fails until some
    // close. The rest wait in the listen backlog.
    let idle: Vec<TcpStream> =
        (0..150).filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()).collect();
    assert!(idle.len() > 64, "only {} connections were made", idle.len());
    server.wait_for_log("cannot accept connections", PATIENCE);
    // While those are all still open on this side, a request is answered: the server closes
    // the idle ones after --timeout and accepts again.
    assert_eq!(server.health()["status"], "ok");
    let mut first = idle.into_iter().next().expect("a connection");
    first.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
    assert!(closed_unanswered(&mut first), "an idle connection stays open");
    server.wait_for_log("accepting connections again", PATIENCE);
}

#[test]
fn idle_stalled_and_endless_requests_are_cut_off() {
    let server = Server::start(&["--timeout", "2", "--ctx", "256"]);
    let mut idle = connect(&server);
    assert!(closed_unanswered(&mut idle), "a connection that sends nothing is closed");

    let mut half_head = connect(&server);
    half_head.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").expect("the first headers");
    assert!(closed_unanswered(&mut half_head), "a request head that stops coming is dropped");

    let mut stalled = connect(&server);
    let head =
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    stalled.write_all(format!("{head}{{\"prompt\": ").as_bytes()).expect("the head and some body");
    let status = status_line(&stalled);
    assert!(status.starts_with("HTTP/1.1 408"), "a body that stops coming: {status}");

    // A header line that never ends: the server stops reading it long before 8 MB and says why.
    let endless = connect(&server);
    let mut writer = endless.try_clone().expect("a second handle");
    let sender = std::thread::spawn(move || {
        let piece = vec![b'a'; 64 << 10];
        if writer.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ").is_err() {
            return true;
        }
        // Refused: a write fails once the server has closed the connection.
        (0..128).any(|_| writer.write_all(&piece).is_err())
    });
    let status = status_line(&endless);
    assert!(status.is_empty() || status.starts_with("HTTP/1.1 431"), "{status}");
    assert!(sender.join().expect("the sender"), "the server read all 8 MB of one header");

    assert_eq!(server.health()["status"], "ok");
}

#[test]
fn with_web_the_page_is_served_beside_the_api_and_nothing_outside_it() {
    let dir = std::env::temp_dir().join(format!("hearth-serve-web-{}", std::process::id()));
    let page = dir.join("dist");
    std::fs::create_dir_all(&page).expect("a page folder");
    std::fs::write(page.join("index.html"), "<!doctype html><title>hearth</title>").expect("a page");
    std::fs::write(page.join("app.js"), "export {};").expect("a script");
    std::fs::write(dir.join("secret.txt"), "not for the web").expect("a file beside it");

    let missing =
        common::hearth_command(&["serve", "--web", dir.join("nothing").to_str().expect("UTF-8"), "--port", "0"])
            .output()
            .expect("hearth runs");
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && said.contains("no index.html"), "{said}");

    let server = Server::start(&["--web", page.to_str().expect("UTF-8")]);
    let index = server.exchange("GET", "/", None, &[]);
    assert_eq!((index.status, index.body.as_str()), (200, "<!doctype html><title>hearth</title>"));
    assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));
    let script = server.exchange("GET", "/app.js", None, &[]);
    assert_eq!((script.status, script.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    let (status, models) = server.request("GET", "/v1/models", None, &[]);
    assert!(status == 200 && models.contains("\"list\""), "{status} {models}");
    for outside in ["/../secret.txt", "/%2e%2e/secret.txt", "/missing.css", "/v1/page"] {
        let (status, body) = server.request("GET", outside, None, &[]);
        assert!(status == 404 && !body.contains("not for the web"), "{outside}: {status} {body}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
