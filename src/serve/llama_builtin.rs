//! Llama 3.x's built-in tools. Its chat template, given `builtin_tools`, tells the model it has
//! an IPython environment and names the tools it was trained to call in a syntax of their own:
//! `<|python_tag|>brave_search.call(query="…")` for search and Wolfram Alpha, bare code after
//! `<|python_tag|>` for the code interpreter. A request offers them as ordinary functions named
//! as the model knows them (as llama-server takes them).

use serde_json::{Value, json};

/// The function names that are built-in tools, and the one of them that takes code.
const SEARCH: &[&str] = &["brave_search", "web_search", "wolfram_alpha"];
const CODE: &[&str] = &["code_interpreter", "python"];

/// The names among `tools` (OpenAI's list) that `template` knows as built-in tools.
pub fn builtin_names(template: Option<&str>, tools: &[Value]) -> Vec<String> {
    if !template.is_some_and(|t| t.contains("builtin_tools")) {
        return Vec::new();
    }
    tools
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str())
        .filter(|name| SEARCH.contains(name) || CODE.contains(name))
        .map(str::to_string)
        .collect()
}

/// Of `names` (`builtin_names`), the tool that takes bare code.
pub fn code_tool(names: &[String]) -> Option<String> {
    names.iter().find(|name| CODE.contains(&name.as_str())).cloned()
}

/// `NAME.call(key=VALUE, …)` with JSON values: the name and the arguments as JSON text.
pub fn call_syntax(body: &str) -> Option<(String, String)> {
    let (name, mut rest) = body.trim().split_once(".call(")?;
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let mut arguments = serde_json::Map::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(')') {
            return after.trim().is_empty().then(|| (name.to_string(), Value::Object(arguments).to_string()));
        }
        if !arguments.is_empty() {
            rest = rest.strip_prefix(',')?.trim_start();
        }
        let (key, after) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let mut values = serde_json::Deserializer::from_str(after).into_iter::<Value>();
        let value = values.next()?.ok()?;
        rest = &after[values.byte_offset()..];
        arguments.insert(key.to_string(), value);
    }
}

/// Bare code after `<|python_tag|>`: a call of `tool` with the code as its `code` argument.
pub fn code_call(tool: &str, body: &str) -> Option<(String, String)> {
    let code = body.trim();
    (!code.is_empty()).then(|| (tool.to_string(), json!({ "code": code }).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_syntax_reads_json_values_and_refuses_anything_else() {
        let read = |body| call_syntax(body).map(|(name, args)| (name, serde_json::from_str::<Value>(&args).unwrap()));
        assert_eq!(
            read(r#"brave_search.call(query="a, b=c)")"#),
            Some(("brave_search".into(), json!({"query": "a, b=c)"})))
        );
        assert_eq!(
            read(r#" wolfram_alpha.call( query = "2+2" , n=3 ) "#),
            Some(("wolfram_alpha".into(), json!({"query": "2+2", "n": 3})))
        );
        assert_eq!(read("python.call()"), Some(("python".into(), json!({}))));
        for wrong in [
            "brave_search.call(query='x')",
            "brave_search.call(query=\"x\"",
            "brave_search.call(query=\"x\") and more",
            "a b.call(q=1)",
            "print(1)",
            "f.call(q=1 r=2)",
        ] {
            assert_eq!(call_syntax(wrong), None, "{wrong}");
        }
        assert_eq!(code_call("python", "\nprint(1)\n"), Some(("python".into(), r#"{"code":"print(1)"}"#.into())));
    }

    #[test]
    fn built_in_tools_are_found_by_name_where_the_template_knows_them() {
        let tools = [
            json!({"function": {"name": "brave_search"}}),
            json!({"function": {"name": "get_weather"}}),
            json!({"function": {"name": "python"}}),
        ];
        let llama = include_str!("../../tests/fixtures/templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
        let names = builtin_names(Some(llama), &tools);
        assert_eq!(names, ["brave_search", "python"]);
        assert_eq!(code_tool(&names).as_deref(), Some("python"));
        let qwen = include_str!("../../tests/fixtures/templates/Qwen-Qwen3-0.6B.jinja");
        assert!(builtin_names(Some(qwen), &tools).is_empty());
    }

    #[test]
    fn the_llama_template_is_told_of_its_built_in_tools_and_its_calls_are_read_back() {
        use crate::chat::{ChatMessage, ChatTemplate};
        use crate::serve::tool_calls::{CallReading, ToolCallScan, ToolFormat};
        let source = include_str!("../../tests/fixtures/templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
        let template = ChatTemplate::new(source, "", "").unwrap();
        let tools = [json!({"type": "function", "function": {"name": "brave_search", "description": "Search.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}})];
        let names = builtin_names(Some(source), &tools);
        let call = json!({"id": "c1", "type": "function",
            "function": {"name": "brave_search", "arguments": {"query": "Paris weather"}}});
        let messages = [
            ChatMessage::new("user", "Weather in Paris?"),
            ChatMessage { tool_calls: vec![call], ..ChatMessage::new("assistant", "") },
        ];
        let rendered = template.render_with_tools(&messages, Some(&tools), &names, false).unwrap();
        assert!(rendered.contains("Environment: ipython\nTools: brave_search\n"), "{rendered}");
        let without = template.render_with_tools(&messages[..1], Some(&tools), &[], true).unwrap();
        assert!(!without.contains("Tools: brave_search"), "{without}");
        // The assistant's turn as the template writes it (its values between quotes, unescaped),
        // read back as the same call.
        let turn = rendered.rsplit("<|end_header_id|>\n\n").next().unwrap_or("");
        let turn = turn.trim_end_matches("<|eom_id|>");
        assert!(turn.starts_with("<|python_tag|>brave_search.call("), "{turn}");
        let reading = CallReading { format: ToolFormat::Llama3, code_tool: code_tool(&names) };
        let mut scan = ToolCallScan::reading(&reading);
        let (content, mut calls) = scan.push(turn);
        calls.extend(scan.finish().1);
        assert_eq!((content.as_str(), calls.len()), ("", 1), "{turn}");
        assert_eq!(calls[0]["function"]["name"], "brave_search");
        let arguments: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"query": "Paris weather"}));
        // Bare code is a call of the code tool where one is offered, else the answer's text.
        let code = "<|python_tag|>import math\nprint(math.pi)";
        let python = CallReading { format: ToolFormat::Llama3, code_tool: Some("python".into()) };
        let mut scan = ToolCallScan::reading(&python);
        let (content, mut calls) = scan.push(code);
        calls.extend(scan.finish().1);
        assert_eq!((content.as_str(), calls.len()), ("", 1));
        assert_eq!(calls[0]["function"]["arguments"], r#"{"code":"import math\nprint(math.pi)"}"#);
        let mut scan = ToolCallScan::reading(&reading);
        let (mut content, calls) = scan.push(code);
        content.push_str(&scan.finish().0);
        assert_eq!((content.as_str(), calls.len()), (code, 0));
    }
}
