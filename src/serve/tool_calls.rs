//! Tool calls in a chat answer, in the convention of the model's family (`ToolFormat`): the
//! scanner takes them out of the text as it streams, holding back what may be the start of one,
//! and gives them in OpenAI's shape.

use super::llama_builtin;
use crate::reasoning::HARMONY_CALL;
use serde_json::{Value, json};

/// How a model family writes its tool calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    /// `<tool_call>…</tool_call>` holding Hermes JSON `{"name": …, "arguments": {…}}` (Qwen 2.5/3,
    /// SmolLM 3, Hermes, and the generic format of templates that know no tools) or Qwen 3.5's
    /// (and Qwen3-Coder's) `<function=NAME><parameter=P>value</parameter></function>`.
    Hermes,
    /// Gemma 4: `<|tool_call>call:NAME{key:value,…}<tool_call|>`, strings between `<|"|>`.
    Gemma4,
    /// Mistral: `[TOOL_CALLS]NAME[ARGS]{…}` (Mistral Small 3.2, Devstral) or
    /// `[TOOL_CALLS][{"name": …, "arguments": …}, …]` (Nemo), up to the next or the end.
    Mistral,
    /// Llama 3.x: the whole answer a JSON `{"name": …, "parameters": {…}}`, or after
    /// `<|python_tag|>`.
    Llama3,
    /// gpt-oss's harmony: a message to `functions.NAME` holding the arguments, which the
    /// reasoning splitter passes on as `to=functions.NAME<|message|>{…}`
    /// (`reasoning::HARMONY_CALL`), up to the next or the end (its `<|call|>` ends generation).
    Harmony,
}

impl ToolFormat {
    /// The family's format, from the markup its chat template writes calls in.
    pub fn detect(template_source: &str) -> ToolFormat {
        let has = |markup: &str| template_source.contains(markup);
        if has("<|call|>") {
            ToolFormat::Harmony
        } else if has("<|tool_call>") {
            ToolFormat::Gemma4
        } else if has("[TOOL_CALLS]") {
            ToolFormat::Mistral
        } else if has("<tool_call>") {
            ToolFormat::Hermes
        } else if has("<|python_tag|>") || has("\"parameters\": ") {
            ToolFormat::Llama3
        } else {
            ToolFormat::Hermes
        }
    }

    /// What opens a call and what closes it (None: the next call or the answer's end).
    fn tags(self) -> (&'static str, Option<&'static str>) {
        match self {
            ToolFormat::Hermes => ("<tool_call>", Some("</tool_call>")),
            ToolFormat::Gemma4 => ("<|tool_call>", Some("<tool_call|>")),
            ToolFormat::Mistral => ("[TOOL_CALLS]", None),
            ToolFormat::Llama3 => ("<|python_tag|>", None),
            ToolFormat::Harmony => (HARMONY_CALL, None),
        }
    }

    /// The calls (name, arguments as JSON text) of one call's text.
    fn parse(self, body: &str) -> Option<Vec<(String, String)>> {
        match self {
            ToolFormat::Hermes => json_call(body).or_else(|| xml_call(body)).map(|c| vec![c]),
            ToolFormat::Gemma4 => gemma4_call(body).map(|c| vec![c]),
            ToolFormat::Mistral => mistral_calls(body),
            ToolFormat::Llama3 => json_call(body).or_else(|| llama_builtin::call_syntax(body)).map(|c| vec![c]),
            ToolFormat::Harmony => harmony_call(body).map(|c| vec![c]),
        }
    }
}

/// How a request's answer is read for calls: the family's format and, with Llama 3.x's
/// built-in tools, the offered tool that takes the bare code after `<|python_tag|>`.
#[derive(Clone, Debug)]
pub struct CallReading {
    pub format: ToolFormat,
    pub code_tool: Option<String>,
}

/// Sorts an answer's text into content and tool calls, piece by piece.
pub struct ToolCallScan {
    format: ToolFormat,
    /// `CallReading::code_tool`.
    code_tool: Option<String>,
    pending: String,
    inside: bool,
    /// Nothing but whitespace seen yet (Llama 3's calls are whole answers).
    at_start: bool,
    /// The call being read began without its opening tag (Llama 3's whole-answer JSON).
    untagged: bool,
    calls: usize,
    /// What each call's id starts with.
    id_prefix: String,
}

