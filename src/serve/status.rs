//! What the server's threads share about its state: how many requests are in each stage (what
//! GET /health reports) and how far shutdown has gone.

use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Requests by stage since the server started.
#[derive(Default)]
pub struct Counters {
    pub waiting: AtomicUsize,
    pub running: AtomicUsize,
    pub completed: AtomicU64,
    /// Ended early because their client left (or shutdown could not wait for them).
    pub cancelled: AtomicU64,
    pub failed: AtomicU64,
    /// Turned away with 503: the queue was full or the server was stopping.
    pub rejected: AtomicU64,
    /// Prompt tokens of the requests run, and how many of them the KV cache already held.
    pub prompt_tokens: AtomicU64,
    pub prompt_tokens_cached: AtomicU64,
    /// Tokens generated for all requests.
    pub tokens_generated: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
    }

    pub fn to_json(&self, shutdown: &Shutdown) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        json!({
            "status": if shutdown.stopping() { "stopping" } else { "ok" },
            "waiting": self.waiting.load(Ordering::SeqCst),
            "running": self.running.load(Ordering::SeqCst),
            "completed": get(&self.completed),
            "cancelled": get(&self.cancelled),
            "failed": get(&self.failed),
            "rejected": get(&self.rejected),
            "prompt_tokens": get(&self.prompt_tokens),
            "prompt_tokens_cached": get(&self.prompt_tokens_cached),
            "tokens_generated": get(&self.tokens_generated),
        })
    }
}

/// How many times the server was asked to stop: once finishes the request being answered
/// (waiting ones get 503), twice cancels it too.
#[derive(Default)]
pub struct Shutdown(AtomicUsize);

impl Shutdown {
    /// Asks once more; returns how many times it has been asked.
    pub fn request(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn stopping(&self) -> bool {
        self.0.load(Ordering::SeqCst) >= 1
    }

    pub fn cancelling(&self) -> bool {
        self.0.load(Ordering::SeqCst) >= 2
    }
}
