//! Tool calls in a chat answer: the model writes each inside `<tool_call>…</tool_call>`, as JSON
//! `{"name": …, "arguments": {…}}` (the Hermes convention of Qwen 2.5/3, SmolLM 3 and Hermes
//! templates) or as Qwen 3.5's (and Qwen3-Coder's) `<function=NAME><parameter=P>value
//! </parameter></function>`; the scanner takes them out of the text as it streams, holding back
//! what may be the start of one, and gives them in OpenAI's shape.

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
        let (name, arguments) = json_call(body).or_else(|| xml_call(body))?;
        self.calls += 1;
        let id = format!("call_{}", self.calls);
        Some(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
    }
}

/// `{"name": …, "arguments": {…}}`: the name and the arguments as JSON text.
fn json_call(body: &str) -> Option<(String, String)> {
    let parsed: Value = serde_json::from_str(body.trim()).ok()?;
    let name = parsed["name"].as_str()?.to_string();
    let arguments = match &parsed["arguments"] {
        Value::Null => "{}".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    Some((name, arguments))
}

/// `<function=NAME>` then `<parameter=P>\nvalue\n</parameter>` per argument, `</function>`: a
/// value that reads as JSON (a number, an object, true…) is taken as such, any other as text.
fn xml_call(body: &str) -> Option<(String, String)> {
    let rest = body.trim().strip_prefix("<function=")?;
    let (name, mut rest) = rest.split_once('>')?;
    let mut arguments = serde_json::Map::new();
    while let Some(start) = rest.find("<parameter=") {
        let (key, after) = rest[start + "<parameter=".len()..].split_once('>')?;
        let end = after.find("</parameter>")?;
        let text = after[..end].strip_prefix('\n').unwrap_or(&after[..end]);
        let text = text.strip_suffix('\n').unwrap_or(text);
        let value = serde_json::from_str::<Value>(text).ok().filter(|v| !v.is_string());
        arguments.insert(key.to_string(), value.unwrap_or_else(|| Value::String(text.to_string())));
        rest = &after[end + "</parameter>".len()..];
    }
    rest.trim().starts_with("</function>").then(|| (name.trim().to_string(), Value::Object(arguments).to_string()))
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
    fn qwen35_writes_calls_as_functions_with_parameters() {
        let answer = "Checking.\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nSan Francisco\n</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=note>\ntwo\nlines\n</parameter>\n</function>\n</tool_call>";
        let (content, calls) = scan(&[answer]);
        assert_eq!(content, "Checking.\n\n");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let arguments: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"city": "San Francisco", "days": 3, "note": "two\nlines"}));
        // Unfinished: text.
        assert_eq!(scan(&["<tool_call>\n<function=f>\n<parameter=a>\n1\n</tool_call>"]).1.len(), 0);
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

    #[test]
    fn calls_each_template_writes_are_read_back_as_the_same_calls() {
        use crate::chat::{ChatMessage, ChatTemplate};
        let templates = [
            ("Qwen 3", include_str!("../../tests/fixtures/templates/Qwen-Qwen3-0.6B.jinja")),
            ("Qwen 3.5", include_str!("../../tests/fixtures/templates/Qwen3.5-4B.jinja")),
            (
                "Hermes 3",
                include_str!("../../tests/fixtures/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja"),
            ),
        ];
        let arguments = json!({"city": "Paris", "days": 3});
        let call =
            json!({"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}});
        let messages = [
            ChatMessage::new("user", "Weather in Paris?"),
            ChatMessage { tool_calls: vec![call], ..ChatMessage::new("assistant", "") },
            ChatMessage { tool_call_id: Some("call_1".into()), ..ChatMessage::new("tool", "18 C") },
        ];
        for (name, source) in templates {
            let rendered = ChatTemplate::new(source, "", "").unwrap().render(&messages, false).unwrap();
            let (_, calls) = scan(&[&rendered]);
            assert_eq!(calls.len(), 1, "{name}: {rendered}");
            assert_eq!(calls[0]["function"]["name"], "get_weather", "{name}");
            let read: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(read, arguments, "{name}: {rendered}");
        }
    }
}
