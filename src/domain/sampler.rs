//! Length-matched prompt selection (reference §2) without linear scans.
//!
//! Prompts are kept sorted by token length (and, separately, by completion length); a Fenwick tree over each
//! order counts the prompts that are still available, so the tolerance window is found by binary search and a
//! uniform pick inside it is an O(log n) rank query. Semantics follow the reference: tolerance starts at
//! `initial_tolerance` (0.5 synthetic, 0.1 traces) and widens by `tolerance_step` up to and including ±100%;
//! when nothing matches, the nearest prompt wins (Euclidean distance over the given targets, ties to file
//! order). Prompts without a completion always pass the output-length test.

use rand::Rng;
use rand::seq::SliceRandom;

use super::lengths::TokenizedDataset;

/// Counts of available positions with O(log n) update, prefix count and k-th lookup.
#[derive(Debug, Clone)]
struct Fenwick {
    tree: Vec<u32>,
    total: u32,
}

impl Fenwick {
    fn new(alive: &[bool]) -> Self {
        let n = alive.len();
        let mut tree = vec![0u32; n + 1];
        for (i, &a) in alive.iter().enumerate() {
            tree[i + 1] += a as u32;
            let j = (i + 1) + ((i + 1) & (i + 1).wrapping_neg());
            if j <= n {
                tree[j] += tree[i + 1];
            }
        }
        let total = alive.iter().filter(|&&a| a).count() as u32;
        Self { tree, total }
    }

    fn add(&mut self, pos: usize, delta: i32) {
        let mut i = pos + 1;
        while i < self.tree.len() {
            self.tree[i] = (self.tree[i] as i64 + delta as i64) as u32;
            i += i & i.wrapping_neg();
        }
        self.total = (self.total as i64 + delta as i64) as u32;
    }

    /// Available positions in `[0, pos)`.
    fn prefix(&self, pos: usize) -> u32 {
        let mut i = pos;
        let mut s = 0;
        while i > 0 {
            s += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        s
    }

    fn range(&self, lo: usize, hi: usize) -> u32 {
        if hi <= lo {
            0
        } else {
            self.prefix(hi) - self.prefix(lo)
        }
    }

    /// Position of the available element of rank `k` (0-based). Requires `k < total`.
    fn kth(&self, k: u32) -> usize {
        let n = self.tree.len() - 1;
        let mut pos = 0usize;
        let mut rem = k + 1;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] < rem {
                pos = next;
                rem -= self.tree[next];
            }
            step >>= 1;
        }
        pos
    }
}

/// Tolerance schedule of the matcher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// First relative tolerance tried (0.5 for synthetic traffic, 0.1 for traces).
    pub initial: f64,
    /// Increment between attempts (0.05).
    pub step: f64,
    /// Largest tolerance tried, inclusive (1.0).
    pub max: f64,
    /// Windows round inward (`ceil` of the low end), so every prompt in one is within the tolerance; the
    /// reference truncates the low end down, which lets in prompts just outside it.
    pub inward: bool,
}

impl Tolerance {
    /// Reference schedule for synthetic traffic: 0.5 by 0.05 to 1.0.
    pub const SYNTHETIC: Tolerance = Tolerance {
        initial: 0.5,
        step: 0.05,
        max: 1.0,
        inward: false,
    };
    /// Reference schedule for traces: 0.1 by 0.05 to 1.0.
    pub const TRACE: Tolerance = Tolerance {
        initial: 0.1,
        step: 0.05,
        max: 1.0,
        inward: false,
    };

    fn steps(&self) -> impl Iterator<Item = f64> + '_ {
        let n = if self.step > 0.0 {
            ((self.max - self.initial) / self.step + 1e-9)
                .floor()
                .max(0.0) as usize
                + 1
        } else {
            1
        };
        (0..n).map(move |k| self.initial + k as f64 * self.step)
    }
}

/// How a prompt was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PickKind {
    /// No target: shuffled deck or uniform pick.
    Untargeted,
    /// Inside the window of this tolerance.
    Window(f64),
    /// No window matched: the nearest prompt.
    Nearest,
}

