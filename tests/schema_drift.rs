//! Keeps schema/plugin-config.schema.json and the filter's config parser
//! (src/config.rs, via `Config::parse`) from drifting apart.
//!
//! The schema is walked; for every object it describes, a probe document is
//! built (the object's ancestors filled with the schema's minimal instances)
//! and given to the filter's own parser:
//!
//! - an unknown field `__probe__` in that object: the error lists every
//!   field the parser accepts there, which must equal the schema's
//!   `properties` (lowerCamelCase aliases aside);
//! - each scalar/array property given a value of the wrong JSON type must be
//!   refused at exactly that path, and one of the right type must not be
//!   refused for its type;
//! - each `enum` property given a value outside the enum must be refused at
//!   that path.
//!
//! A field added to src/config.rs without the schema (or the reverse) fails
//! here with the field's path.

use std::collections::BTreeSet;

use jwt_filter::config::Config;
use serde_json::{json, Map, Value};

const SCHEMA: &str = include_str!("../schema/plugin-config.schema.json");
const PROBE: &str = "__probe__";

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index,
    MapKey,
}

fn path_string(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index => out.push_str("[0]"),
            Step::MapKey => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('p');
            }
        }
    }
    out
}

struct Walker {
    root: Value,
    problems: Vec<String>,
    objects_probed: usize,
    leaves_probed: usize,
}

