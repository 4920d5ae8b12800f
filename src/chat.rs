//! Chat templates (`tokenizer.chat_template`) rendered the way HF transformers does:
//! Jinja with `trim_blocks` and `lstrip_blocks`, the variables `messages`, `add_generation_prompt`,
//! `bos_token`, `eos_token`, and the helpers `raise_exception`, `strftime_now` and `tojson`.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, ValueKind};
use minijinja::{Environment, ErrorKind, Value, context};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// An assistant's calls of tools, in OpenAI's shape (`id`, `type`, `function` with `name`
    /// and `arguments`: an object, as templates expect it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<serde_json::Value>,
    /// A tool's answer: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into(), ..Default::default() }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    source: String,
    knows_tools: bool,
}

const TEMPLATE_NAME: &str = "chat_template";

/// wasm32-unknown-unknown has no clock (`SystemTime::now` panics there), so `strftime_now` stays
/// undefined and templates use their own fallback date (they test `strftime_now is defined`).
const HAS_CLOCK: bool = !cfg!(all(target_arch = "wasm32", target_os = "unknown"));

fn template_err(e: minijinja::Error) -> Error {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let _ = write!(msg, ": {cause}");
        source = cause.source();
    }
    Error::Template(msg)
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(template_err)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        if HAS_CLOCK {
            env.add_function("strftime_now", strftime_now);
        }
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned()).map_err(template_err)?;
        let mut template = ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            source: source.to_owned(),
            knows_tools: false,
        };
        template.knows_tools = template.renders_tools();
        Ok(template)
    }

    /// The template's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template describes tools to the model (else they must be described for it:
    /// `prompt::ChatExtras`).
    pub fn knows_tools(&self) -> bool {
        self.knows_tools
    }

    /// Whether a conversation renders differently with a tool than without.
    fn renders_tools(&self) -> bool {
        let probe = [ChatMessage::new("user", "Hi")];
        // As clients send them (and as templates take for granted: `serve::api::complete_tools`).
        let tool = serde_json::json!({"type": "function", "function": {"name": "probe_tool",
            "description": "A probe.", "parameters": {"type": "object", "properties": {}}}});
        match (self.render(&probe, true), self.render_with_tools(&probe, Some(&[tool]), &[], true)) {
            (Ok(plain), Ok(with_tool)) => plain != with_tool,
            _ => false,
        }
    }

    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_with_tools(messages, None, &[], add_generation_prompt)
    }

    /// With the tools the model may call (OpenAI's list of `{"type": "function", "function":
    /// {name, description, parameters}}`), for templates that describe them to the model, and
    /// the names of those among them that are the model's built-in tools (Llama 3.x's
    /// `builtin_tools`, left undefined when there are none, as templates test).
    pub fn render_with_tools(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[serde_json::Value]>,
        builtin_tools: &[String],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self.env.get_template(TEMPLATE_NAME).map_err(template_err)?;
        let mut context = context! {
            messages => Value::from(Serde(messages)),
            // transformers always passes these, as None when unused.
            tools => tools.map(|t| Value::from(Serde(t))),
            documents => (),
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        if !builtin_tools.is_empty() {
            context = context! { builtin_tools => Value::from(Serde(builtin_tools)), ..context };
        }
        template.render(context).map_err(template_err)
    }
}

fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
}