/// One chosen prompt (an index into the collection's prompt list) and how it was found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// Index into `Dataset::prompts`.
    pub item: usize,
    /// How it was chosen.
    pub kind: PickKind,
}

fn window(target: u32, e: f64) -> (u32, u32) {
    let t = target as f64;
    let lo = (t * (1.0 - e)).max(0.0) as u32; // int() truncation, as the reference
    let hi = (t * (1.0 + e)).min(u32::MAX as f64) as u32;
    (lo, hi)
}

/// [`window`], rounded inward when `inward`: exactly the lengths within `e` of `target`.
fn window_of(target: u32, e: f64, inward: bool) -> (u32, u32) {
    let (lo, hi) = window(target, e);
    if inward && f64::from(lo) < f64::from(target) * (1.0 - e) {
        (lo + 1, hi)
    } else {
        (lo, hi)
    }
}

#[derive(Debug)]
enum Mode {
    /// Plain, with replacement: a shuffled deck when untargeted.
    Replace { deck: Vec<u32>, cursor: usize },
    /// Plain, without replacement.
    NoReplace,
    /// Sessioned: only each open session's next turn is available.
    Sessions {
        item_session: Vec<u32>,
        session_end: Vec<u32>,
        session_first: Vec<u32>,
        next_unopened: usize,
    },
}

/// Signed distance along one sorted order, by position.
type KeyFn<'a> = Box<dyn Fn(usize) -> i128 + 'a>;

/// The prompt sampler over one tokenized collection.
#[derive(Debug)]
pub struct Sampler {
    plen: Vec<u32>,
    clen: Vec<Option<u32>>,
    alive: Vec<bool>,
    by_prompt: Vec<u32>,
    plen_sorted: Vec<u32>,
    pos_prompt: Vec<u32>,
    fen_prompt: Fenwick,
    by_comp: Vec<u32>,
    clen_sorted: Vec<u32>,
    n_none: usize,
    pos_comp: Vec<u32>,
    fen_comp: Fenwick,
    mode: Mode,
    /// Sessions fully emitted.
    pub sessions_finished: u64,
}

impl Sampler {
    /// A sampler over `data`. Plain collections sample with or without replacement; sessioned collections
    /// keep at most `max_open_sessions` sessions open (all when `None`), in file order.
    pub fn new(
        data: &TokenizedDataset,
        replacement: bool,
        max_open_sessions: Option<u32>,
        rng: &mut impl Rng,
    ) -> Self {
        let n = data.prompt_len.len();
        let plen = data.prompt_len.clone();
        let clen = data.completion_len.clone();
        let mut by_prompt: Vec<u32> = (0..n as u32).collect();
        by_prompt.sort_by_key(|&i| (plen[i as usize], i));
        let plen_sorted = by_prompt.iter().map(|&i| plen[i as usize]).collect();
        let mut pos_prompt = vec![0u32; n];
        for (p, &i) in by_prompt.iter().enumerate() {
            pos_prompt[i as usize] = p as u32;
        }
        let mut by_comp: Vec<u32> = (0..n as u32).collect();
        by_comp.sort_by_key(|&i| (clen[i as usize].map_or(0, |c| c as u64 + 1), i));
        let n_none = clen.iter().filter(|c| c.is_none()).count();
        let clen_sorted = by_comp[n_none..]
            .iter()
            .map(|&i| clen[i as usize].expect("sorted after None"))
            .collect();
        let mut pos_comp = vec![0u32; n];
        for (p, &i) in by_comp.iter().enumerate() {
            pos_comp[i as usize] = p as u32;
        }
        let sessions = &data.dataset.sessions;
        let (alive, mode) = if sessions.is_empty() {
            let alive = vec![true; n];
            if replacement {
                let mut deck: Vec<u32> = (0..n as u32).collect();
                deck.shuffle(rng);
                (alive, Mode::Replace { deck, cursor: 0 })
            } else {
                (alive, Mode::NoReplace)
            }
        } else {
            let mut alive = vec![false; n];
            let mut item_session = vec![0u32; n];
            let mut session_end = Vec::with_capacity(sessions.len());
            let mut session_first = Vec::with_capacity(sessions.len());
            for (s, sess) in sessions.iter().enumerate() {
                for t in sess.first_turn..sess.first_turn + sess.turns {
                    item_session[t as usize] = s as u32;
                }
                session_first.push(sess.first_turn);
                session_end.push(sess.first_turn + sess.turns);
            }
            let open =
                max_open_sessions.map_or(sessions.len(), |k| (k as usize).min(sessions.len()));
            for sess in &sessions[..open] {
                alive[sess.first_turn as usize] = true;
            }
            (
                alive,
                Mode::Sessions {
                    item_session,
                    session_end,
                    session_first,
                    next_unopened: open,
                },
            )
        };
        let fen_prompt = Fenwick::new(
            &by_prompt
                .iter()
                .map(|&i| alive[i as usize])
                .collect::<Vec<_>>(),
        );
        let fen_comp = Fenwick::new(
            &by_comp
                .iter()
                .map(|&i| alive[i as usize])
                .collect::<Vec<_>>(),
        );
        Self {
            plen,
            clen,
            alive,
            by_prompt,
            plen_sorted,
            pos_prompt,
            fen_prompt,
            by_comp,
            clen_sorted,
            n_none,
            pos_comp,
            fen_comp,
            mode,
            sessions_finished: 0,
        }
    }

