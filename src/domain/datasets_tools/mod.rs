//! Preparing prompt collections: converters from other formats (ShareGPT, AIBrix client output, OpenAI chat
//! JSONL) and seeded synthetic generators (shared-prefix and multi-turn collections with exact token lengths).
//!
//! Every output is a collection that [`crate::domain::dataset`] loads: plain `{"prompt", "completion"?}` or
//! sessioned `{"session_id", "prompts", "completions"?}` JSONL, UTF-8. Functions write to any
//! [`std::io::Write`]; [`crate::domain::atomic::write_with`] writes a path through a temporary file and a
//! rename.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::files::{FileResolver, InputError};
use super::spec::SpecError;
use super::tokenizer::TokenCounter;

mod common;
pub mod convert;
pub mod multiturn;
pub mod shared_prefix;
pub mod text;

pub use common::{DatasetToolError, Distribution};
use text::TextSource;

/// A synthetic collection to generate: the body of `POST /v1/datasets/generate`, tagged by `kind`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetGenerateSpec {
    /// Groups of prompts sharing a prefix (reference §7.2).
    SharedPrefix(shared_prefix::SharedPrefixSpec),
    /// Sessions of turns (reference §7.3).
    MultiTurn(multiturn::MultiTurnSpec),
}

/// What a generator produced.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetGenerateReport {
    /// Report of a shared-prefix collection.
    SharedPrefix(shared_prefix::SharedPrefixReport),
    /// Report of a multi-turn collection.
    MultiTurn(multiturn::MultiTurnReport),
}

impl DatasetGenerateSpec {
    /// Checks every value (errors name the dotted field) and fills in the seed when it is absent.
    pub fn validate(self) -> Result<Self, SpecError> {
        Ok(match self {
            Self::SharedPrefix(s) => Self::SharedPrefix(s.validate()?),
            Self::MultiTurn(s) => Self::MultiTurn(s.validate()?),
        })
    }

    /// The tokenizer name.
    pub fn tokenizer(&self) -> &str {
        match self {
            Self::SharedPrefix(s) => &s.tokenizer,
            Self::MultiTurn(s) => &s.tokenizer,
        }
    }
}

/// Generates the collection of a validated `spec` into `out` (JSONL). `prompt_file` fields are resolved
/// through `files` (a path in the CLI, an uploaded collection in the service).
pub fn generate_collection(
    spec: &DatasetGenerateSpec,
    tok: &TokenCounter,
    files: &dyn FileResolver,
    out: &mut dyn Write,
) -> Result<DatasetGenerateReport, DatasetToolError> {
    match spec {
        DatasetGenerateSpec::SharedPrefix(s) => {
            let src = text_source(tok, files, s.prompt_file.as_deref(), s.seed())?;
            Ok(DatasetGenerateReport::SharedPrefix(
                shared_prefix::generate(s, tok, &src, out)?,
            ))
        }
        DatasetGenerateSpec::MultiTurn(s) => {
            let src = text_source(tok, files, s.prompt_file.as_deref(), s.seed())?;
            Ok(DatasetGenerateReport::MultiTurn(multiturn::generate(
                s, tok, &src, out,
            )?))
        }
    }
}

/// The text source: the prompts (and completions) of `prompt_file`, or the built-in sample text.
pub fn text_source(
    tok: &TokenCounter,
    files: &dyn FileResolver,
    prompt_file: Option<&str>,
    seed: u64,
) -> Result<TextSource, DatasetToolError> {
    match prompt_file {
        None => Ok(TextSource::builtin(tok, seed)?),
        Some(name) => {
            let path = files.resolve("prompt_file", name)?;
            let ds = super::dataset::load_file(&path).map_err(|e| match e {
                super::dataset::DatasetError::Record {
                    line,
                    field,
                    reason,
                    ..
                } => InputError::at(name, line, field.as_deref(), reason),
                super::dataset::DatasetError::Io { reason, .. } => InputError::file(name, reason),
                super::dataset::DatasetError::Empty { .. } => {
                    InputError::file(name, "no prompts: the collection is empty")
                }
            })?;
            let texts: Vec<&str> = ds
                .prompts
                .iter()
                .map(String::as_str)
                .chain(ds.completions.iter().flatten())
                .collect();
            Ok(TextSource::from_texts(tok, name, &texts)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_spec_is_tagged_and_strict() {
        let s: DatasetGenerateSpec = serde_json::from_str(
            r#"{"kind": "shared_prefix", "seed": 3, "configs": [{"prompt_length": 50}]}"#,
        )
        .unwrap();
        let DatasetGenerateSpec::SharedPrefix(sp) = &s else {
            panic!("shared_prefix")
        };
        assert_eq!(sp.configs[0].prompt_length, 50.0);
        assert_eq!(sp.configs[0].num_prefix, 10);
        assert!(
            serde_json::from_str::<DatasetGenerateSpec>(r#"{"kind": "multi_turn", "bogus": 1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<DatasetGenerateSpec>(r#"{"kind": "nope"}"#).is_err());
        let e = serde_json::from_str::<DatasetGenerateSpec>(
            r#"{"kind": "multi_turn", "prompt_length_std": -1}"#,
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "prompt_length_std");
    }

    #[test]
    fn text_is_cut_from_a_given_collection() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.jsonl");
        let mut body = String::new();
        for i in 0..40 {
            body.push_str(&format!(
                "{{\"prompt\": \"Zebrafish regenerate fins number {i}; axolotls regrow limbs and planarians regrow heads.\", \"completion\": \"Regeneration biology {i}.\"}}\n"
            ));
        }
        std::fs::write(&file, body).unwrap();
        let spec: DatasetGenerateSpec = serde_json::from_value(serde_json::json!({
            "kind": "multi_turn", "seed": 1, "prompt_file": file.display().to_string(),
            "num_sessions_mean": 4, "num_sessions_std": 0, "num_turns_mean": 2, "num_turns_std": 0,
            "prompt_length_mean": 40, "prompt_length_std": 5, "shared_prefix_len": 12
        }))
        .unwrap();
        let spec = spec.validate().unwrap();
        let tok = TokenCounter::embedded();
        let mut out = Vec::new();
        let report =
            generate_collection(&spec, &tok, &crate::domain::files::PathResolver, &mut out)
                .unwrap();
        let DatasetGenerateReport::MultiTurn(r) = report else {
            panic!("multi_turn")
        };
        assert_eq!((r.sessions, r.turns), (4, 8));
        let ds = crate::domain::dataset::parse_jsonl(&out[..], "o").unwrap();
        let all = ds.prompts.join(" ");
        assert!(all.contains("regrow") || all.contains("Zebrafish"), "{all}");
        assert!(!all.contains("photosynthesis"));
        // A missing file names the field.
        let spec: DatasetGenerateSpec =
            serde_json::from_str(r#"{"kind": "shared_prefix", "prompt_file": "/no/such.jsonl"}"#)
                .unwrap();
        let e = generate_collection(
            &spec.validate().unwrap(),
            &tok,
            &crate::domain::files::PathResolver,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("prompt_file file '/no/such.jsonl'"),
            "{e}"
        );
    }
}
