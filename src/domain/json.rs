//! The one JSON-kind helper of error messages (`must be a string, got a number`).

use serde_json::Value;

/// The kind of `v` with an article, in JSON's words: `null`, `a boolean`, `a number`, `a string`,
/// `an array`, `an object`.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// [`kind`] in Python's words, for the inputs the Python reference reads (collections, conversations,
/// agent configs): an array is `a list`.
pub fn py_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        other => kind(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds() {
        let all = [
            json!(null),
            json!(true),
            json!(1),
            json!("s"),
            json!([1]),
            json!({}),
        ];
        let k: Vec<_> = all.iter().map(kind).collect();
        assert_eq!(
            k,
            [
                "null",
                "a boolean",
                "a number",
                "a string",
                "an array",
                "an object"
            ]
        );
        let p: Vec<_> = all.iter().map(py_kind).collect();
        assert_eq!(
            p,
            [
                "null",
                "a boolean",
                "a number",
                "a string",
                "a list",
                "an object"
            ]
        );
    }
}
