//! Conversations of the source formats (ShareGPT, OpenAI chat, AIBrix client records) reduced to user
//! prompts and the assistant completions that answer them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::files::InputError;
use crate::domain::json::py_kind;

/// A normalised turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    User,
    Assistant,
    System,
    Other,
}

pub(super) fn role_of(s: &str) -> Role {
    match s.to_ascii_lowercase().as_str() {
        "human" | "user" => Role::User,
        "gpt" | "assistant" | "chatgpt" => Role::Assistant,
        "system" => Role::System,
        _ => Role::Other,
    }
}

pub(super) type At<'a> = dyn Fn(&str, String) -> InputError + 'a;

/// A conversation's id (when it has one) and its turns.
pub(super) type Turns = (Option<Value>, Vec<(Role, String)>);

/// `(id, [(role, text)])` of a ShareGPT conversation.
pub(super) fn sharegpt_turns(v: &Value, at: &At<'_>) -> Result<Turns, InputError> {
    let Value::Object(obj) = v else {
        return Err(at(
            "conversations",
            format!("a record must be an object, got {}", py_kind(v)),
        ));
    };
    let id = obj.get("id").cloned();
    let turns = match obj.get("conversations").or_else(|| obj.get("conversation")) {
        None | Some(Value::Null) => return Ok((id, Vec::new())),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(at(
                "conversations",
                format!("must be a list, got {}", py_kind(other)),
            ));
        }
    };
    let mut out = Vec::with_capacity(turns.len());
    for (i, t) in turns.iter().enumerate() {
        let Value::Object(t) = t else {
            return Err(at(
                &format!("conversations[{i}]"),
                format!("must be an object, got {}", py_kind(t)),
            ));
        };
        let role = match t.get("from").or_else(|| t.get("role")) {
            Some(Value::String(s)) => role_of(s),
            Some(other) => {
                return Err(at(
                    &format!("conversations[{i}].from"),
                    format!("must be a string, got {}", py_kind(other)),
                ));
            }
            None => return Err(at(&format!("conversations[{i}].from"), "missing".into())),
        };
        let text = match t.get("value").or_else(|| t.get("content")) {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(other) => {
                return Err(at(
                    &format!("conversations[{i}].value"),
                    format!("must be a string, got {}", py_kind(other)),
                ));
            }
        };
        out.push((role, text));
    }
    Ok((id, out))
}

/// The text of an OpenAI message `content`: a string, or the `text` of its text parts joined by newlines.
pub(super) fn content_text(
    v: Option<&Value>,
    field: &str,
    at: &At<'_>,
) -> Result<String, InputError> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut s = String::new();
            for p in parts {
                if let Some(Value::String(t)) = p.get("text") {
                    if !s.is_empty() {
                        s.push('\n');
                    }
                    s.push_str(t);
                }
            }
            Ok(s)
        }
        Some(other) => Err(at(
            field,
            format!(
                "must be a string or a list of parts, got {}",
                py_kind(other)
            ),
        )),
    }
}

/// `(None, [(role, text)])` of an OpenAI chat record.
pub(super) fn openai_turns(v: &Value, at: &At<'_>) -> Result<Turns, InputError> {
    let messages = match v.get("messages") {
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(at(
                "messages",
                format!("must be a list, got {}", py_kind(other)),
            ));
        }
        None => {
            return Err(at(
                "messages",
                "missing (a record needs a \"messages\" list)".into(),
            ));
        }
    };
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let role = match m.get("role") {
            Some(Value::String(s)) => role_of(s),
            Some(other) => {
                return Err(at(
                    &format!("messages[{i}].role"),
                    format!("must be a string, got {}", py_kind(other)),
                ));
            }
            None => return Err(at(&format!("messages[{i}].role"), "missing".into())),
        };
        let text = content_text(m.get("content"), &format!("messages[{i}].content"), at)?;
        out.push((role, text));
    }
    Ok((None, out))
}

/// The last user message and the output of a successful AIBrix client record; `None` (counted) when the
/// record is an error or has no user message.
pub(super) fn client_record(
    v: &Value,
    at: &At<'_>,
    skipped: &mut BTreeMap<String, u64>,
) -> Result<Option<(String, Option<String>)>, InputError> {
    let Value::Object(obj) = v else {
        return Err(at(
            "input",
            format!("a record must be an object, got {}", py_kind(v)),
        ));
    };
    let failed = match obj.get("status") {
        Some(Value::String(s)) => s != "success",
        _ => false,
    } || obj.get("error_type").is_some_and(|e| !e.is_null());
    if failed {
        *skipped.entry("error records".into()).or_default() += 1;
        return Ok(None);
    }
    let input = match obj.get("input") {
        Some(Value::Array(a)) => a,
        Some(Value::String(s)) => {
            let out = output_text(obj.get("output"), at)?;
            return Ok(Some((s.clone(), out)));
        }
        Some(other) => {
            return Err(at(
                "input",
                format!("must be a list of messages, got {}", py_kind(other)),
            ));
        }
        None => {
            return Err(at(
                "input",
                "missing (a client record needs \"input\" messages)".into(),
            ));
        }
    };
    let mut prompt = None;
    for (i, m) in input.iter().enumerate().rev() {
        if let Some(Value::String(r)) = m.get("role")
            && role_of(r) == Role::User
        {
            prompt = Some(content_text(
                m.get("content"),
                &format!("input[{i}].content"),
                at,
            )?);
            break;
        }
    }
    let Some(prompt) = prompt.filter(|p| !p.trim().is_empty()) else {
        *skipped
            .entry("records without a user message".into())
            .or_default() += 1;
        return Ok(None);
    };
    Ok(Some((prompt, output_text(obj.get("output"), at)?)))
}

pub(super) fn output_text(v: Option<&Value>, at: &At<'_>) -> Result<Option<String>, InputError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(at(
            "output",
            format!("must be a string, got {}", py_kind(other)),
        )),
    }
}

/// User prompts and the assistant completions that follow them (`completions.len()` is `prompts.len()` or
/// one less, when the last user turn has no answer).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Conversation {
    pub(super) prompts: Vec<String>,
    pub(super) completions: Vec<String>,
}

impl Conversation {
    pub(super) fn from_turns(
        turns: Vec<(Role, String)>,
        skipped: &mut BTreeMap<String, u64>,
    ) -> Self {
        let mut c = Conversation::default();
        let mut count = |what: &str| *skipped.entry(what.to_string()).or_default() += 1;
        for (role, text) in turns {
            if matches!(role, Role::User | Role::Assistant) && text.trim().is_empty() {
                count("empty turns");
                continue;
            }
            match role {
                Role::System => count("system turns"),
                Role::Other => count("turns with another role"),
                Role::User => {
                    if c.completions.len() < c.prompts.len() {
                        let last = c.prompts.last_mut().expect("a prompt is open");
                        last.push_str("\n\n");
                        last.push_str(&text);
                        count("user turns joined to the previous one");
                    } else {
                        c.prompts.push(text);
                    }
                }
                Role::Assistant => {
                    if c.prompts.is_empty() {
                        count("assistant turns before the first user turn");
                    } else if c.completions.len() == c.prompts.len() {
                        let last = c.completions.last_mut().expect("a completion exists");
                        last.push_str("\n\n");
                        last.push_str(&text);
                        count("assistant turns joined to the previous one");
                    } else {
                        c.completions.push(text);
                    }
                }
            }
        }
        c
    }
}