    /// Prompts (or session turns) still available right now.
    pub fn available(&self) -> u32 {
        self.fen_prompt.total
    }

    /// The session index of an item (sessioned collections).
    pub fn session_of(&self, item: usize) -> Option<usize> {
        match &self.mode {
            Mode::Sessions { item_session, .. } => Some(item_session[item] as usize),
            _ => None,
        }
    }

    fn set_alive(&mut self, item: usize, on: bool) {
        if self.alive[item] == on {
            return;
        }
        self.alive[item] = on;
        let d = if on { 1 } else { -1 };
        self.fen_prompt.add(self.pos_prompt[item] as usize, d);
        self.fen_comp.add(self.pos_comp[item] as usize, d);
    }

    /// Picks a prompt for the given targets; `None` when the collection is exhausted (without replacement,
    /// or all sessions used up).
    pub fn pick(
        &mut self,
        rng: &mut impl Rng,
        target_in: Option<u32>,
        target_out: Option<u32>,
        tol: Tolerance,
    ) -> Option<Pick> {
        let target_in = target_in.filter(|&t| t > 0);
        let target_out = target_out.filter(|&t| t > 0);
        if self.fen_prompt.total == 0 {
            return None;
        }
        let pick = if target_in.is_none() && target_out.is_none() {
            let item = match &mut self.mode {
                Mode::Replace { deck, cursor } => {
                    if *cursor == deck.len() {
                        deck.shuffle(rng);
                        *cursor = 0;
                    }
                    *cursor += 1;
                    deck[*cursor - 1] as usize
                }
                _ => {
                    let r = rng.random_range(0..self.fen_prompt.total);
                    self.by_prompt[self.fen_prompt.kth(r)] as usize
                }
            };
            Pick {
                item,
                kind: PickKind::Untargeted,
            }
        } else {
            let mut found = None;
            for e in tol.steps() {
                if let Some(item) = self.pick_window(rng, target_in, target_out, e, tol.inward) {
                    found = Some(Pick {
                        item,
                        kind: PickKind::Window(e),
                    });
                    break;
                }
            }
            found.unwrap_or_else(|| Pick {
                item: self.nearest(target_in, target_out),
                kind: PickKind::Nearest,
            })
        };
        self.consume(pick.item);
        Some(pick)
    }

