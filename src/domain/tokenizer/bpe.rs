//! A compact byte-level BPE that only counts. It holds what counting needs and nothing else: the id of each
//! byte's one-character token and the merge table as integer pairs (about 5 MiB for a 151 k vocabulary, where
//! the `tokenizers` model with its two string maps takes several times that). Its merge order is the
//! `tokenizers` one (lowest rank first, then leftmost, stale entries skipped), so its counts are the same; the
//! parent module's tests check them against the full pipeline.

use std::borrow::Cow;
use std::collections::{BinaryHeap, HashMap};

/// Pair of token ids -> (rank, merged id), both packed in a `u64`.
type MergeMap = HashMap<u64, u64, U64Build>;

pub(super) struct Bpe {
    byte_id: [u32; 256],
    merges: MergeMap,
}

/// A string of the tokenizer file, borrowed from it when it has no escapes.
#[derive(PartialEq, Eq, Hash)]
pub(super) struct Str<'a>(Cow<'a, str>);

impl std::borrow::Borrow<str> for Str<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One merge as the file gives it: `"a b"` or `["a", "b"]`.
pub(super) struct Merge<'a>(Str<'a>, Str<'a>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Merge<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        struct V;
        fn split<'a, E: Error>(s: Cow<'a, str>) -> Result<Merge<'a>, E> {
            let err = || E::custom("a merge is two tokens separated by one space");
            match s {
                Cow::Borrowed(b) => {
                    let (a, c) = b.split_once(' ').ok_or_else(err)?;
                    Ok(Merge(Str(Cow::Borrowed(a)), Str(Cow::Borrowed(c))))
                }
                Cow::Owned(o) => {
                    let (a, c) = o.split_once(' ').ok_or_else(err)?;
                    Ok(Merge(
                        Str(Cow::Owned(a.to_string())),
                        Str(Cow::Owned(c.to_string())),
                    ))
                }
            }
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Merge<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a merge (\"a b\" or [\"a\", \"b\"])")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
                split(Cow::Borrowed(v))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
                split(Cow::Owned(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let a: Str<'de> = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let b: Str<'de> = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(3, &self));
                }
                Ok(Merge(a, b))
            }
        }
        d.deserialize_any(V)
    }
}

