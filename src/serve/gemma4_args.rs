//! A function's arguments in Gemma 4's call syntax as Lark rules, held to the function's JSON
//! schema: `{key:value,…}` with bare keys in sorted order (as its chat template writes them),
//! strings between its `<|"|>` token, numbers, `true`, `false`, `null`, `[…]`. The schema's
//! structure is kept — types, properties and which are required, `enum`, `const`, `anyOf` /
//! `oneOf`, a single `allOf`, arrays' `items` and `minItems`, `$ref` into the schema's own
//! `$defs` — while constraints on a value's size or form (lengths, patterns, ranges) are not.

use super::forced_calls::literal;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Deeper schemas are refused (each level is a rule; the limit only bounds the recursion).
const MAX_DEPTH: usize = 64;

/// Lark rules defining `name` as `schema`'s values, their helpers named `{name}_{n}`; `quote`
/// is the Lark atom of the string delimiter (`<[id]>` for the token).
pub fn arguments_rules(name: &str, schema: &Value, quote: &str) -> Result<String, String> {
    let mut rules = Rules { root: schema, name, quote, defined: Vec::new(), refs: HashMap::new(), next: 0, any: false };
    let top = rules.value(schema, 0)?;
    rules.defined.push(format!("{name}: {top}"));
    if rules.any {
        rules.define_any();
    }
    Ok(rules.defined.join("\n"))
}

struct Rules<'a> {
    root: &'a Value,
    name: &'a str,
    quote: &'a str,
    defined: Vec<String>,
    /// `$ref` targets already given a rule.
    refs: HashMap<String, String>,
    next: usize,
    /// Whether a free-form value was asked for (its rules are then added once).
    any: bool,
}

/// At most 15 digits: the call is read back through serde_json, which would turn a longer
/// integer into a float (3.3e30 where a random model wrote 31 digits), and every client's
/// JSON (JavaScript's numbers included) holds these exactly.
const INTEGER: &str = r"/-?(0|[1-9][0-9]{0,14})/";
const NUMBER: &str = r"/-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/";
/// A string's text: anything but the delimiter token (which no text can spell).
const TEXT: &str = r"/[^\x00]+/";

