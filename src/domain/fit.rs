//! The one exact-length text fitter.
//!
//! Decoding token ids and re-encoding the text is not always length-stable (a cut may split a character, the
//! last word may merge or split), so a text of exactly `target` tokens is found by trying candidates and
//! verifying each by re-encoding. [`fit`] runs that loop: round by round it builds the candidate of a
//! parameter `n` (a prefix length, a window length, an attempt number), measures its token count, stops at
//! an exact count, keeps the best miss, and moves `n` as the [`Policy`] says, for at most `rounds` rounds.
//!
//! Its users only choose a policy and build candidates: traces (`exact`: prefixes of a source,
//! clamped, walking outwards from tried cuts), dataset generators (`datasets_tools::text`: windows
//! of a corpus, stopping at a repeated length) and agent prompts (`agent::prompt`: a text repaired
//! in place, one numbered attempt a round).

use super::tokenizer::{Cancel, TokenCounter, TokenizerError};

/// How `n` moves after a miss of `count` tokens against `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moves {
    /// By the miss (`n + target − count`) clamped to `0..=max`; when that `n` was tried already, walk
    /// outwards from `n` one step at a time (towards fewer tokens first when the count was over), up to
    /// `rounds` steps; stop when every such `n` was tried.
    ClampAndWalk {
        /// The largest `n` (e.g. the source length).
        max: usize,
    },
    /// By the miss; stop when `n` falls below 1 or was tried already.
    StopOnRepeat,
    /// To the next attempt (`n + 1`): the candidate corrects itself from the previous round.
    Sequential,
}

/// A fitting policy: how many rounds, how `n` moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Candidates built at the most.
    pub rounds: usize,
    /// How `n` moves after a miss.
    pub moves: Moves,
}

/// The result of [`fit`]: the exact candidate, or the best miss (smallest `|count − target|`, counts below
/// the target preferred at a tie: they can be padded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted<T> {
    /// The candidate.
    pub value: T,
    /// Its token count.
    pub count: u32,
    /// The `n` it was built from.
    pub n: usize,
    /// Whether `count == target`.
    pub exact: bool,
}

/// Tries candidates `measure(n)` (a value and its token count) starting at `n0` until one counts exactly
/// `target` tokens or the policy ends. Returns the exact candidate or the best miss; `None` only when no
/// round ran (`rounds == 0`).
pub fn fit<T, E>(
    policy: Policy,
    target: u32,
    n0: usize,
    mut measure: impl FnMut(usize) -> Result<(T, u32), E>,
) -> Result<Option<Fitted<T>>, E> {
    let mut n = match policy.moves {
        Moves::ClampAndWalk { max } => n0.min(max),
        _ => n0,
    };
    let mut tried: Vec<usize> = Vec::with_capacity(policy.rounds);
    let mut best: Option<Fitted<T>> = None;
    for _ in 0..policy.rounds {
        if policy.moves == Moves::StopOnRepeat && (n < 1 || tried.contains(&n)) {
            break;
        }
        tried.push(n);
        let (value, count) = measure(n)?;
        if count == target {
            return Ok(Some(Fitted {
                value,
                count,
                n,
                exact: true,
            }));
        }
        let better = match &best {
            None => true,
            Some(b) => {
                let (d, bd) = (count.abs_diff(target), b.count.abs_diff(target));
                d < bd || (d == bd && count < target && b.count > target)
            }
        };
        if better {
            best = Some(Fitted {
                value,
                count,
                n,
                exact: false,
            });
        }
        let by_miss = n as i64 + target as i64 - count as i64;
        n = match policy.moves {
            Moves::ClampAndWalk { max } => {
                let jump = by_miss.clamp(0, max as i64) as usize;
                let k = n;
                let next = std::iter::once(jump)
                    .chain((1..=policy.rounds).flat_map(|d| {
                        let (lo, hi) = (k.saturating_sub(d), (k + d).min(max));
                        if count > target { [lo, hi] } else { [hi, lo] }
                    }))
                    .find(|n| !tried.contains(n));
                match next {
                    Some(n) => n,
                    None => break,
                }
            }
            Moves::StopOnRepeat => {
                if by_miss < 1 {
                    break;
                }
                by_miss as usize
            }
            Moves::Sequential => n + 1,
        };
    }
    Ok(best)
}

/// Which ends of a decoded candidate lose replacement characters (left by a cut inside a multi-byte
/// character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// The end only (a prefix of a text).
    End,
    /// Both ends (a window inside a text).
    Both,
}

/// Decodes `ids` and drops replacement characters at the `trim` ends (`cancel` is polled along the way).
pub fn decode(
    tok: &TokenCounter,
    ids: &[u32],
    trim: Trim,
    cancel: Cancel<'_>,
) -> Result<String, TokenizerError> {
    let text = tok.decode_cancellable(ids, cancel)?;
    let kept = match trim {
        Trim::End => text.trim_end_matches('\u{FFFD}'),
        Trim::Both => text.trim_matches('\u{FFFD}'),
    };
    Ok(if kept.len() == text.len() {
        text
    } else {
        kept.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "tokenizer" whose count of `n` is `n + 1` below 10 and `n − 1` above: 10 is never exact.
    fn skewed(n: usize) -> Result<(usize, u32), ()> {
        Ok((n, if n < 10 { n as u32 + 1 } else { n as u32 - 1 }))
    }

    #[test]
    fn clamp_and_walk_keeps_the_best_miss() {
        let p = Policy {
            rounds: 10,
            moves: Moves::ClampAndWalk { max: 100 },
        };
        let f = fit(p, 5, 5, skewed).unwrap().unwrap();
        assert_eq!((f.n, f.count, f.exact), (4, 5, true));
        // 10 tokens: 9 → 10, 11 → 10... 10 itself counts 9; 9 counts 10.
        let f = fit(p, 10, 10, skewed).unwrap().unwrap();
        assert!(f.exact && f.count == 10, "{f:?}");
        // Beyond the source: clamped, the best miss returned.
        let f = fit(p, 500, 500, skewed).unwrap().unwrap();
        assert_eq!((f.n, f.count, f.exact), (100, 99, false));
    }

    #[test]
    fn stop_on_repeat_and_sequential() {
        let p = Policy {
            rounds: 4,
            moves: Moves::StopOnRepeat,
        };
        let mut seen = Vec::new();
        let f = fit(p, 3, 3, |n| {
            seen.push(n);
            skewed(n)
        })
        .unwrap()
        .unwrap();
        assert_eq!((f.n, f.exact, seen), (2, true, vec![3, 2]));
        let mut seen = Vec::new();
        let f = fit(
            Policy {
                rounds: 3,
                moves: Moves::Sequential,
            },
            99,
            1,
            |n| {
                seen.push(n);
                Ok::<_, ()>(((), 0))
            },
        )
        .unwrap()
        .unwrap();
        assert!(!f.exact);
        assert_eq!(seen, vec![1, 2, 3]);
    }
}
