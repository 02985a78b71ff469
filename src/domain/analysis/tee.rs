//! The analysis of entries as they are written (a tee beside the workload sink), so that a run computes its
//! report and plots without reading its output back. Each entry is reduced exactly as the file pass reduces
//! the line it becomes (the same prompt bytes, lengths and session key), so the result equals
//! [`super::analyze`] of the written file; the tests compare both.

use serde::Deserialize;

use super::acc::Acc;
use super::model::{Analysis, AnalyzeOptions};
use super::parse::{Digester, Digests, ReqDigest, SessionKey};
use crate::domain::dataset::SessionId;
use crate::domain::writer::Entry;

/// Folds entries into an [`Analysis`] one at a time.
pub struct Tee {
    digester: Digester<'static>,
    acc: Acc,
    digests: Digests,
}

impl Tee {
    /// An empty analysis under `opts`, with prefix blocks of UTF-8 bytes (`opts.tokenizer` is not used: a
    /// run does not encode its prompts again), and `opts.cancel` not polled (the writer's loop polls its own).
    pub fn new(opts: &AnalyzeOptions<'_>) -> Self {
        let opts = AnalyzeOptions {
            name: opts.name.clone(),
            tokenizer: None,
            cancel: None,
            ..*opts
        };
        let (digester, acc) = super::acc::start(&opts);
        Self {
            digester,
            acc,
            digests: Digests::default(),
        }
    }

    /// Folds one entry, as the line or array element it is written as.
    pub fn entry(&mut self, e: &Entry<'_>) {
        let d = &mut self.digests;
        d.clear();
        for r in &e.requests {
            let start = d.blocks.len() as u32;
            let units = self
                .digester
                .blocks(r.prompt.as_bytes(), &mut d.blocks)
                .expect("byte blocks are infallible");
            d.reqs.push(ReqDigest {
                prompt_len: Some(u64::from(r.prompt_length)),
                output_len: r.output_length.map(u64::from),
                session: r.session_id.map(session_key),
                units: Some(units),
                blocks: (start, d.blocks.len() as u32),
            });
        }
        d.entries.push((e.timestamp, d.reqs.len() as u32));
        self.acc.digests(d);
    }

    /// The analysis of every entry folded.
    pub fn finish(self) -> Analysis {
        super::acc::finish(self.acc)
    }
}

/// The key the file pass reads for a written session id: an integer id is written as its number and a string
/// id as a JSON string, so both go through the same deserializer.
fn session_key(id: &SessionId) -> SessionKey {
    let key = match id {
        SessionId::Int(n) => SessionKey::deserialize(n.clone()).map_err(|e| e.to_string()),
        SessionId::Str(s) => SessionKey::deserialize(serde::de::IntoDeserializer::<
            serde::de::value::Error,
        >::into_deserializer(s.as_str()))
        .map_err(|e| e.to_string()),
    };
    key.expect("every JSON number and string is a session key")
}