fn strftime_now(format: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    strftime(format, now)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// A small strftime over UTC for the specifiers chat templates use
/// (%Y %y %m %d %e %H %I %M %S %p %b %h %B %a %A %%, and the `-` no-padding flag).
fn strftime(format: &str, unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[((days + 4) % 7) as usize];
    let month_name = MONTHS[(month - 1) as usize];

    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = chars.next();
        let pad = spec != Some('-');
        if !pad {
            spec = chars.next();
        }
        let num = |out: &mut String, v: u64| {
            let _ = if pad { write!(out, "{v:02}") } else { write!(out, "{v}") };
        };
        match spec {
            Some('Y') => num(&mut out, year),
            Some('y') => num(&mut out, year % 100),
            Some('m') => num(&mut out, u64::from(month)),
            Some('d') => num(&mut out, u64::from(day)),
            Some('e') => {
                let _ = write!(out, "{day:2}");
            }
            Some('H') => num(&mut out, hour),
            Some('I') => num(&mut out, hour12),
            Some('M') => num(&mut out, minute),
            Some('S') => num(&mut out, second),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('B') => out.push_str(month_name),
            Some('b' | 'h') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(weekday),
            Some('a') => out.push_str(&weekday[..3]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01, proleptic Gregorian.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Count from 0000-03-01 so the leap day is the last day of the (March-based) year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`, which transformers uses for
/// `tojson` (unlike minijinja's built-in, it does not HTML-escape and puts spaces after , and :).
fn tojson(value: &Value, kwargs: Kwargs) -> std::result::Result<String, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    if indent.is_some_and(|i| i > MAX_JSON_INDENT) {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson indent is limited to {MAX_JSON_INDENT}"),
        ));
    }
    let mut out = String::new();
    write_json(&mut out, value, indent, 0)?;
    Ok(out)
}

const MAX_JSON_INDENT: usize = 32;
const MAX_JSON_DEPTH: usize = 256;

fn write_json(
    out: &mut String,
    value: &Value,
    indent: Option<usize>,
    depth: usize,
) -> std::result::Result<(), minijinja::Error> {
    if depth > MAX_JSON_DEPTH {
        return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: value nested too deeply"));
    }
    let newline = |out: &mut String, depth: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', width * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            let _ = write!(out, "{value}");
        }
        ValueKind::String => write_json_str(out, value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(out, item, indent, depth + 1)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let keys: Vec<Value> = value.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                match key.as_str() {
                    Some(k) => write_json_str(out, k),
                    None => write_json_str(out, &key.to_string()),
                }
                out.push_str(": ");
                write_json(out, &value.get_item(key)?, indent, depth + 1)?;
            }
            newline(out, depth);
            out.push('}');
        }
        ValueKind::Bytes => write_json_str(out, &String::from_utf8_lossy(value.as_bytes().unwrap_or_default())),
        _ => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot serialize {} to JSON", value.kind()),
            ));
        }
    }
    Ok(())
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}";

    const LLAMA3: &str = r"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage::new(role, content)
    }

    fn render(source: &str, messages: &[ChatMessage]) -> Result<String> {
        ChatTemplate::new(source, "<s>", "</s>")?.render(messages, true)
    }

    #[test]
    fn smollm2_template() {
        let tmpl = ChatTemplate::new(SMOLLM2, "<|im_start|>", "<|im_end|>").unwrap();
        assert_eq!(
            tmpl.render(&[msg("user", "Hi")], true).unwrap(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            tmpl.render(&[msg("system", "S"), msg("user", "Hi")], false).unwrap(),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn llama3_template() {
        let tmpl = ChatTemplate::new(LLAMA3, "<|begin_of_text|>", "<|eot_id|>").unwrap();
        let out = tmpl.render(&[msg("system", "Be brief."), msg("user", "  Hi  ")], true).unwrap();
        assert_eq!(
            out,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn raise_exception_is_a_template_error() {
        let source = "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}\
                      {{ raise_exception('Only user and assistant roles are supported!') }}\
                      {% endif %}{{ m.content }}{% endfor %}";
        assert_eq!(render(source, &[msg("user", "ok")]).unwrap(), "ok");
        let Err(Error::Template(e)) = render(source, &[msg("system", "no")]) else {
            panic!("expected a template error");
        };
        assert!(e.contains("Only user and assistant roles are supported!"), "{e}");
    }

    #[test]
    fn python_string_methods() {
        let source = "{% for m in messages %}{% if m.content.startswith('/') %}cmd:{% endif %}\
                      {{ m.content.strip() }}|{{ m['role'].upper() }};{% endfor %}";
        let out = render(source, &[msg("user", "  hi  "), msg("assistant", "/x ")]).unwrap();
        assert_eq!(out, "hi|USER;cmd:/x|ASSISTANT;");
    }

    #[test]
    fn hf_whitespace_control() {
        let source = "{% for m in messages %}\n  {% if true %}\n{{ m.content }}\n  {% endif %}\n{% endfor %}\n";
        assert_eq!(render(source, &[msg("user", "a"), msg("user", "b")]).unwrap(), "a\nb\n");
    }

    #[test]
    fn tojson_like_python() {
        let source = r#"{{ {"a": 1, "b": [true, none, 'x"<é\n'], "c": 1.5} | tojson }}|{{ [] | tojson(indent=2) }}|{{ {"k": [1]} | tojson(indent=2) }}"#;
        assert_eq!(
            render(source, &[]).unwrap(),
            "{\"a\": 1, \"b\": [true, null, \"x\\\"<é\\n\"], \"c\": 1.5}|[]|{\n  \"k\": [\n    1\n  ]\n}"
        );
    }

    #[test]
    fn strftime_formats() {
        // 2023-11-14 22:13:20 UTC, a Tuesday.
        assert_eq!(strftime("%d %b %Y", 1_700_000_000), "14 Nov 2023");
        assert_eq!(
            strftime("%A %B %-d, %H:%M:%S %I%p %y %%", 1_700_000_000),
            "Tuesday November 14, 22:13:20 10PM 23 %"
        );
        assert_eq!(strftime("%Y-%m-%d", 951_782_400), "2000-02-29");
        assert_eq!(strftime("%Y-%m-%d %a", 0), "1970-01-01 Thu");
        let source = "{{ strftime_now('%Y') }}";
        assert_eq!(render(source, &[]).unwrap().len(), 4);
    }

    #[test]
    fn bos_eos_and_syntax_errors() {
        assert_eq!(render("{{ bos_token }}x{{ eos_token }}", &[]).unwrap(), "<s>x</s>");
        let tools = "{% if tools is not none %}T{% endif %}{% if tools is defined %}D{% endif %}";
        assert_eq!(render(tools, &[]).unwrap(), "D");
        let Err(Error::Template(e)) = ChatTemplate::new("{% for m in messages %}{{ m.content }", "", "") else {
            panic!("expected a syntax error");
        };
        assert!(e.contains("syntax error"), "{e}");
    }
}

#[cfg(test)]
mod real_templates {
    use super::*;

    fn render(source: &str, messages: &[ChatMessage]) -> String {
        ChatTemplate::new(source, "", "").and_then(|t| t.render(messages, true)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn conversation() -> Vec<ChatMessage> {
        let m = |role: &str, content: &str| ChatMessage::new(role, content);
        vec![m("system", "Be brief."), m("user", "What is 2+2?"), m("assistant", "4."), m("user", "And 3+3?")]
    }

    #[test]
    fn reasoning_models_templates_render_with_their_generation_prompt() {
        let oss = render(include_str!("../tests/fixtures/templates/openai-gpt-oss-120b.jinja"), &conversation());
        for needle in
            ["<|start|>user<|message|>What is 2+2?<|end|>", "Be brief.", "<|channel|>final<|message|>4.<|end|>"]
        {
            assert!(oss.contains(needle), "gpt-oss lacks {needle:?}:\n{oss}");
        }
        assert!(oss.ends_with("<|start|>user<|message|>And 3+3?<|end|><|start|>assistant"), "{oss}");

        let qwen3 = render(include_str!("../tests/fixtures/templates/Qwen-Qwen3-0.6B.jinja"), &conversation());
        assert!(qwen3.ends_with("<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n"), "{qwen3}");
        let qwen35 = render(include_str!("../tests/fixtures/templates/Qwen3.5-4B.jinja"), &conversation());
        assert!(qwen35.ends_with("<|im_start|>assistant\n<think>\n"), "{qwen35}");
        let gemma4 = render(include_str!("../tests/fixtures/templates/google-gemma-4-31B-it.jinja"), &conversation());
        assert!(gemma4.starts_with("<|turn>system\nBe brief.<turn|>\n<|turn>user\nWhat is 2+2?<turn|>"), "{gemma4}");
        // Thinking off: the generation prompt closes an empty thought channel.
        assert!(
            gemma4.ends_with("<|turn>user\nAnd 3+3?<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"),
            "{gemma4}"
        );
    }

    #[test]
    fn tools_calls_and_answers_go_through_a_template_that_knows_them() {
        let source = include_str!("../tests/fixtures/templates/Qwen-Qwen3-0.6B.jinja");
        let tool = serde_json::json!({"type": "function", "function": {"name": "get_weather",
            "description": "The weather in a city", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
        let call = serde_json::json!({"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris"}}});
        let messages = [
            ChatMessage::new("user", "Weather in Paris?"),
            ChatMessage { tool_calls: vec![call], ..ChatMessage::new("assistant", "") },
            ChatMessage { tool_call_id: Some("call_1".into()), ..ChatMessage::new("tool", "18 C, sunny") },
        ];
        let tmpl = ChatTemplate::new(source, "", "<|im_end|>").unwrap();
        let out = tmpl.render_with_tools(&messages, Some(&[tool]), &[], true).unwrap();
        assert!(out.contains("<tools>\n{\"type\": \"function\""), "{out}");
        assert!(out.contains("\"name\": \"get_weather\""), "{out}");
        assert!(
            out.contains(
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
            ),
            "{out}"
        );
        assert!(out.contains("<tool_response>\n18 C, sunny\n</tool_response>"), "{out}");
        // Without tools, no tool section.
        assert!(!tmpl.render(&messages[..1], true).unwrap().contains("<tools>"));
        assert!(tmpl.knows_tools());
        let chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
        assert!(!ChatTemplate::new(chatml, "", "").unwrap().knows_tools());
    }
}
