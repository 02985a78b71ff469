//! The built-in sample prompt collection: deterministic generated text (no licence doubts), compiled into the
//! binary as code. 1,000 plain records with prompts of about 5 to 4,000 tokens and completions of about 8 to
//! 1,500 tokens, log-uniformly spread, so length matching has something to match at every scale.
//!
//! The same text generator is the filler source when no prompt collection is given.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::dataset::{Dataset, DatasetParser};

/// The dataset id of the built-in collection.
pub const SAMPLE_DATASET_ID: &str = "sample";

/// Number of records of the built-in collection.
pub const SAMPLE_RECORDS: usize = 1000;

const TOPICS: &[&str] = &[
    "distributed databases",
    "garbage collection",
    "photosynthesis",
    "the French revolution",
    "neural networks",
    "container orchestration",
    "compound interest",
    "plate tectonics",
    "sourdough baking",
    "vector clocks",
    "the immune system",
    "supply chain logistics",
    "quantum computing",
    "urban gardening",
    "jazz harmony",
    "climate models",
    "public key cryptography",
    "marathon training",
    "medieval trade routes",
    "compiler optimisation",
    "renewable energy storage",
    "language acquisition",
    "load balancing",
    "coral reefs",
    "monetary policy",
    "sleep science",
    "microservice design",
    "the history of printing",
    "bird migration",
    "rate limiting",
];
const ACTIONS: &[&str] = &[
    "write a short report",
    "prepare a presentation",
    "design a system",
    "teach a class",
    "debug a service",
    "plan a project",
    "review a paper",
    "explain it to my team",
    "build a prototype",
    "pass an exam",
];
const OPENERS: &[&str] = &[
    "Can you explain how {t} works in simple terms?",
    "Write a detailed overview of {t} for a beginner.",
    "What are the most common misconceptions about {t}?",
    "Compare {t} with {u} and list the trade-offs.",
    "Summarize the key ideas behind {t} in a few paragraphs.",
    "I need to {a}. Where should I start with {t}?",
    "Give me three practical examples of {t} in everyday life.",
    "Draft an email to a colleague describing {t}.",
    "Hi",
    "Translate the following note about {t} into plain English.",
];
const SENTENCES: &[&str] = &[
    "I have read a little about {t}, but the details of {u} still confuse me.",
    "My main goal is to {a} by the end of the month.",
    "Please keep the explanation concrete and avoid unnecessary jargon.",
    "It would help to see how {t} relates to {u}.",
    "For context, I work in a small team and we have limited time.",
    "A step-by-step answer with short examples would be ideal.",
    "Last week we tried a naive approach and it failed in ways we did not expect.",
    "The numbers we measured were {n} requests per second at peak and {m} on average.",
    "One colleague argued that {t} is overrated, another that it is essential.",
    "Could you also point out the risks, and what to measure to know it works?",
    "We have about {n} users today and expect {m} within a year.",
    "In the previous version, the results depended on the order of the inputs.",
    "I would also like a short list of further reading about {u}.",
    "The constraints are a fixed budget, two engineers and a deadline in {n} days.",
];
const ANSWERS: &[&str] = &[
    "Here is a short overview of {t}.",
    "The key idea is that {t} trades simplicity for robustness.",
    "First, consider how {u} behaves under load.",
    "A common mistake is to ignore the cost of coordination.",
    "In practice, you measure before you optimise.",
    "For example, a team that needs to {a} can start with a small prototype.",
    "This matters because {t} and {u} share the same underlying constraints.",
    "To summarise: start simple, measure, and iterate.",
];

fn fill(template: &str, rng: &mut ChaCha8Rng) -> String {
    let mut out = template.to_string();
    for (key, list) in [("{t}", TOPICS), ("{u}", TOPICS), ("{a}", ACTIONS)] {
        while let Some(pos) = out.find(key) {
            let w = list[rng.random_range(0..list.len())];
            out.replace_range(pos..pos + key.len(), w);
        }
    }
    while let Some(pos) = out.find("{n}") {
        let v = rng.random_range(2..5000).to_string();
        out.replace_range(pos..pos + 3, &v);
    }
    while let Some(pos) = out.find("{m}") {
        let v = rng.random_range(2..5000).to_string();
        out.replace_range(pos..pos + 3, &v);
    }
    out
}

/// Appends generated sentences to `out` until it holds at least `words` words.
fn grow(out: &mut String, words: usize, pool: &[&str], rng: &mut ChaCha8Rng) {
    let mut count = out.split_whitespace().count();
    let mut sentences_in_paragraph = 0;
    while count < words {
        let s = fill(pool[rng.random_range(0..pool.len())], rng);
        count += s.split_whitespace().count();
        if !out.is_empty() {
            if sentences_in_paragraph >= 5 && rng.random_bool(0.3) {
                out.push_str("\n\n");
                sentences_in_paragraph = 0;
            } else {
                out.push(' ');
            }
        }
        out.push_str(&s);
        sentences_in_paragraph += 1;
    }
}

fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> usize {
    let x: f64 = rng.random_range(lo.ln()..hi.ln());
    x.exp().round() as usize
}

/// The built-in collection's JSONL text (deterministic).
pub fn sample_jsonl() -> String {
    generate_jsonl(0x5eed_0001, SAMPLE_RECORDS)
}

/// `n` generated plain records (prompt + completion) from `seed`, as JSONL; the built-in collection is
/// `generate_jsonl(0x5eed_0001, 1000)`. Benchmarks use larger ones.
pub fn generate_jsonl(seed: u64, n: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::with_capacity(n * 4500);
    for _ in 0..n {
        let prompt_words = log_uniform(&mut rng, 4.0, 3000.0);
        let mut prompt = fill(OPENERS[rng.random_range(0..OPENERS.len())], &mut rng);
        grow(&mut prompt, prompt_words, SENTENCES, &mut rng);
        let completion_words = log_uniform(&mut rng, 6.0, 1150.0);
        let mut completion = String::new();
        grow(&mut completion, completion_words, ANSWERS, &mut rng);
        let rec = serde_json::json!({"prompt": prompt, "completion": completion});
        out.push_str(&rec.to_string());
        out.push('\n');
    }
    out
}

/// The built-in collection, parsed.
pub fn sample_dataset() -> Dataset {
    let text = sample_jsonl();
    let mut p = DatasetParser::new(SAMPLE_DATASET_ID);
    p.read_all(text.as_bytes())
        .expect("built-in sample is valid");
    p.finish().expect("built-in sample is non-empty")
}

/// Deterministic filler text of at least `words` words, for prompts built to an exact length when no collection
/// is given.
pub fn filler_text(seed: u64, words: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::new();
    grow(&mut s, words, SENTENCES, &mut rng);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tokenizer::TokenCounter;

    #[test]
    fn sample_is_deterministic_and_spans_lengths() {
        let a = sample_dataset();
        let b = sample_dataset();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.len(), SAMPLE_RECORDS);
        let tok = TokenCounter::embedded();
        let lens = tok
            .count_many(&a.prompts, true, &|_| {}, crate::domain::tokenizer::NEVER)
            .unwrap();
        let min = *lens.iter().min().unwrap();
        let max = *lens.iter().max().unwrap();
        assert!(min <= 10, "min {min}");
        assert!((3000..=6000).contains(&max), "max {max}");
        assert!(lens.iter().filter(|&&l| (400..=700).contains(&l)).count() >= 30);
    }
}
