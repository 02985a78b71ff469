//! Prefix reuse: chained block hashes, an identity-hashed set of seen blocks and an LRU cache of blocks.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::model::PrefixStats;

pub(super) const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// Chained block hash: FxHash-style word mixing over the block, seeded with the previous block's hash,
/// finished with the SplitMix64 finalizer.
pub(super) fn hash_block(prev: u64, block: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = prev;
    let mut words = block.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h ^= block.len() as u64;
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[derive(Default, Clone, Copy)]
pub(super) struct IdHasher(pub(super) u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

pub(super) type IdBuild = BuildHasherDefault<IdHasher>;

pub(super) const NIL: u32 = u32::MAX;

/// An LRU set of block hashes (slab-backed doubly linked list).
pub(super) struct Lru {
    pub(super) map: HashMap<u64, u32, IdBuild>,
    pub(super) keys: Vec<u64>,
    pub(super) prev: Vec<u32>,
    pub(super) next: Vec<u32>,
    pub(super) head: u32,
    pub(super) tail: u32,
    pub(super) cap: usize,
}

impl Lru {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::default(),
            keys: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            cap,
        }
    }

    pub(super) fn unlink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
    }

    pub(super) fn push_front(&mut self, i: u32) {
        self.prev[i as usize] = NIL;
        self.next[i as usize] = self.head;
        if self.head != NIL {
            self.prev[self.head as usize] = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Marks `k` most recently used; returns whether it was cached.
    pub(super) fn touch(&mut self, k: u64) -> bool {
        if self.cap == 0 {
            return false;
        }
        if let Some(&i) = self.map.get(&k) {
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return true;
        }
        let i = if self.keys.len() < self.cap {
            self.keys.push(k);
            self.prev.push(NIL);
            self.next.push(NIL);
            (self.keys.len() - 1) as u32
        } else {
            let i = self.tail;
            self.unlink(i);
            self.map.remove(&self.keys[i as usize]);
            self.keys[i as usize] = k;
            i
        };
        self.map.insert(k, i);
        self.push_front(i);
        false
    }
}

/// The set of block hashes seen, split by middle hash bits into shards that grow one at a time: a million
/// blocks never need one table of twice their size next to the old one while it rehashes (the peak of a
/// single set is about 1.5 times its size).
#[derive(Default)]
pub(super) struct BlockSet {
    shards: Vec<HashSet<u64, IdBuild>>,
    len: usize,
}

const SET_SHARDS: usize = 64;

impl BlockSet {
    fn shard(h: u64) -> usize {
        // Not the low bits (the bucket index) nor the top ones (the tag) of the shard's own table.
        (h >> 40) as usize % SET_SHARDS
    }

    pub(super) fn contains(&self, h: &u64) -> bool {
        !self.shards.is_empty() && self.shards[Self::shard(*h)].contains(h)
    }

    pub(super) fn insert(&mut self, h: u64) {
        if self.shards.is_empty() {
            self.shards.resize_with(SET_SHARDS, HashSet::default);
        }
        if self.shards[Self::shard(h)].insert(h) {
            self.len += 1;
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

pub(super) struct PrefixCounter {
    pub(super) stats: PrefixStats,
    pub(super) seen: BlockSet,
    pub(super) cap: usize,
    pub(super) lru: Lru,
}

impl PrefixCounter {
    pub(super) fn request(&mut self, units: u64, blocks: &[u64]) {
        let s = &mut self.stats;
        s.total_units += units;
        let b = s.block_size as u64;
        let mut hit = true;
        for &h in blocks {
            if hit && self.seen.contains(&h) {
                s.reused_unlimited += b;
            } else {
                hit = false;
                if self.seen.len() < self.cap {
                    self.seen.insert(h);
                } else {
                    s.unlimited_saturated = true;
                }
            }
        }
        let mut hit = true;
        for &h in blocks {
            let cached = self.lru.touch(h);
            if hit && cached {
                s.reused_lru += b;
            } else {
                hit = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_set_is_a_set_of_every_hash() {
        let mut s = BlockSet::default();
        assert!(!s.contains(&7));
        let hashes: Vec<u64> = (0..50_000u64).map(|i| hash_block(i, b"block")).collect();
        for &h in &hashes {
            s.insert(h);
            s.insert(h);
        }
        assert_eq!(s.len(), hashes.len(), "duplicates are counted once");
        assert!(hashes.iter().all(|h| s.contains(h)));
        assert!(!(0..1000u64).any(|i| s.contains(&hash_block(i, b"other"))));
        // Hashes that differ only in the shard bits, or only outside them, stay apart.
        let mut t = BlockSet::default();
        t.insert(0);
        assert!(t.contains(&0) && !t.contains(&(1 << 40)) && !t.contains(&1));
    }
}