impl Rules<'_> {
    fn rule_name(&mut self) -> String {
        self.next += 1;
        format!("{}_{}", self.name, self.next)
    }

    /// A new rule with `body`; its name (an atom).
    fn define(&mut self, body: String) -> String {
        let rule = self.rule_name();
        self.defined.push(format!("{rule}: {body}"));
        rule
    }

    /// An atom for the values of `schema`.
    fn value(&mut self, schema: &Value, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the parameters' schema nests deeper than {MAX_DEPTH} levels"));
        }
        let s = match schema {
            Value::Bool(true) => return Ok(self.any()),
            Value::Object(s) => s,
            _ => return Err(format!("not a schema that admits values: {schema}")),
        };
        if let Some(target) = s.get("$ref") {
            return self.reference(target, depth);
        }
        if let Some(value) = s.get("const") {
            return Ok(format!("({})", written(value, self.quote)));
        }
        if let Some(values) = s.get("enum") {
            let Some(values) = values.as_array().filter(|v| !v.is_empty()) else {
                return Err(format!("an enum must be a non-empty array (got {values})"));
            };
            let alternatives: Vec<String> = values.iter().map(|v| written(v, self.quote)).collect();
            return Ok(format!("({})", alternatives.join(" | ")));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(schemas) = s.get(key) {
                return self.alternatives(key, schemas, depth);
            }
        }
        if let Some(all) = s.get("allOf") {
            return match all.as_array().map(Vec::as_slice) {
                Some([one]) => self.value(one, depth + 1),
                _ => Err("allOf of several schemas is not supported in Gemma 4's forced calls".into()),
            };
        }
        match s.get("type") {
            None if s.contains_key("properties") => self.object(s, depth),
            None if s.contains_key("items") => self.typed("array", s, depth),
            None => Ok(self.any()),
            Some(Value::String(t)) => self.typed(t, s, depth),
            Some(Value::Array(types)) => {
                let alternatives = types
                    .iter()
                    .map(|t| match t.as_str() {
                        Some(t) => self.typed(t, s, depth),
                        None => Err(format!("a type must be a string (got {t})")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", alternatives.join(" | ")))
            }
            Some(other) => Err(format!("a type must be a string or a list of them (got {other})")),
        }
    }

    fn alternatives(&mut self, key: &str, schemas: &Value, depth: usize) -> Result<String, String> {
        let Some(schemas) = schemas.as_array().filter(|s| !s.is_empty()) else {
            return Err(format!("{key} must be a non-empty array of schemas"));
        };
        let alternatives = schemas.iter().map(|s| self.value(s, depth + 1)).collect::<Result<Vec<_>, _>>()?;
        Ok(format!("({})", alternatives.join(" | ")))
    }

    fn typed(&mut self, kind: &str, s: &Map<String, Value>, depth: usize) -> Result<String, String> {
        Ok(match kind {
            "string" => format!("({q} {TEXT}? {q})", q = self.quote),
            "integer" => INTEGER.into(),
            "number" => NUMBER.into(),
            "boolean" => "(\"true\" | \"false\")".into(),
            "null" => "\"null\"".into(),
            "array" => {
                let item = match s.get("items") {
                    Some(items) => self.value(items, depth + 1)?,
                    None => self.any(),
                };
                let list = format!("{item} (\",\" {item})*");
                let at_least_one = s.get("minItems").and_then(Value::as_u64).unwrap_or(0) > 0;
                self.define(if at_least_one { format!("\"[\" {list} \"]\"") } else { format!("\"[\" ({list})? \"]\"") })
            }
            "object" => self.object(s, depth)?,
            other => return Err(format!("unknown type {other:?} in the parameters' schema")),
        })
    }

    /// `{k:v,…}` over the schema's properties in key order, the required ones always there.
    fn object(&mut self, s: &Map<String, Value>, depth: usize) -> Result<String, String> {
        let mut properties: Vec<(&String, &Value)> =
            s.get("properties").and_then(Value::as_object).map(|p| p.iter().collect()).unwrap_or_default();
        if properties.is_empty() {
            // No properties named: any keys, as with no schema.
            self.any = true;
            return Ok(format!("{}_object", self.name));
        }
        properties.sort_by(|a, b| a.0.cmp(b.0));
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let pairs = properties
            .iter()
            .map(|(key, schema)| Ok(format!("{} {}", literal(&format!("{key}:")), self.value(schema, depth + 1)?)))
            .collect::<Result<Vec<String>, String>>()?;
        // From the last property back: the rest of the object from property i on, when a pair
        // was written before it (a comma first) and when none was; None where it is empty.
        let mut after: [Option<String>; 2] = [None, None];
        for (i, pair) in pairs.iter().enumerate().rev() {
            let mut rest: [Option<String>; 2] = [None, None];
            for first in [false, true] {
                let comma = if first { "" } else { "\",\" " };
                let take = format!("{comma}{pair} {}", after[0].as_deref().unwrap_or(""));
                let body = if required.contains(&properties[i].0.as_str()) {
                    take
                } else {
                    match &after[usize::from(first)] {
                        None => format!("({take})?"),
                        Some(skip) => format!("({take} | {skip})"),
                    }
                };
                rest[usize::from(first)] = Some(self.define(body));
            }
            after = rest;
        }
        let inside = after[1].take().unwrap_or_default();
        Ok(self.define(format!("\"{{\" {inside} \"}}\"")))
    }

    /// The rule of a `$ref` into the schema itself (`#/$defs/Name`), defined at its first use.
    fn reference(&mut self, target: &Value, depth: usize) -> Result<String, String> {
        let Some(pointer) = target.as_str().and_then(|t| t.strip_prefix('#')) else {
            return Err(format!("only $refs into the schema itself (#/…) are supported (got {target})"));
        };
        if let Some(rule) = self.refs.get(pointer) {
            return Ok(rule.clone());
        }
        let Some(schema) = self.root.pointer(pointer) else {
            return Err(format!("$ref {target} points at nothing in the schema"));
        };
        let rule = self.rule_name();
        self.refs.insert(pointer.to_string(), rule.clone());
        let body = self.value(schema, depth + 1)?;
        self.defined.push(format!("{rule}: {body}"));
        Ok(rule)
    }

    fn any(&mut self) -> String {
        self.any = true;
        format!("{}_any", self.name)
    }

    fn define_any(&mut self) {
        let (n, q) = (self.name, self.quote);
        self.defined.extend([
            format!("{n}_any: ({q} {TEXT}? {q}) | {NUMBER} | \"true\" | \"false\" | \"null\" | {n}_object | {n}_array"),
            format!("{n}_object: \"{{\" ({n}_key \":\" {n}_any (\",\" {n}_key \":\" {n}_any)*)? \"}}\""),
            format!("{n}_key: /[A-Za-z_][A-Za-z0-9_]*/"),
            format!("{n}_array: \"[\" ({n}_any (\",\" {n}_any)*)? \"]\""),
        ]);
    }
}

/// `value` as Gemma 4's template writes an argument: a Lark sequence.
fn written(value: &Value, quote: &str) -> String {
    match value {
        Value::String(s) if s.is_empty() => format!("{quote} {quote}"),
        Value::String(s) => format!("{quote} {} {quote}", literal(s)),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| written(v, quote)).collect();
            format!("\"[\" {} \"]\"", items.join(" \",\" "))
        }
        Value::Object(map) => {
            let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let pairs: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{} {}", literal(&format!("{k}:")), written(v, quote))).collect();
            format!("\"{{\" {} \"}}\"", pairs.join(" \",\" "))
        }
        scalar => literal(&scalar.to_string()),
    }
}