impl Bpe {
    /// Builds the table from the file's vocabulary and merges; `None` when a byte's character or a merge's
    /// token is missing from the vocabulary (the full pipeline then counts).
    pub(super) fn build(
        vocab: &HashMap<Str<'_>, u32>,
        merges: &[Merge<'_>],
        byte_char: &[char; 256],
    ) -> Option<Self> {
        let mut byte_id = [0u32; 256];
        let mut buf = [0u8; 4];
        for (b, c) in byte_char.iter().enumerate() {
            byte_id[b] = *vocab.get(&*c.encode_utf8(&mut buf))?;
        }
        let mut map = MergeMap::with_capacity_and_hasher(merges.len(), U64Build::default());
        let mut joined = String::new();
        for (rank, Merge(a, b)) in merges.iter().enumerate() {
            let (a_s, b_s): (&str, &str) = (&a.0, &b.0);
            let a_id = *vocab.get(a_s)?;
            let b_id = *vocab.get(b_s)?;
            joined.clear();
            joined.push_str(a_s);
            joined.push_str(b_s);
            let new_id = *vocab.get(joined.as_str())?;
            map.insert(pair(a_id, b_id), (rank as u64) << 32 | u64::from(new_id));
        }
        map.shrink_to_fit();
        Some(Self {
            byte_id,
            merges: map,
        })
    }

    /// Number of BPE tokens of `piece`, given as the raw bytes of one split piece.
    pub(super) fn count(&self, piece: &[u8]) -> u32 {
        match piece.len() {
            0 | 1 => piece.len() as u32,
            2 => {
                let p = pair(
                    self.byte_id[piece[0] as usize],
                    self.byte_id[piece[1] as usize],
                );
                if self.merges.contains_key(&p) { 1 } else { 2 }
            }
            _ => SCRATCH.with(|s| self.merge(piece, &mut s.borrow_mut())),
        }
    }

    /// Appends the BPE token ids of `piece` (the raw bytes of one split piece) to `out`.
    pub(super) fn ids(&self, piece: &[u8], out: &mut Vec<u32>) {
        match piece.len() {
            0 => {}
            1 => out.push(self.byte_id[piece[0] as usize]),
            _ => SCRATCH.with(|s| {
                let s = &mut *s.borrow_mut();
                self.merge(piece, s);
                let mut i = 0i32;
                while i >= 0 {
                    out.push(s.id[i as usize]);
                    i = s.next[i as usize];
                }
            }),
        }
    }

    /// The `tokenizers` merge loop (`Word::merge_all` without dropout) over a linked list of symbols; returns
    /// the number of symbols left, which start at 0 and follow `s.next`.
    fn merge(&self, piece: &[u8], s: &mut Scratch) -> u32 {
        let n = piece.len();
        s.id.clear();
        s.prev.clear();
        s.next.clear();
        s.heap.clear();
        for (i, &b) in piece.iter().enumerate() {
            s.id.push(self.byte_id[b as usize]);
            s.prev.push(i as i32 - 1);
            s.next.push(if i + 1 < n { i as i32 + 1 } else { -1 });
        }
        for i in 0..n - 1 {
            if let Some(&m) = self.merges.get(&pair(s.id[i], s.id[i + 1])) {
                s.heap.push(std::cmp::Reverse(entry(m, i)));
            }
        }
        let mut count = n as u32;
        while let Some(std::cmp::Reverse(top)) = s.heap.pop() {
            let pos = (top >> 32 & 0xFFFF_FFFF) as usize;
            let new_id = top as u32;
            // `u32::MAX` marks a symbol merged into its left neighbour.
            if s.id[pos] == u32::MAX || s.next[pos] < 0 {
                continue;
            }
            let right = s.next[pos] as usize;
            match self.merges.get(&pair(s.id[pos], s.id[right])) {
                Some(&m) if m as u32 == new_id => {}
                _ => continue,
            }
            s.id[pos] = new_id;
            s.id[right] = u32::MAX;
            let after = s.next[right];
            s.next[pos] = after;
            if after >= 0 {
                s.prev[after as usize] = pos as i32;
            }
            count -= 1;
            if s.prev[pos] >= 0 {
                let p = s.prev[pos] as usize;
                if let Some(&m) = self.merges.get(&pair(s.id[p], s.id[pos])) {
                    s.heap.push(std::cmp::Reverse(entry(m, p)));
                }
            }
            if after >= 0
                && let Some(&m) = self.merges.get(&pair(s.id[pos], s.id[after as usize]))
            {
                s.heap.push(std::cmp::Reverse(entry(m, pos)));
            }
        }
        count
    }
}

fn pair(a: u32, b: u32) -> u64 {
    u64::from(a) << 32 | u64::from(b)
}

/// A heap entry ordered by (rank, position): rank in the top 32 bits, position in the next 32, and the merged
/// id in the low 32 (a `u128` so the three fit and compare in that order).
fn entry(m: u64, pos: usize) -> u128 {
    let rank = m >> 32;
    (u128::from(rank) << 64) | (pos as u128) << 32 | u128::from(m as u32)
}

#[derive(Default)]
struct Scratch {
    id: Vec<u32>,
    prev: Vec<i32>,
    next: Vec<i32>,
    heap: BinaryHeap<std::cmp::Reverse<u128>>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A hasher for packed id pairs: one folded multiply (both halves of the product mixed, so the bucket bits
/// and the tag bits both vary).
type U64Build = std::hash::BuildHasherDefault<U64Hasher>;

#[derive(Default)]
struct U64Hasher(u64);

impl std::hash::Hasher for U64Hasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }
    fn write_u64(&mut self, k: u64) {
        let m = u128::from(k ^ 0x243f_6a88_85a3_08d3) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