impl ToolCallScan {
    pub fn new(format: ToolFormat) -> ToolCallScan {
        ToolCallScan {
            format,
            code_tool: None,
            pending: String::new(),
            inside: false,
            at_start: true,
            untagged: false,
            calls: 0,
            id_prefix: "call_".into(),
        }
    }

    /// A scan as `reading` says.
    pub fn reading(reading: &CallReading) -> ToolCallScan {
        ToolCallScan { code_tool: reading.code_tool.clone(), ..ToolCallScan::new(reading.format) }
    }

    /// Calls numbered within the answer `answer_id` ("chatcmpl-7": "call_7_1", "call_7_2", …), so
    /// ids stay unique across a conversation's answers.
    pub fn named_after(mut self, answer_id: &str) -> ToolCallScan {
        self.id_prefix = format!("call_{}_", answer_id.rsplit('-').next().unwrap_or(answer_id));
        self
    }

    /// The content that can be shown now, and the calls completed by `piece`, each in
    /// OpenAI's shape (`id`, `type`, `function` with `name` and `arguments` as JSON text).
    pub fn push(&mut self, piece: &str) -> (String, Vec<Value>) {
        let (open, close) = self.format.tags();
        self.pending.push_str(piece);
        let (mut content, mut calls) = (String::new(), Vec::new());
        if self.at_start && self.format == ToolFormat::Llama3 {
            match self.pending.trim_start().chars().next() {
                None => return (content, calls),
                Some(first) => {
                    self.at_start = false;
                    if first == '{' {
                        // Maybe a call: it runs to the answer's end.
                        self.pending = self.pending.trim_start().to_string();
                        (self.inside, self.untagged) = (true, true);
                    }
                }
            }
        }
        loop {
            if self.inside {
                // A call ends at its closing tag, or (without one) where the next begins.
                let end = match close {
                    Some(close) => self.pending.find(close).map(|at| (at, close.len())),
                    None => self.pending.find(open).map(|at| (at, 0)),
                };
                let Some((end, tag)) = end else { break };
                let body = self.pending[..end].to_string();
                self.pending.drain(..end + tag);
                self.inside = false;
                self.take(&body, &mut content, &mut calls);
            } else if let Some(start) = self.pending.find(open) {
                content.push_str(&self.pending[..start]);
                self.pending.drain(..start + open.len());
                self.inside = true;
            } else {
                // Keep back a tail that may be the start of the opening tag.
                let keep = (1..open.len()).rev().find(|&n| self.pending.ends_with(&open[..n])).unwrap_or(0);
                let cut = self.pending.len() - keep;
                content.push_str(&self.pending[..cut]);
                self.pending.drain(..cut);
                break;
            }
        }
        (content, calls)
    }

    /// At the end of the answer: the held-back text, and the call it ends (formats without a
    /// closing tag) or an unclosed call's text.
    pub fn finish(&mut self) -> (String, Vec<Value>) {
        let rest = std::mem::take(&mut self.pending);
        let (mut content, mut calls) = (String::new(), Vec::new());
        match (std::mem::take(&mut self.inside), self.format.tags()) {
            (false, _) => content = rest,
            (true, (_, None)) => self.take(&rest, &mut content, &mut calls),
            (true, (open, Some(_))) => content = format!("{open}{rest}"),
        }
        (content, calls)
    }

    /// Whether any call was found.
    pub fn called(&self) -> bool {
        self.calls > 0
    }

    /// One call's text: its calls, or (not a call after all) back into the answer's text.
    fn take(&mut self, body: &str, content: &mut String, calls: &mut Vec<Value>) {
        let (open, close) = self.format.tags();
        let code = || match &self.code_tool {
            Some(tool) if !self.untagged => llama_builtin::code_call(tool, body).map(|c| vec![c]),
            _ => None,
        };
        match self.format.parse(body).or_else(code) {
            Some(parsed) => {
                self.untagged = false;
                for (name, arguments) in parsed {
                    self.calls += 1;
                    let id = format!("{}{}", self.id_prefix, self.calls);
                    calls.push(
                        json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}),
                    );
                }
            }
            None => {
                let open = if std::mem::take(&mut self.untagged) { "" } else { open };
                content.push_str(&format!("{open}{body}{}", close.unwrap_or("")));
            }
        }
    }
}

