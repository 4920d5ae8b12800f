//! `tool_choice: "required"` or a named function: the answer held, by a grammar, to calls in
//! the model's own format (`ToolFormat`), each call's arguments valid under its function's
//! `parameters` schema — so the scanner in `tool_calls.rs` always finds them.

use super::gemma4_args::arguments_rules;
use super::tool_calls::ToolFormat;
use crate::grammar::{Grammar, one_line_json};
use crate::reasoning::HARMONY_CALL;
use serde_json::{Value, json};

/// What `tool_choice` asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolChoice {
    /// The model decides (the default with tools).
    Auto,
    /// No tools: they are left out of the prompt.
    None,
    /// At least one call, of any of the tools.
    Required,
    /// A call of this function.
    Named(String),
}

impl ToolChoice {
    /// `tool_choice` as OpenAI sends it: "auto", "none", "required" or
    /// `{"type": "function", "function": {"name": …}}`.
    pub fn read(choice: Option<&Value>) -> Result<ToolChoice, String> {
        match choice {
            None => Ok(ToolChoice::Auto),
            Some(Value::String(s)) if s == "auto" => Ok(ToolChoice::Auto),
            Some(Value::String(s)) if s == "none" => Ok(ToolChoice::None),
            Some(Value::String(s)) if s == "required" => Ok(ToolChoice::Required),
            Some(named) => match named["function"]["name"].as_str() {
                Some(name) if named["type"] == "function" => Ok(ToolChoice::Named(name.to_string())),
                _ => Err(format!(
                    "tool_choice must be \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \
                     \"function\": {{\"name\": …}}}} (got {named})"
                )),
            },
        }
    }
}

/// A function the model may call: its name and its arguments' schema.
struct Function {
    name: String,
    parameters: Value,
}

/// What of the model a call format's grammar may need: its chat template's source where the
/// format has variants (Mistral's), and the ids of its markup tokens (harmony's, Gemma 4's).
#[derive(Clone, Copy)]
pub struct ModelMarkup<'a> {
    pub template: Option<&'a str>,
    pub token_id: &'a dyn Fn(&str) -> Option<u32>,
}

/// The grammar for the calls `choice` forces (None for auto and none), from `tools` as the
/// request gives them. `parallel`: more than one call allowed.
pub fn call_grammar(
    format: ToolFormat,
    tools: &[Value],
    choice: &ToolChoice,
    parallel: bool,
    model: ModelMarkup,
) -> Result<Option<Grammar>, String> {
    let template = model.template;
    let only = match choice {
        ToolChoice::Auto | ToolChoice::None => return Ok(None),
        ToolChoice::Required => None,
        ToolChoice::Named(name) => Some(name.as_str()),
    };
    let functions = functions(tools, only)?;
    let lark = match format {
        ToolFormat::Hermes => {
            let call = any_of(&functions, "arguments");
            // Qwen's templates put the JSON on a line of its own; the generic format does not.
            let each = "call: \"<tool_call>\" \"\\n\"? body \"\\n\"? \"</tool_call>\"";
            format!("{}\n{each}\nbody: %json {call}", start(parallel, "\"\\n\""))
        }
        ToolFormat::Llama3 => format!("start: %json {}", any_of(&functions, "parameters")),
        ToolFormat::Mistral if template.is_some_and(|t| t.contains("[ARGS]")) => {
            let (alternatives, rules) =
                per_function(&functions, |f| format!("{} \"[ARGS]\"", literal(&f.name)), json_arguments)?;
            let each = format!("call: \"[TOOL_CALLS]\" ({alternatives})");
            format!("{}\n{each}\n{rules}", start(parallel, "\"\""))
        }
        ToolFormat::Mistral => {
            let mut list = json!({"type": "array", "items": calls(&functions, "arguments"), "minItems": 1});
            if !parallel {
                list["maxItems"] = 1.into();
            }
            format!("start: \"[TOOL_CALLS]\" body\nbody: %json {}", one_line_json(list))
        }
        ToolFormat::Gemma4 => {
            // `<|tool_call>call:NAME{…}<tool_call|>`, one after another; markup by token where
            // the vocabulary has it.
            let token = |text: &str| (model.token_id)(text).map_or_else(|| literal(text), |id| format!("<[{id}]>"));
            let quote = token("<|\"|>");
            let (alternatives, rules) = per_function(
                &functions,
                |f| literal(&format!("call:{}", f.name)),
                |rule, f| arguments_rules(rule, &f.parameters, &quote),
            )?;
            let each = format!("call: {} ({alternatives}) {}", token("<|tool_call>"), token("<tool_call|>"));
            format!("{}\n{each}\n{rules}", start(parallel, "\"\""))
        }
        ToolFormat::Harmony => {
            // One message to a function (its <|call|> ends generation, so `parallel` changes
            // nothing), its recipient named beside the channel as the model writes it.
            let (Some(channel), Some(message)) = ((model.token_id)("<|channel|>"), (model.token_id)("<|message|>"))
            else {
                return Err("this model's vocabulary lacks harmony's markup tokens for calls".into());
            };
            let (alternatives, rules) = per_function(
                &functions,
                |f| format!("{} <[{message}]>", literal(&format!("commentary {HARMONY_CALL}{} json", f.name))),
                json_arguments,
            )?;
            format!("start: <[{channel}]> ({alternatives})\n{rules}")
        }
    };
    Ok(Some(Grammar::Lark(lark)))
}