    fn consume(&mut self, item: usize) {
        match &mut self.mode {
            Mode::Replace { .. } => {}
            Mode::NoReplace => self.set_alive(item, false),
            Mode::Sessions {
                item_session,
                session_end,
                session_first,
                next_unopened,
            } => {
                let s = item_session[item] as usize;
                let next = item + 1;
                let more = (next as u32) < session_end[s];
                let open_next = if more {
                    None
                } else if *next_unopened < session_first.len() {
                    *next_unopened += 1;
                    Some(session_first[*next_unopened - 1] as usize)
                } else {
                    None
                };
                if !more {
                    self.sessions_finished += 1;
                }
                self.set_alive(item, false);
                if more {
                    self.set_alive(next, true);
                }
                if let Some(first) = open_next {
                    self.set_alive(first, true);
                }
            }
        }
    }

    /// Position range in prompt order of lengths within `[lo, hi]`.
    fn prompt_range(&self, lo: u32, hi: u32) -> (usize, usize) {
        (
            self.plen_sorted.partition_point(|&l| l < lo),
            self.plen_sorted.partition_point(|&l| l <= hi),
        )
    }

    /// Position range in completion order (offset by the `None` prefix) of lengths within `[lo, hi]`.
    fn comp_range(&self, lo: u32, hi: u32) -> (usize, usize) {
        (
            self.n_none + self.clen_sorted.partition_point(|&l| l < lo),
            self.n_none + self.clen_sorted.partition_point(|&l| l <= hi),
        )
    }

    fn in_out_window(&self, item: usize, out: Option<(u32, u32)>) -> bool {
        match (out, self.clen[item]) {
            (None, _) | (_, None) => true,
            (Some((lo, hi)), Some(c)) => c >= lo && c <= hi,
        }
    }

    fn pick_window(
        &self,
        rng: &mut impl Rng,
        tin: Option<u32>,
        tout: Option<u32>,
        e: f64,
        inward: bool,
    ) -> Option<usize> {
        let win_in = tin.map(|t| window_of(t, e, inward));
        let win_out = tout.map(|t| window_of(t, e, inward));
        // Candidate set A (prompt order): the input window, or everything.
        let (a_lo, a_hi) = win_in.map_or((0, self.plen_sorted.len()), |(lo, hi)| {
            self.prompt_range(lo, hi)
        });
        let ca = self.fen_prompt.range(a_lo, a_hi);
        if ca == 0 {
            return None;
        }
        let Some((olo, ohi)) = win_out else {
            let r = rng.random_range(0..ca);
            return Some(
                self.by_prompt[self.fen_prompt.kth(self.fen_prompt.prefix(a_lo) + r)] as usize,
            );
        };
        // Candidate set B (completion order): no completion, or completion in the output window.
        let (b_lo, b_hi) = self.comp_range(olo, ohi);
        let c_none = self.fen_comp.range(0, self.n_none);
        let cb = c_none + self.fen_comp.range(b_lo, b_hi);
        if cb == 0 {
            return None;
        }
        let sample_b = |rng: &mut dyn rand::RngCore| -> usize {
            let r = rng.random_range(0..cb);
            let pos = if r < c_none {
                self.fen_comp.kth(r)
            } else {
                self.fen_comp.kth(self.fen_comp.prefix(b_lo) + (r - c_none))
            };
            self.by_comp[pos] as usize
        };
        let in_a = |item: usize| {
            let p = self.pos_prompt[item] as usize;
            p >= a_lo && p < a_hi
        };
        if win_in.is_none() {
            return Some(sample_b(rng));
        }
        // Both targets: uniform over A∩B by rejection from the smaller set, then an exact scan.
        // Rejection pays off only when the smaller set is large; a small one is scanned directly.
        const TRIES: usize = 32;
        let a_smaller = ca <= cb;
        let tries = if ca.min(cb) as usize <= 2 * TRIES {
            0
        } else {
            TRIES
        };
        for _ in 0..tries {
            let item = if a_smaller {
                let r = rng.random_range(0..ca);
                self.by_prompt[self.fen_prompt.kth(self.fen_prompt.prefix(a_lo) + r)] as usize
            } else {
                sample_b(rng)
            };
            let ok = if a_smaller {
                self.in_out_window(item, win_out)
            } else {
                in_a(item)
            };
            if ok {
                return Some(item);
            }
        }
        let hits: Vec<usize> = if a_smaller {
            (a_lo..a_hi)
                .map(|p| self.by_prompt[p] as usize)
                .filter(|&i| self.alive[i] && self.in_out_window(i, win_out))
                .collect()
        } else {
            (0..self.n_none)
                .chain(b_lo..b_hi)
                .map(|p| self.by_comp[p] as usize)
                .filter(|&i| self.alive[i] && in_a(i))
                .collect()
        };
        if hits.is_empty() {
            None
        } else {
            Some(hits[rng.random_range(0..hits.len())])
        }
    }

