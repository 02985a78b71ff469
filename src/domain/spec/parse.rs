//! Reading a spec document: one JSON value, `null` meaning "absent" (so a client that sends every optional
//! field, filled or null, gets the defaults), and sections that must be objects (`"traffic": [1]` is not
//! a traffic section, although serde's derive would read it positionally).
//!
//! The CLI (`generate --spec FILE`, `plot --spec`) and the service (`POST /v1/workloads`) both read specs
//! through [`super::parse_spec`], so they accept and refuse the same documents with the same field paths.

use serde_json::Value;

use serde::de::DeserializeOwned;

/// Keys whose values are free-form documents in the reference's formats, read by their own parsers: nulls
/// inside them are theirs to judge, so they are not stripped.
const OPAQUE_KEYS: &[&str] = &[
    "agent",
    "traffic_pattern_config",
    "prompt_len_pattern_config",
    "completion_len_pattern_config",
];

/// A spec document that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.display())]
pub struct SpecParseError {
    /// The dotted path of the offending field, None for the document itself.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// True when the text is not JSON at all (or has data after the value); false for a JSON value that
    /// is not a spec.
    pub syntax: bool,
}

impl SpecParseError {
    fn display(&self) -> String {
        match &self.field {
            Some(f) => format!("{f}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Reads a spec from JSON text: exactly one JSON value (whitespace around it only), nulls treated as
/// absent outside the opaque sections, every section an object, unknown keys refused.
/// `T` is the spec type ([`super::parse_spec`] names it; this file stays below it).
pub fn parse_document<T: DeserializeOwned>(text: &[u8]) -> Result<T, SpecParseError> {
    let text = super::super::bom::strip_bom(text);
    let mut value: Value = serde_json::from_slice(text).map_err(|e| SpecParseError {
        field: None,
        message: if e.is_syntax() && e.to_string().starts_with("trailing characters") {
            format!("trailing data after the JSON value ({e})")
        } else {
            e.to_string()
        },
        syntax: true,
    })?;
    if !value.is_object() {
        return Err(SpecParseError {
            field: None,
            message: format!(
                "a generation spec must be a JSON object, not {}",
                super::super::json::kind(&value)
            ),
            syntax: false,
        });
    }
    strip_nulls(&mut value);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        SpecParseError {
            field: (path != ".").then_some(path),
            message: e.into_inner().to_string(),
            syntax: false,
        }
    })
}

/// Removes `null` members of objects, recursively, except inside [`OPAQUE_KEYS`] (arrays are kept as they
/// are: a null element is a value, not an absent field).
fn strip_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, v| !v.is_null());
        for (k, v) in map.iter_mut() {
            if !OPAQUE_KEYS.contains(&k.as_str()) {
                strip_nulls(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::spec::{GenerationSpec, parse_spec};

    fn err(text: &str) -> SpecParseError {
        parse_spec(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn sections_must_be_objects() {
        for (text, field) in [
            (r#"{"trace_type":"constant","traffic":[1]}"#, "traffic"),
            (
                r#"{"trace_type":"constant","lengths":[512, 128]}"#,
                "lengths",
            ),
            (r#"{"trace_type":"constant","sampling":[true]}"#, "sampling"),
            (r#"{"trace_type":"constant","output":["json"]}"#, "output"),
            (r#"{"trace_type":"synthetic","synthetic":[]}"#, "synthetic"),
            (r#"{"trace_type":"stat","stat":["a"]}"#, "stat"),
            (r#"{"trace_type":"azure","trace":["x"]}"#, "trace"),
            (
                r#"{"trace_type":"generic","trace":{"file":"x","columns":["t"]}}"#,
                "trace.columns",
            ),
        ] {
            let e = err(text);
            assert_eq!(e.field.as_deref(), Some(field), "{text}: {e}");
            assert!(e.message.contains("expected an object"), "{text}: {e}");
            assert!(!e.syntax);
        }
    }

    #[test]
    fn null_means_absent() {
        let full = parse_spec(
            br#"{"trace_type":"constant","seed":null,"dataset":null,"tokenizer":null,
                "add_special_tokens":null,"duration_ms":null,"interval_ms":null,
                "traffic":{"target_qps":null,"arrival":null,"burstiness":null},"lengths":null,
                "sampling":{"replacement":null,"initial_tolerance":null,"tolerance_step":null},
                "output_length_source":null,"max_concurrent_sessions":null,"output":null,
                "synthetic":null,"stat":null,"agent":null,"agent_config":null,"length_policy":null,
                "trace":null,"prompt_file":null}"#,
        )
        .unwrap();
        assert_eq!(full, GenerationSpec::new(super::super::TraceType::Constant));
    }

    #[test]
    fn opaque_sections_keep_their_nulls() {
        let s = parse_spec(br#"{"trace_type":"agent","agent":{"num_sessions":null}}"#).unwrap();
        assert_eq!(s.agent.unwrap()["num_sessions"], Value::Null);
    }

    #[test]
    fn one_value_and_field_paths() {
        let e = err(r#"{"trace_type":"constant"} {"x":1}"#);
        assert!(e.syntax && e.message.contains("trailing data"), "{e}");
        let e = err(r#"{"trace_type":"constant""#);
        assert!(e.syntax, "{e}");
        let e = err(r#"{"trace_type":"constant","traffic":{"target_qps":"fast"}}"#);
        assert_eq!(e.field.as_deref(), Some("traffic.target_qps"));
        assert!(!e.syntax);
        let e = err(r#"{"trace_type":"constant","traffic":{"qps":1}}"#);
        assert_eq!(e.field.as_deref(), Some("traffic.qps"), "{e}");
        assert!(e.message.contains("unknown field `qps`"), "{e}");
        for text in [r#"["constant"]"#, "null", "1"] {
            let e = err(text);
            assert_eq!(e.field, None);
            assert!(e.message.contains("must be a JSON object"), "{e}");
        }
        // A BOM (Windows editors) is not an error.
        parse_spec("\u{feff}{\"trace_type\":\"constant\"}".as_bytes()).unwrap();
    }
}