/// A call of any one of `functions` where each names itself with `head` and then gives its
/// arguments: the alternatives (`HEAD args0 | HEAD args1 | …`) and the rules `arguments` gives
/// for each (`args0`, …), which hold its arguments to its schema.
fn per_function(
    functions: &[Function],
    head: impl Fn(&Function) -> String,
    arguments: impl Fn(&str, &Function) -> Result<String, String>,
) -> Result<(String, String), String> {
    let (mut alternatives, mut rules) = (Vec::new(), Vec::new());
    for (i, f) in functions.iter().enumerate() {
        alternatives.push(format!("{} args{i}", head(f)));
        rules.push(arguments(&format!("args{i}"), f)?);
    }
    Ok((alternatives.join(" | "), rules.join("\n")))
}

/// Arguments as JSON on one line, under the function's schema.
fn json_arguments(rule: &str, f: &Function) -> Result<String, String> {
    Ok(format!("{rule}: %json {}", one_line_json(f.parameters.clone())))
}

/// `start` for one call, or for one or more with `separator` between them.
fn start(parallel: bool, separator: &str) -> String {
    if parallel { format!("start: call ({separator} call)*") } else { "start: call".into() }
}

/// A Lark string literal (JSON's escapes are Lark's).
pub(super) fn literal(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

fn functions(tools: &[Value], only: Option<&str>) -> Result<Vec<Function>, String> {
    let mut functions = Vec::new();
    for tool in tools {
        let function = &tool["function"];
        let Some(name) = function["name"].as_str() else {
            return Err(format!("each tool needs a function with a name (got {tool})"));
        };
        if only.is_none_or(|only| only == name) {
            let parameters = match &function["parameters"] {
                Value::Null => json!({"type": "object"}),
                schema => schema.clone(),
            };
            functions.push(Function { name: name.to_string(), parameters });
        }
    }
    match (functions.is_empty(), only) {
        (true, Some(name)) => Err(format!("tool_choice names {name:?}, which is not among the tools")),
        (true, None) => Err("tool_choice \"required\" needs at least one tool".into()),
        _ => Ok(functions),
    }
}

/// The schema of one call object of any of `functions`: `{"name": …, ARGUMENTS: {…}}`.
fn calls(functions: &[Function], arguments: &str) -> Value {
    let one: Vec<Value> = functions
        .iter()
        .map(|f| {
            json!({
                "type": "object",
                "properties": {"name": {"const": f.name}, arguments: f.parameters},
                "required": ["name", arguments],
                "additionalProperties": false
            })
        })
        .collect();
    if one.len() == 1 { one.into_iter().next().unwrap_or_default() } else { json!({ "anyOf": one }) }
}

fn any_of(functions: &[Function], arguments: &str) -> Value {
    one_line_json(calls(functions, arguments))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model with `template` and no markup tokens.
    fn markup(template: Option<&str>) -> ModelMarkup<'_> {
        ModelMarkup { template, token_id: &|_| None }
    }

    /// A model whose vocabulary has `specials` as tokens 256, 257, … (as `takes_text_with_specials`).
    fn with_tokens<'a>(specials: &'a [&str]) -> impl Fn(&str) -> Option<u32> + 'a {
        move |text| specials.iter().position(|s| *s == text).map(|i| 256 + i as u32)
    }

    fn tools() -> Vec<Value> {
        serde_json::from_str(
            r#"[{"type": "function", "function": {"name": "get_weather",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "now"}}]"#,
        )
        .unwrap()
    }

    #[test]
    fn tool_choice_is_read_as_openai_sends_it() {
        assert_eq!(ToolChoice::read(None), Ok(ToolChoice::Auto));
        assert_eq!(ToolChoice::read(Some(&json!("none"))), Ok(ToolChoice::None));
        assert_eq!(ToolChoice::read(Some(&json!("required"))), Ok(ToolChoice::Required));
        let named = json!({"type": "function", "function": {"name": "now"}});
        assert_eq!(ToolChoice::read(Some(&named)), Ok(ToolChoice::Named("now".into())));
        assert!(ToolChoice::read(Some(&json!("always"))).is_err());
        assert!(ToolChoice::read(Some(&json!({"type": "function"}))).is_err());
    }

    #[test]
    fn forced_calls_name_only_the_tools_asked_for() {
        let tools = tools();
        let grammar = |choice: ToolChoice, format| call_grammar(format, &tools, &choice, true, markup(None));
        assert_eq!(grammar(ToolChoice::Auto, ToolFormat::Hermes), Ok(None));
        let Ok(Some(Grammar::Lark(hermes))) = grammar(ToolChoice::Named("now".into()), ToolFormat::Hermes) else {
            panic!("a grammar")
        };
        assert!(hermes.contains("<tool_call>") && hermes.contains("\"now\"") && !hermes.contains("get_weather"));
        assert!(grammar(ToolChoice::Named("later".into()), ToolFormat::Hermes).unwrap_err().contains("\"later\""));
        assert!(call_grammar(ToolFormat::Hermes, &[], &ToolChoice::Required, true, markup(None)).is_err());
        let Ok(Some(Grammar::Lark(mistral))) = call_grammar(
            ToolFormat::Mistral,
            &tools,
            &ToolChoice::Required,
            false,
            markup(Some("[TOOL_CALLS]x[ARGS]")),
        ) else {
            panic!("a grammar")
        };
        assert!(mistral.contains("\"get_weather\" \"[ARGS]\" args0") && mistral.contains("start: call\n"));
    }

    #[test]
    fn the_forced_grammars_take_the_calls_the_scanner_reads() {
        use super::super::tool_calls::ToolCallScan;
        use crate::grammar::takes_text;
        let tools = tools();
        let weather = r#"{"name": "get_weather", "arguments": {"city": "Oslo"}}"#;
        let hermes_two = format!(
            "<tool_call>\n{weather}\n</tool_call>\n<tool_call>\n{{\"name\": \"now\", \"arguments\": {{}}}}\n</tool_call>"
        );
        let args = Some("{{ '[TOOL_CALLS]' + name + '[ARGS]' }}");
        let cases = [
            (ToolFormat::Hermes, None, true, hermes_two.clone(), vec!["get_weather", "now"]),
            (ToolFormat::Llama3, None, false, r#"{"name": "now", "parameters": {}}"#.into(), vec!["now"]),
            (
                ToolFormat::Mistral,
                args,
                true,
                r#"[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}[TOOL_CALLS]now[ARGS]{}"#.into(),
                vec!["get_weather", "now"],
            ),
            (ToolFormat::Mistral, None, false, format!("[TOOL_CALLS][{weather}]"), vec!["get_weather"]),
        ];
        for (format, template, parallel, text, names) in cases {
            let Ok(Some(grammar)) = call_grammar(format, &tools, &ToolChoice::Required, parallel, markup(template))
            else {
                panic!("{format:?}: a grammar")
            };
            assert!(takes_text(&grammar, &text), "{format:?} takes {text}\n{grammar:?}");
            let mut scan = ToolCallScan::new(format);
            let (mut content, mut calls) = scan.push(&text);
            let (rest, more) = scan.finish();
            content.push_str(&rest);
            calls.extend(more);
            assert_eq!(content.trim(), "", "{format:?}");
            let called: Vec<&str> = calls.iter().filter_map(|c| c["function"]["name"].as_str()).collect();
            assert_eq!(called, names, "{format:?}");
        }
        let one = |parallel| call_grammar(ToolFormat::Hermes, &tools, &ToolChoice::Required, parallel, markup(None));
        assert!(!takes_text(&one(false).unwrap().unwrap(), &hermes_two), "one call only");
        let generic = format!("<tool_call>{weather}</tool_call>");
        assert!(takes_text(&one(false).unwrap().unwrap(), &generic), "the generic format's calls, on one line");
        let wrong = r#"<tool_call>\n{"name": "get_weather", "arguments": {"city": 3}}\n</tool_call>"#;
        assert!(!takes_text(&one(true).unwrap().unwrap(), wrong), "arguments follow the schema");
        let named = call_grammar(ToolFormat::Hermes, &tools, &ToolChoice::Named("now".into()), true, markup(None));
        assert!(!takes_text(&named.unwrap().unwrap(), &format!("<tool_call>\n{weather}\n</tool_call>")));
    }

    #[test]
    fn a_forced_gemma4_call_takes_what_its_template_writes_and_holds_it_to_the_schema() {
        use super::super::tool_calls::ToolCallScan;
        use crate::chat::{ChatMessage, ChatTemplate};
        use crate::grammar::takes_text_with_specials;
        let specials = ["<|tool_call>", "<tool_call|>", "<|\"|>"];
        let token_id = with_tokens(&specials);
        let gemma4 = ModelMarkup { template: None, token_id: &token_id };
        let tools: Vec<Value> = serde_json::from_value(json!([
            {"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "units": {"$ref": "#/$defs/Units"},
                    "hours": {"type": "array", "items": {"type": "number"}},
                    "metric": {"type": "boolean"},
                    "note": {"type": ["string", "null"]}
                },
                "required": ["city", "days"],
                "$defs": {"Units": {"type": "object", "properties": {"temp": {"enum": ["C", "F"]}}, "required": ["temp"]}}
            }}},
            {"type": "function", "function": {"name": "now"}}
        ]))
        .unwrap();
        let arguments =
            json!({"city": "Paris, \"centre\"", "days": 3, "units": {"temp": "C"}, "hours": [6, 18.5], "metric": true});
        let call = json!({"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}});
        let messages = [
            ChatMessage::new("user", "Weather in Paris?"),
            ChatMessage { tool_calls: vec![call], ..ChatMessage::new("assistant", "") },
        ];
        let source = include_str!("../../tests/fixtures/templates/google-gemma-4-31B-it.jinja");
        let rendered = ChatTemplate::new(source, "", "").unwrap().render(&messages, false).unwrap();
        let (Some(from), Some(to)) = (rendered.find("<|tool_call>"), rendered.find("<tool_call|>")) else {
            panic!("a call in {rendered}")
        };
        let written = &rendered[from..to + "<tool_call|>".len()];
        let grammar =
            |choice: ToolChoice, parallel| match call_grammar(ToolFormat::Gemma4, &tools, &choice, parallel, gemma4) {
                Ok(Some(grammar)) => grammar,
                other => panic!("a grammar: {other:?}"),
            };
        let named = grammar(ToolChoice::Named("get_weather".into()), false);
        assert!(takes_text_with_specials(&named, written, &specials), "{written}\n{named:?}");
        let mut scan = ToolCallScan::new(ToolFormat::Gemma4);
        let (content, mut calls) = scan.push(written);
        calls.extend(scan.finish().1);
        assert_eq!((content.as_str(), calls.len()), ("", 1));
        let read: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(read, arguments);
        let q = "<|\"|>";
        let call = |args: &str| format!("<|tool_call>call:get_weather{{{args}}}<tool_call|>");
        for (args, why) in [
            (format!("city:{q}Oslo{q},days:2"), "the required keys alone"),
            (format!("city:{q}{q},days:-1,note:null"), "an empty string, a null"),
            (format!("city:{q}Oslo{q},days:2,hours:[],note:{q}x{q}"), "an empty array"),
        ] {
            assert!(takes_text_with_specials(&named, &call(&args), &specials), "{why}: {args}");
        }
        for (args, why) in [
            ("days:2".to_string(), "a required key missing"),
            (format!("city:{q}Oslo{q},days:{q}2{q}"), "a string for an integer"),
            (format!("city:{q}Oslo{q},days:2.5"), "a fraction for an integer"),
            (format!("city:{q}Oslo{q},days:2,units:{{temp:{q}K{q}}}"), "a value outside the enum"),
            (format!("days:2,city:{q}Oslo{q}"), "keys out of the template's order"),
            (format!("city:{q}Oslo{q},days:2,wind:1"), "a key the schema lacks"),
            ("city:\"Oslo\",days:2".to_string(), "a string without its delimiter tokens"),
        ] {
            assert!(!takes_text_with_specials(&named, &call(&args), &specials), "{why}: {args}");
        }
        let now = "<|tool_call>call:now{}<tool_call|>";
        assert!(!takes_text_with_specials(&named, now, &specials), "a function not named");
        let required = grammar(ToolChoice::Required, false);
        assert!(takes_text_with_specials(&required, now, &specials));
        assert!(
            takes_text_with_specials(
                &required,
                "<|tool_call>call:now{at:[1,{q}x{q}]}<tool_call|>".replace("{q}", q).as_str(),
                &specials
            ),
            "no schema: any arguments"
        );
        let two = format!("{written}{now}");
        assert!(!takes_text_with_specials(&required, &two, &specials), "one call unless parallel");
        assert!(takes_text_with_specials(&grammar(ToolChoice::Required, true), &two, &specials));
        // Schemas that cannot be written in its syntax are refused with a reason.
        let odd = [
            json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "https://example.com/a"}}}}}),
        ];
        let refused = call_grammar(ToolFormat::Gemma4, &odd, &ToolChoice::Required, false, gemma4).unwrap_err();
        assert!(refused.contains("$ref"), "{refused}");
    }

    #[test]
    fn a_forced_harmony_call_is_a_message_to_the_function_that_the_splitter_passes_on() {
        use super::super::tool_calls::{ToolCallScan, harmony_answer};
        use crate::grammar::takes_text_with_specials;
        // The test vocabulary's special tokens: <|channel|> is 256, <|message|> 257.
        let specials = ["<|channel|>", "<|message|>"];
        let token_id = with_tokens(&specials);
        let harmony = ModelMarkup { template: None, token_id: &token_id };
        let named = ToolChoice::Named("get_weather".into());
        let Ok(Some(grammar)) = call_grammar(ToolFormat::Harmony, &tools(), &named, true, harmony) else {
            panic!("a grammar")
        };
        let call = r#"<|channel|>commentary to=functions.get_weather json<|message|>{"city": "Oslo"}"#;
        assert!(takes_text_with_specials(&grammar, call, &specials), "{grammar:?}");
        for wrong in [
            r#"<|channel|>commentary to=functions.now json<|message|>{}"#,
            r#"<|channel|>commentary to=functions.get_weather json<|message|>{"city": 3}"#,
            r#"commentary to=functions.get_weather json<|message|>{"city": "Oslo"}"#,
        ] {
            assert!(!takes_text_with_specials(&grammar, wrong, &specials), "{wrong}");
        }
        let mut scan = ToolCallScan::new(ToolFormat::Harmony);
        let (content, mut calls) = scan.push(&harmony_answer(call));
        calls.extend(scan.finish().1);
        assert_eq!((content.as_str(), calls.len()), ("", 1));
        assert_eq!(calls[0]["function"]["arguments"], r#"{"city":"Oslo"}"#);
        // Without harmony's tokens there is no call format to force.
        assert!(call_grammar(ToolFormat::Harmony, &tools(), &named, true, markup(None)).is_err());
    }
}