    fn distance(&self, item: usize, tin: Option<u32>, tout: Option<u32>) -> u128 {
        let d_in = tin.map_or(0i128, |t| self.plen[item] as i128 - t as i128);
        let d_out = match (tout, self.clen[item]) {
            (Some(t), Some(c)) => c as i128 - t as i128,
            _ => 0,
        };
        (d_in * d_in + d_out * d_out) as u128
    }

    /// Nearest available prompt; ties go to the earliest in file order. Walks outward from the target in
    /// sorted order and stops once the one-dimensional distance alone exceeds the best.
    fn nearest(&self, tin: Option<u32>, tout: Option<u32>) -> usize {
        let (fen, order, key, start): (&Fenwick, &[u32], KeyFn<'_>, usize) = if let Some(t) = tin {
            (
                &self.fen_prompt,
                &self.by_prompt,
                Box::new(move |p: usize| self.plen_sorted[p] as i128 - t as i128),
                self.plen_sorted.partition_point(|&l| l < t),
            )
        } else {
            let t = tout.expect("a target is set");
            (
                &self.fen_comp,
                &self.by_comp,
                Box::new(move |p: usize| {
                    if p < self.n_none {
                        0
                    } else {
                        self.clen_sorted[p - self.n_none] as i128 - t as i128
                    }
                }),
                self.n_none + self.clen_sorted.partition_point(|&l| l < t),
            )
        };
        let mut best: Option<(u128, usize)> = None;
        let consider = |best: &mut Option<(u128, usize)>, item: usize| {
            let d = self.distance(item, tin, tout);
            if best.is_none_or(|(bd, bi)| d < bd || (d == bd && item < bi)) {
                *best = Some((d, item));
            }
        };
        // Rightwards from start.
        let mut rank = fen.prefix(start);
        while rank < fen.total {
            let p = fen.kth(rank);
            let k = key(p);
            if best.is_some_and(|(bd, _)| (k * k) as u128 > bd) {
                break;
            }
            consider(&mut best, order[p] as usize);
            rank += 1;
        }
        // Leftwards.
        let mut rank = fen.prefix(start);
        while rank > 0 {
            rank -= 1;
            let p = fen.kth(rank);
            let k = key(p);
            if best.is_some_and(|(bd, _)| (k * k) as u128 > bd) {
                break;
            }
            consider(&mut best, order[p] as usize);
        }
        // The completion-order walk skips nothing by construction; the `None` prefix sits at key 0.
        best.map(|(_, i)| i)
            .expect("at least one item is available")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dataset::parse_jsonl;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::sync::Arc;

    fn data(plen: &[u32], clen: &[Option<u32>]) -> TokenizedDataset {
        let text: String = plen.iter().map(|_| "{\"prompt\": \"x\"}\n").collect();
        TokenizedDataset {
            dataset: Arc::new(parse_jsonl(text.as_bytes(), "t").unwrap()),
            prompt_len: plen.to_vec(),
            completion_len: clen.to_vec(),
            from_cache: false,
        }
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn fenwick_kth_and_prefix() {
        let mut f = Fenwick::new(&[true, false, true, true, false, true]);
        assert_eq!(f.total, 4);
        assert_eq!(
            (0..4).map(|k| f.kth(k)).collect::<Vec<_>>(),
            vec![0, 2, 3, 5]
        );
        f.add(2, -1);
        assert_eq!((0..3).map(|k| f.kth(k)).collect::<Vec<_>>(), vec![0, 3, 5]);
        assert_eq!(f.prefix(4), 2);
        assert_eq!(f.range(1, 6), 2);
    }

    #[test]
    fn tolerance_schedule_includes_full_width() {
        let s: Vec<f64> = Tolerance::SYNTHETIC.steps().collect();
        assert_eq!(s.len(), 11);
        assert!((s[10] - 1.0).abs() < 1e-9);
        assert_eq!(Tolerance::TRACE.steps().count(), 19);
    }

    #[test]
    fn window_is_inclusive_and_truncated() {
        assert_eq!(window(100, 0.5), (50, 150));
        assert_eq!(window(7, 0.1), (6, 7));
        // Inward: 486 is 5.08% below 512, so `near` windows start at 487; the high end already truncates.
        assert_eq!(window_of(512, 0.05, false), (486, 537));
        assert_eq!(window_of(512, 0.05, true), (487, 537));
        assert_eq!(window_of(100, 0.05, true), (95, 105));
    }

    #[test]
    fn picks_only_inside_the_first_matching_window() {
        // Lengths 10, 100, 140, 1000: target 100 at ±10% must give only item 1; at 0.5 start, 1 or 2.
        let d = data(&[10, 100, 140, 1000], &[None; 4]);
        let mut r = rng();
        let mut s = Sampler::new(&d, true, None, &mut r);
        for _ in 0..50 {
            let p = s.pick(&mut r, Some(100), None, Tolerance::TRACE).unwrap();
            assert_eq!(p.item, 1);
            assert_eq!(p.kind, PickKind::Window(0.1));
        }
        let mut seen = [0; 4];
        for _ in 0..400 {
            let p = s
                .pick(&mut r, Some(100), None, Tolerance::SYNTHETIC)
                .unwrap();
            seen[p.item] += 1;
        }
        assert_eq!(seen[0] + seen[3], 0);
        assert!(seen[1] > 120 && seen[2] > 120, "{seen:?}");
    }

    #[test]
    fn widens_then_falls_back_to_nearest_with_ties_to_file_order() {
        let d = data(&[10, 3000, 5000, 3000], &[None; 4]);
        let mut r = rng();
        let mut s = Sampler::new(&d, true, None, &mut r);
        // 1000 at ±100% is [0, 2000]: only item 0 (10) is inside.
        let p = s
            .pick(&mut r, Some(1000), None, Tolerance::SYNTHETIC)
            .unwrap();
        assert_eq!(
            p,
            Pick {
                item: 0,
                kind: PickKind::Window(1.0)
            }
        );
        // 100000: the first window that holds anything is ±95% ([5000, 195000]).
        let p = s
            .pick(&mut r, Some(100_000), None, Tolerance::SYNTHETIC)
            .unwrap();
        assert_eq!(
            p,
            Pick {
                item: 2,
                kind: PickKind::Window(0.95)
            }
        );
        // Target 1: even ±100% ([0, 2]) holds nothing; the nearest wins, ties in file order.
        let d = data(&[3000, 3000, 9000], &[None; 3]);
        let mut s = Sampler::new(&d, false, None, &mut r);
        let p = s.pick(&mut r, Some(1), None, Tolerance::SYNTHETIC).unwrap();
        assert_eq!(
            p,
            Pick {
                item: 0,
                kind: PickKind::Nearest
            }
        );
        let p = s.pick(&mut r, Some(1), None, Tolerance::SYNTHETIC).unwrap();
        assert_eq!(
            p,
            Pick {
                item: 1,
                kind: PickKind::Nearest
            }
        );
        let p = s.pick(&mut r, Some(1), None, Tolerance::SYNTHETIC).unwrap();
        assert_eq!(
            p,
            Pick {
                item: 2,
                kind: PickKind::Nearest
            }
        );
    }

    #[test]
    fn output_only_target_and_missing_completion_never_crash() {
        // Fixes W8: an output target alone, with the fallback reached.
        let d = data(&[5, 6, 7], &[Some(10), Some(20), Some(5000)]);
        let mut r = rng();
        let mut s = Sampler::new(&d, true, None, &mut r);
        let p = s
            .pick(&mut r, None, Some(4000), Tolerance::SYNTHETIC)
            .unwrap();
        assert_eq!(p.item, 2);
        let p = s.pick(&mut r, None, Some(1), Tolerance::SYNTHETIC).unwrap();
        assert_eq!((p.item, p.kind), (0, PickKind::Nearest));
        // Both targets: the pair that fits both windows.
        let d = data(&[100, 100, 300], &[Some(1000), Some(50), Some(50)]);
        let mut s = Sampler::new(&d, true, None, &mut r);
        for _ in 0..20 {
            assert_eq!(
                s.pick(&mut r, Some(100), Some(50), Tolerance::TRACE)
                    .unwrap()
                    .item,
                1
            );
        }
        // No completion always passes the output test.
        let d = data(&[100, 100], &[Some(9999), None]);
        let mut s = Sampler::new(&d, true, None, &mut r);
        assert_eq!(
            s.pick(&mut r, Some(100), Some(10), Tolerance::TRACE)
                .unwrap()
                .item,
            1
        );
    }

    #[test]
    fn deck_uses_every_prompt_once_per_epoch() {
        let d = data(&[1, 2, 3, 4, 5], &[None; 5]);
        let mut r = rng();
        let mut s = Sampler::new(&d, true, None, &mut r);
        for _ in 0..3 {
            let mut got: Vec<usize> = (0..5)
                .map(|_| {
                    s.pick(&mut r, None, None, Tolerance::SYNTHETIC)
                        .unwrap()
                        .item
                })
                .collect();
            got.sort();
            assert_eq!(got, vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn without_replacement_exhausts() {
        let d = data(&[1, 2, 3], &[None; 3]);
        let mut r = rng();
        let mut s = Sampler::new(&d, false, None, &mut r);
        let mut got: Vec<usize> = (0..3)
            .map(|_| {
                s.pick(&mut r, Some(2), None, Tolerance::SYNTHETIC)
                    .unwrap()
                    .item
            })
            .collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2]);
        assert!(
            s.pick(&mut r, Some(2), None, Tolerance::SYNTHETIC)
                .is_none()
        );
    }

    #[test]
    fn sessions_keep_turn_order_and_concurrency_limit() {
        let text = "{\"session_id\": 1, \"prompts\": [\"a\", \"b\", \"c\"]}\n{\"session_id\": 2, \"prompts\": [\"d\"]}\n{\"session_id\": 3, \"prompts\": [\"e\", \"f\"]}\n";
        let ds = Arc::new(parse_jsonl(text.as_bytes(), "t").unwrap());
        let d = TokenizedDataset {
            dataset: ds,
            prompt_len: vec![1; 6],
            completion_len: vec![None; 6],
            from_cache: false,
        };
        let mut r = rng();
        // K = 1: strictly one session after another.
        let mut s = Sampler::new(&d, true, Some(1), &mut r);
        let order: Vec<usize> = std::iter::from_fn(|| {
            s.pick(&mut r, None, None, Tolerance::SYNTHETIC)
                .map(|p| p.item)
        })
        .collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(s.sessions_finished, 3);
        // Unlimited: every order keeps each session's turns in order.
        for seed in 0..20 {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let mut s = Sampler::new(&d, true, None, &mut r);
            let order: Vec<usize> = std::iter::from_fn(|| {
                s.pick(&mut r, Some(1), None, Tolerance::SYNTHETIC)
                    .map(|p| p.item)
            })
            .collect();
            assert_eq!(order.len(), 6);
            let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
            assert!(pos(0) < pos(1) && pos(1) < pos(2) && pos(4) < pos(5));
        }
        // K = 2: session 3 cannot start before session 1 or 2 has finished.
        for seed in 0..20 {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            let mut s = Sampler::new(&d, true, Some(2), &mut r);
            let order: Vec<usize> = std::iter::from_fn(|| {
                s.pick(&mut r, None, None, Tolerance::SYNTHETIC)
                    .map(|p| p.item)
            })
            .collect();
            let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
            assert!(pos(4) > pos(3).min(pos(2)));
        }
    }
}