impl Walker {
    /// Follows `$ref`s (local `#/$defs/...` only).
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..16 {
            let Some(r) = node.get("$ref").and_then(Value::as_str) else {
                return node;
            };
            let name = r.strip_prefix("#/$defs/").expect("local $defs ref");
            node = &self.root["$defs"][name];
        }
        node
    }

    fn types(&self, node: &Value) -> Vec<String> {
        match self.resolve(node).get("type") {
            Some(Value::String(t)) => vec![t.clone()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The smallest instance the parser's deserializer accepts for `node`.
    fn minimal(&self, node: &Value) -> Value {
        let node = self.resolve(node);
        let types = self.types(node);
        if let Some(e) = node.get("enum").and_then(Value::as_array) {
            return e[0].clone();
        }
        match types.first().map(String::as_str) {
            Some("object") => {
                let mut required: Vec<String> = Vec::new();
                let mut add = |v: Option<&Value>| {
                    for r in v.and_then(Value::as_array).into_iter().flatten() {
                        if let Some(s) = r.as_str() {
                            required.push(s.to_string());
                        }
                    }
                };
                add(node.get("required"));
                if let Some(first) = node.get("oneOf").and_then(|o| o.get(0)) {
                    add(first.get("required"));
                }
                let mut obj = Map::new();
                for r in required {
                    let child = &node["properties"][&r];
                    obj.insert(r, self.minimal(child));
                }
                Value::Object(obj)
            }
            Some("array") => json!([]),
            Some("integer") | Some("number") => json!(0),
            Some("boolean") => json!(false),
            Some("string") => {
                let pattern = node.get("pattern").and_then(Value::as_str).unwrap_or("");
                if pattern.ends_with("s$") {
                    json!("1s")
                } else if pattern.starts_with("^https?") {
                    json!("https://idp.test/jwks")
                } else {
                    json!("x")
                }
            }
            _ => json!("x"),
        }
    }

    /// A document with the minimal ancestors along `steps`, `leaf(min)` at the end.
    fn build(&self, node: &Value, steps: &[Step], leaf: &dyn Fn(Value) -> Value) -> Value {
        let node = self.resolve(node);
        let Some((first, rest)) = steps.split_first() else {
            return leaf(self.minimal(node));
        };
        match first {
            Step::Key(k) => {
                let mut obj = match self.minimal(node) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                obj.insert(k.clone(), self.build(&node["properties"][k], rest, leaf));
                Value::Object(obj)
            }
            Step::Index => json!([self.build(&node["items"], rest, leaf)]),
            Step::MapKey => {
                json!({ "p": self.build(&node["additionalProperties"], rest, leaf) })
            }
        }
    }

    fn parse(&self, doc: &Value) -> Vec<(String, String)> {
        match Config::parse(doc.to_string().as_bytes()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    fn walk(&mut self, node: &Value, steps: Vec<Step>, depth: usize) {
        if depth > 12 {
            return;
        }
        let node = self.resolve(node).clone();
        let types = self.types(&node);
        if types.first().map(String::as_str) == Some("object") {
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                self.probe_object(&steps, props);
                for (k, child) in props {
                    let mut s = steps.clone();
                    s.push(Step::Key(k.clone()));
                    self.probe_leaf(&s, child);
                    // Requirements nest (requires_any.requirements[]): one level is enough.
                    let recursive = steps
                        .iter()
                        .filter(|st| matches!(st, Step::Key(key) if key == "requirements"))
                        .count();
                    if recursive > 0 && (k == "requires_any" || k == "requires_all") {
                        continue;
                    }
                    self.walk(child, s, depth + 1);
                }
            } else if let Some(add) = node.get("additionalProperties").filter(|a| a.is_object()) {
                let mut s = steps.clone();
                s.push(Step::MapKey);
                self.walk(add, s, depth + 1);
            }
        } else if types.first().map(String::as_str) == Some("array") {
            if let Some(items) = node.get("items") {
                let mut s = steps.clone();
                s.push(Step::Index);
                self.walk(items, s, depth + 1);
            }
        }
    }

    fn probe_object(&mut self, steps: &[Step], props: &Map<String, Value>) {
        self.objects_probed += 1;
        let root = self.root.clone();
        let doc = self.build(&root, steps, &|min| {
            let mut m = match min {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            m.insert(PROBE.into(), json!(1));
            Value::Object(m)
        });
        let at = path_string(steps);
        let want_path = if at.is_empty() {
            PROBE.to_string()
        } else {
            format!("{at}.{PROBE}")
        };
        let errors = self.parse(&doc);
        let Some((_, msg)) = errors
            .iter()
            .find(|(p, m)| *p == want_path && m.contains(PROBE))
        else {
            self.problems.push(format!(
                "{at:?}: the filter did not refuse an unknown field there (schema object with properties {:?}); errors: {errors:?}; doc: {doc}",
                props.keys().collect::<Vec<_>>()
            ));
            return;
        };
        let listed = msg.split(&format!("`{PROBE}`")).nth(1).unwrap_or("");
        let accepted: BTreeSet<String> = listed
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|f| !f.chars().any(|c| c.is_ascii_uppercase()))
            .map(str::to_string)
            .collect();
        let in_schema: BTreeSet<String> = props.keys().cloned().collect();
        for f in accepted.difference(&in_schema) {
            self.problems.push(format!(
                "{at:?}: the filter accepts field `{f}` but the schema does not describe it"
            ));
        }
        for f in in_schema.difference(&accepted) {
            self.problems.push(format!(
                "{at:?}: the schema describes field `{f}` but the filter does not accept it"
            ));
        }
    }

    fn probe_leaf(&mut self, steps: &[Step], prop: &Value) {
        let root = self.root.clone();
        let prop = self.resolve(prop).clone();
        let at = path_string(steps);
        let types = self.types(&prop);
        let wrong = match types.as_slice() {
            [t] if t == "string" => Some(json!(12345)),
            [t] if t == "boolean" || t == "integer" || t == "array" => Some(json!("x")),
            _ => None,
        };
        if let Some(wrong) = wrong {
            self.leaves_probed += 1;
            let doc = self.build(&root, steps, &|_| wrong.clone());
            let errors = self.parse(&doc);
            if !errors
                .iter()
                .any(|(p, m)| *p == at && m.contains("invalid type"))
            {
                self.problems.push(format!(
                    "{at:?}: schema type {types:?}, but the filter did not refuse a {wrong} there: {errors:?}"
                ));
            }
            let right = self.minimal(&prop);
            let doc = self.build(&root, steps, &|_| right.clone());
            let errors = self.parse(&doc);
            if let Some(e) = errors
                .iter()
                .find(|(p, m)| p.starts_with(&at) && m.contains("invalid type"))
            {
                self.problems.push(format!(
                    "{at:?}: schema type {types:?}, but the filter refused {right}: {e:?}"
                ));
            }
        }
        let enum_values = prop.get("enum").or_else(|| {
            prop.get("items")
                .map(|i| self.resolve(i))
                .and_then(|i| i.get("enum"))
        });
        if enum_values.is_some() {
            self.leaves_probed += 1;
            let is_array = types.first().map(String::as_str) == Some("array");
            let bad = if is_array {
                json!([PROBE])
            } else {
                json!(PROBE)
            };
            let want = if is_array {
                format!("{at}[0]")
            } else {
                at.clone()
            };
            let doc = self.build(&root, steps, &|_| bad.clone());
            let errors = self.parse(&doc);
            if !errors.iter().any(|(p, _)| *p == want) {
                self.problems.push(format!(
                    "{at:?}: the schema has an enum, but the filter accepted {bad} there: {errors:?}"
                ));
            }
        }
    }
}

#[test]
fn schema_and_parser_accept_the_same_fields_and_types() {
    let root: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
    let mut w = Walker {
        root: root.clone(),
        problems: Vec::new(),
        objects_probed: 0,
        leaves_probed: 0,
    };
    w.walk(&root, Vec::new(), 0);
    assert!(
        w.objects_probed >= 15,
        "walked only {} objects",
        w.objects_probed
    );
    assert!(
        w.leaves_probed >= 40,
        "probed only {} fields",
        w.leaves_probed
    );
    assert!(
        w.problems.is_empty(),
        "schema/plugin-config.schema.json and src/config.rs disagree:\n  {}",
        w.problems.join("\n  ")
    );
}

#[test]
fn schema_minimal_instances_reach_the_validator() {
    // The probes rely on the schema's minimal instances deserializing: the
    // minimal whole config (no providers, no rules) is valid.
    let root: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
    let w = Walker {
        root: root.clone(),
        problems: Vec::new(),
        objects_probed: 0,
        leaves_probed: 0,
    };
    let min = w.minimal(&root);
    assert_eq!(min, json!({}));
    assert!(Config::parse(min.to_string().as_bytes()).is_ok());
}