/// `{"name": …, "arguments": {…}}` (or Llama 3's `"parameters"`): the name and the arguments as
/// JSON text.
fn json_call(body: &str) -> Option<(String, String)> {
    let parsed: Value = serde_json::from_str(body.trim()).ok()?;
    let name = parsed["name"].as_str()?.to_string();
    let given = if parsed.get("arguments").is_some() { &parsed["arguments"] } else { &parsed["parameters"] };
    let arguments = match given {
        Value::Null => "{}".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    Some((name, arguments))
}

/// `NAME<|message|>{…}`: a harmony message's recipient and its JSON arguments.
fn harmony_call(body: &str) -> Option<(String, String)> {
    let (name, arguments) = body.split_once("<|message|>")?;
    let arguments: Value = serde_json::from_str(arguments.trim()).ok()?;
    Some((name.trim().to_string(), arguments.to_string())).filter(|(name, _)| !name.is_empty())
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

/// Gemma 4's `call:NAME{key:value,…}`: strings between `<|"|>`, keys bare at the top.
fn gemma4_call(body: &str) -> Option<(String, String)> {
    let rest = body.trim().strip_prefix("call:")?;
    let brace = rest.find('{')?;
    let name = rest[..brace].trim().to_string();
    let mut reader = Gemma4Value { text: &rest[brace..] };
    let arguments = reader.value()?;
    (arguments.is_object() && reader.text.trim().is_empty()).then(|| (name, arguments.to_string()))
}

/// A reader of Gemma 4's argument syntax, from the start of `text`.
struct Gemma4Value<'a> {
    text: &'a str,
}

impl Gemma4Value<'_> {
    const QUOTE: &'static str = "<|\"|>";

    fn value(&mut self) -> Option<Value> {
        self.text = self.text.trim_start();
        if let Some(rest) = self.text.strip_prefix(Self::QUOTE) {
            let end = rest.find(Self::QUOTE)?;
            self.text = &rest[end + Self::QUOTE.len()..];
            return Some(Value::String(rest[..end].to_string()));
        }
        if let Some(rest) = self.text.strip_prefix('{') {
            self.text = rest;
            let mut object = serde_json::Map::new();
            while !self.eat('}') {
                self.eat(',');
                let key = match self.value_key()? {
                    Value::String(k) => k,
                    other => other.to_string(),
                };
                self.text = self.text.trim_start().strip_prefix(':')?;
                object.insert(key, self.value()?);
            }
            return Some(Value::Object(object));
        }
        if let Some(rest) = self.text.strip_prefix('[') {
            self.text = rest;
            let mut items = Vec::new();
            while !self.eat(']') {
                self.eat(',');
                items.push(self.value()?);
            }
            return Some(Value::Array(items));
        }
        // A number, true, false or null, up to the next delimiter.
        let end = self.text.find([',', '}', ']']).unwrap_or(self.text.len());
        let scalar = self.text[..end].trim();
        self.text = &self.text[end..];
        serde_json::from_str(scalar).ok().or_else(|| (!scalar.is_empty()).then(|| Value::String(scalar.into())))
    }

    /// A key: quoted, or bare up to its colon.
    fn value_key(&mut self) -> Option<Value> {
        self.text = self.text.trim_start();
        if self.text.starts_with(Self::QUOTE) {
            return self.value();
        }
        let end = self.text.find(':')?;
        let key = self.text[..end].trim().to_string();
        self.text = &self.text[end..];
        Some(Value::String(key))
    }

    fn eat(&mut self, c: char) -> bool {
        self.text = self.text.trim_start();
        match self.text.strip_prefix(c) {
            Some(rest) => {
                self.text = rest;
                true
            }
            None => false,
        }
    }
}

