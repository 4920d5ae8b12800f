//! Tool calls in a chat answer: the model writes each as `<tool_call>{"name": …, "arguments":
//! {…}}</tool_call>` (the Hermes convention of Qwen 2.5/3/3.5, SmolLM 3 and Hermes templates);
//! the scanner takes them out of the text as it streams, holding back what may be the start of
//! one, and gives them in OpenAI's shape.

use serde_json::{Value, json};

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// Sorts an answer's text into content and tool calls, piece by piece.
#[derive(Default)]
pub struct ToolCallScan {
    pending: String,
    inside: bool,
    calls: usize,
}

impl ToolCallScan {
    /// The content that can be shown now, and the calls completed by `piece`, each in
    /// OpenAI's shape (`id`, `type`, `function` with `name` and `arguments` as JSON text).
    pub fn push(&mut self, piece: &str) -> (String, Vec<Value>) {
        self.pending.push_str(piece);
        let (mut content, mut calls) = (String::new(), Vec::new());
        loop {
            if self.inside {
                let Some(end) = self.pending.find(CLOSE) else { break };
                let body = self.pending[..end].to_string();
                self.pending.drain(..end + CLOSE.len());
                self.inside = false;
                match self.call(&body) {
                    Some(call) => calls.push(call),
                    // Not a call after all: the text stays the answer's.
                    None => content.push_str(&format!("{OPEN}{body}{CLOSE}")),
                }
            } else if let Some(start) = self.pending.find(OPEN) {
                content.push_str(&self.pending[..start]);
                self.pending.drain(..start + OPEN.len());
                self.inside = true;
            } else {
                // Keep back a tail that may be the start of `<tool_call>`.
                let keep = (1..OPEN.len()).rev().find(|&n| self.pending.ends_with(&OPEN[..n])).unwrap_or(0);
                let cut = self.pending.len() - keep;
                content.push_str(&self.pending[..cut]);
                self.pending.drain(..cut);
                break;
            }
        }
        (content, calls)
    }

    /// What is left at the end of the answer: held-back text, or an unclosed call's text.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.inside) { format!("{OPEN}{rest}") } else { rest }
    }

    /// Whether any call was found.
    pub fn called(&self) -> bool {
        self.calls > 0
    }

    fn call(&mut self, body: &str) -> Option<Value> {
        let parsed: Value = serde_json::from_str(body.trim()).ok()?;
        let name = parsed["name"].as_str()?;
        let arguments = match &parsed["arguments"] {
            Value::Null => "{}".to_string(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        self.calls += 1;
        let id = format!("call_{}", self.calls);
        Some(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `pieces` through a scan: the content and the calls.
    fn scan(pieces: &[&str]) -> (String, Vec<Value>) {
        let mut s = ToolCallScan::default();
        let (mut content, mut calls) = (String::new(), Vec::new());
        for piece in pieces {
            let (text, new) = s.push(piece);
            content.push_str(&text);
            calls.extend(new);
        }
        content.push_str(&s.finish());
        (content, calls)
    }

    #[test]
    fn calls_come_out_of_the_text_whole_or_in_pieces() {
        let answer = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        let (content, calls) = scan(&[answer]);
        assert_eq!(content, "Let me look.\n");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(calls[0]["id"], "call_1");
        // Cut anywhere, including inside the tags: the same.
        for cut in 1..answer.len() {
            if answer.is_char_boundary(cut) {
                assert_eq!(scan(&[&answer[..cut], &answer[cut..]]), (content.clone(), calls.clone()), "cut at {cut}");
            }
        }
    }

    #[test]
    fn several_calls_and_text_that_only_looks_like_one() {
        let two =
            "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\"}</tool_call>";
        let (content, calls) = scan(&[two]);
        assert_eq!((content.as_str(), calls.len()), ("\n", 2));
        assert_eq!((calls[1]["id"].as_str(), calls[1]["function"]["arguments"].as_str()), (Some("call_2"), Some("{}")));
        // Not JSON, or never closed: the text is the answer's.
        assert_eq!(scan(&["x <tool_call>oops</tool_call> y"]).0, "x <tool_call>oops</tool_call> y");
        assert_eq!(scan(&["x <tool_call>{\"name\": "]), ("x <tool_call>{\"name\": ".into(), vec![]));
        // A held-back tail that was not a tag after all.
        assert_eq!(scan(&["a <tool", "box"]).0, "a <toolbox");
    }
}
