//! JSON helpers shared by the readers: the kind of a value in error messages (`must be a string, got a
//! number`), and the repair of Python's bare `NaN`/`Infinity` tokens.

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

/// Replaces the bare `NaN`, `Infinity` and `-Infinity` tokens Python writes (outside strings) with `null`;
/// None when there are none. Returns the repaired text and the number of tokens replaced.
pub fn replace_non_finite(text: &[u8]) -> Option<(Vec<u8>, u64)> {
    let mut out = Vec::with_capacity(text.len());
    let mut n = 0;
    let mut in_str = false;
    let mut escape = false;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if in_str {
            if escape {
                escape = false;
            } else if c == b'\\' {
                escape = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else {
            let rest = &text[i..];
            let token: Option<&[u8]> = [&b"-Infinity"[..], b"Infinity", b"NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t));
            if let Some(t) = token {
                out.extend_from_slice(b"null");
                n += 1;
                i += t.len();
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    (n > 0).then_some((out, n))
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