/// Mistral's `NAME[ARGS]{…}` (with `[CALL_ID]ID` before `[ARGS]` in earlier turns), or
/// `[{"name": …, "arguments": …}, …]`.
fn mistral_calls(body: &str) -> Option<Vec<(String, String)>> {
    let body = body.trim();
    if let Some((name, arguments)) = body.split_once("[ARGS]") {
        let arguments: Value = serde_json::from_str(arguments.trim()).ok()?;
        // Earlier turns carry the call's id too: NAME[CALL_ID]ID[ARGS]{…}.
        let name = name.split_once("[CALL_ID]").map_or(name, |(name, _)| name);
        return Some(vec![(name.trim().to_string(), arguments.to_string())]);
    }
    let list: Vec<Value> = serde_json::from_str(body).ok()?;
    list.iter().map(|call| json_call(&call.to_string())).collect()
}

#[cfg(test)]
/// The answer text the reasoning splitter passes on from the last assistant turn of a
/// harmony conversation, its markup tokens made ids (the rest one piece each).
pub(crate) fn harmony_answer(text: &str) -> String {
    use crate::reasoning::{Channel, ReasoningFormat, ReasoningSplit};
    let last_turn = text.rfind("<|start|>assistant").map_or(text, |at| &text[at..]);
    let markup = ["<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|call|>", "<|constrain|>"];
    let mut tokens = Vec::new();
    let mut rest = last_turn;
    while !rest.is_empty() {
        let next = markup.iter().filter_map(|m| rest.find(m).map(|at| (at, *m))).min();
        match next {
            Some((0, m)) => {
                let id = markup.iter().position(|x| *x == m).unwrap_or(0) as u32 + 1;
                tokens.push((id, m));
                rest = &rest[m.len()..];
            }
            Some((at, _)) => {
                tokens.push((100, &rest[..at]));
                rest = &rest[at..];
            }
            None => {
                tokens.push((100, rest));
                rest = "";
            }
        }
    }
    let mut split = ReasoningSplit::new(ReasoningFormat::Harmony { start: 1, channel: 2, message: 3, end: 4 }, &[]);
    let mut answer = String::new();
    for (id, piece) in tokens {
        // The model's <|call|> ends generation: the splitter never sees it.
        if id == 5 {
            break;
        }
        if let Some((Channel::Answer, text)) = split.classify(id, piece) {
            answer.push_str(&text);
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `pieces` through a scan: the content and the calls.
    fn scan(pieces: &[&str]) -> (String, Vec<Value>) {
        scan_as(ToolFormat::Hermes, pieces)
    }

    fn scan_as(format: ToolFormat, pieces: &[&str]) -> (String, Vec<Value>) {
        let mut s = ToolCallScan::new(format);
        let (mut content, mut calls) = (String::new(), Vec::new());
        for piece in pieces {
            let (text, new) = s.push(piece);
            content.push_str(&text);
            calls.extend(new);
        }
        let (rest, last) = s.finish();
        content.push_str(&rest);
        calls.extend(last);
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
    fn llama3_calls_are_whole_answers_of_json() {
        let llama = |pieces: &[&str]| scan_as(ToolFormat::Llama3, pieces);
        let (content, calls) = llama(&["\n{\"name\": \"f\", ", "\"parameters\": {\"a\": 1}}"]);
        assert_eq!((content.as_str(), calls[0]["function"]["arguments"].as_str()), ("", Some("{\"a\":1}")));
        assert_eq!(llama(&["Sure: {\"a\": 1}"]), ("Sure: {\"a\": 1}".into(), vec![]));
        assert_eq!(llama(&["{not json}"]), ("{not json}".into(), vec![]));
        let (content, calls) = llama(&["<|python_tag|>{\"name\": \"g\", \"parameters\": {}}"]);
        assert_eq!((content.as_str(), calls[0]["function"]["name"].as_str()), ("", Some("g")));
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
            ("Qwen 3", ToolFormat::Hermes, include_str!("../../tests/fixtures/templates/Qwen-Qwen3-0.6B.jinja")),
            ("Qwen 3.5", ToolFormat::Hermes, include_str!("../../tests/fixtures/templates/Qwen3.5-4B.jinja")),
            (
                "Hermes 3",
                ToolFormat::Hermes,
                include_str!("../../tests/fixtures/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja"),
            ),
            ("Gemma 4", ToolFormat::Gemma4, include_str!("../../tests/fixtures/templates/google-gemma-4-31B-it.jinja")),
            (
                "Mistral Small 3.2",
                ToolFormat::Mistral,
                include_str!("../../tests/fixtures/templates/Mistral-Small-3.2-24B-Instruct-2506.jinja"),
            ),
            (
                "Mistral Nemo",
                ToolFormat::Mistral,
                include_str!("../../tests/fixtures/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja"),
            ),
            (
                "Llama 3.1",
                ToolFormat::Llama3,
                include_str!("../../tests/fixtures/templates/meta-llama-Llama-3.1-8B-Instruct.jinja"),
            ),
        ];
        let arguments = json!({"city": "Paris", "days": 3, "units": {"temp": "C"}, "hours": [6, 18]});
        // Mistral Nemo's template wants ids of nine letters and digits.
        let call =
            json!({"id": "abcDEF123", "type": "function", "function": {"name": "get_weather", "arguments": arguments}});
        // The conversation up to the call (formats without a closing tag run to the answer's end).
        let messages = [
            ChatMessage::new("user", "Weather in Paris?"),
            ChatMessage { tool_calls: vec![call], ..ChatMessage::new("assistant", "") },
        ];
        for (name, format, source) in templates {
            assert_eq!(ToolFormat::detect(source), format, "{name}");
            let mut rendered = ChatTemplate::new(source, "", "").unwrap().render(&messages, false).unwrap();
            if format == ToolFormat::Llama3 {
                // Its calls are whole answers: the assistant's turn alone.
                let turn = rendered.rsplit("<|end_header_id|>\n\n").next().unwrap_or("");
                rendered = turn.trim_end_matches("<|eot_id|>").to_string();
            }
            let (_, calls) = scan_as(format, &[&rendered]);
            assert_eq!(calls.len(), 1, "{name}: {rendered}");
            assert_eq!(calls[0]["function"]["name"], "get_weather", "{name}");
            let read: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(read, arguments, "{name}: {rendered}");
            // Streamed in two pieces cut anywhere: the same content and calls.
            let whole = scan_as(format, &[&rendered]);
            for cut in (1..rendered.len()).filter(|&c| rendered.is_char_boundary(c)) {
                assert_eq!(scan_as(format, &[&rendered[..cut], &rendered[cut..]]), whole, "{name}, cut at {cut}");
            }
        }
        // gpt-oss: the call is in harmony's markup, which the reasoning splitter turns into
        // the scan's text; its template writes the recipient in the header.
        let source = include_str!("../../tests/fixtures/templates/openai-gpt-oss-120b.jinja");
        assert_eq!(ToolFormat::detect(source), ToolFormat::Harmony);
        let rendered = ChatTemplate::new(source, "", "").unwrap().render(&messages, false).unwrap();
        let (content, calls) = scan_as(ToolFormat::Harmony, &[&harmony_answer(&rendered)]);
        assert_eq!((content.as_str(), calls.len()), ("", 1), "{rendered}");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let read: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(read, arguments, "{rendered}");
        // As gpt-oss writes calls: the recipient beside the channel, after its reasoning.
        let written = "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}";
        let answer = harmony_answer(written);
        let (content, calls) = scan_as(ToolFormat::Harmony, &[&answer]);
        assert_eq!((content.as_str(), calls[0]["function"]["arguments"].as_str()), ("", Some(r#"{"city":"Paris"}"#)));
        for cut in (1..answer.len()).filter(|&c| answer.is_char_boundary(c)) {
            assert_eq!(scan_as(ToolFormat::Harmony, &[&answer[..cut], &answer[cut..]]).1, calls, "cut at {cut}");
        }
        // Gemma 4's strings may hold its delimiters' neighbours: commas, braces, colons.
        let (_, calls) =
            scan_as(ToolFormat::Gemma4, &["<|tool_call>call:note{text:<|\"|>a, {b}: c<|\"|>}<tool_call|>"]);
        assert_eq!(calls[0]["function"]["arguments"], r#"{"text":"a, {b}: c"}"#);
    }
}
