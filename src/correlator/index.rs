//! The key index of a correlator shard: group key → record slot, an open-addressing table
//! with linear probing, built for the shard's hot loop at millions of live keys (issue 4).
//!
//! Why not `hashbrown`: at 1 M+ keys every hit misses the cache on the index, and the way
//! to hide those misses is to prefetch a batch's entries ahead of the hit being applied
//! (see `Shard::process`), which needs to know where an entry lives before probing for it.
//! Here an entry's home is the top bits of its key (keys are already xxh3 hashes), so:
//!
//! - [`KeyIndex::prefetch`] touches the home line of any key without probing;
//! - [`KeyIndex::peek`] reads the slot a key most likely has, to prefetch its record;
//! - growing reads the old table in order and writes the new one nearly in order (homes
//!   are monotone in the key), and never reads a record: `hashbrown` re-hashed through the
//!   records, one random miss per key per doubling.
//!
//! What does *not* live here: the records themselves (`shard::Store`), which hold the full
//! key; an index entry keeps only its top 32 bits, a tag that settles almost every probe
//! without reading the record, which the caller's `is` confirms.

/// Group key → slot. At most `u32::MAX − 1` slots.
#[derive(Debug, Clone)]
pub struct KeyIndex {
    /// `(key >> 32) << 32 | (slot + 1)`; 0 is empty. Length a power of two, at least 16.
    /// Invariant (linear probing): between an entry's home `entry >> shift` and its
    /// position, cyclically, no entry is empty. Deletion shifts entries back to keep it.
    entries: Vec<u64>,
    /// `64 − log2(entries.len())`: the home of key `k` is `k >> shift` (≥ 32, so that the
    /// tag holds every bit of the home).
    shift: u32,
    /// Occupied entries; at most 3/4 of `entries` (then the table doubles), so that a
    /// probe for a missing key stays within a line or two.
    len: usize,
}

const MIN_BITS: u32 = 4;

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex::new()
    }
}

impl KeyIndex {
    pub fn new() -> KeyIndex {
        KeyIndex {
            entries: vec![0; 1 << MIN_BITS],
            shift: 64 - MIN_BITS,
            len: 0,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Entries allocated (for the bytes-per-key figure: 8 bytes each).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key >> self.shift) as usize
    }

    /// Position of `key`'s entry: the first entry from its home whose tag matches and whose
    /// slot `is` confirms (the record holds the full key).
    #[inline]
    fn position(&self, key: u64, mut is: impl FnMut(usize) -> bool) -> Option<usize> {
        let mask = self.mask();
        let tag = key >> 32;
        let mut i = self.home(key);
        loop {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            if e >> 32 == tag && is(slot_of(e)) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The slot of `key`; `is(slot)` tells whether the record at `slot` holds `key`.
    #[inline]
    pub fn find(&self, key: u64, is: impl FnMut(usize) -> bool) -> Option<usize> {
        self.position(key, is).map(|i| slot_of(self.entries[i]))
    }

    /// The slot of the first entry whose tag matches `key`'s, without confirming it: a
    /// hint for prefetching the record (wrong, harmlessly, when another live key shares
    /// `key`'s top 32 bits: ~100 keys in 1 M).
    #[inline]
    pub fn peek(&self, key: u64) -> Option<usize> {
        self.find(key, |_| true)
    }

    /// Starts loading the line holding `key`'s home entry.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        super::mem::prefetch(&self.entries[self.home(key)]);
    }

    /// Adds `key` at `slot`. The caller knows `key` is absent.
    pub fn insert(&mut self, key: u64, slot: usize) {
        debug_assert!(slot < u32::MAX as usize);
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        self.place(key, slot);
        self.len += 1;
    }

    fn place(&mut self, key: u64, slot: usize) {
        let mask = self.mask();
        let mut i = self.home(key);
        while self.entries[i] != 0 {
            i = (i + 1) & mask;
        }
        self.entries[i] = entry(key, slot);
    }

    /// Points `key`'s entry at `slot`; false if `key` has none.
    pub fn set(&mut self, key: u64, slot: usize, is: impl FnMut(usize) -> bool) -> bool {
        match self.position(key, is) {
            Some(i) => {
                self.entries[i] = entry(key, slot);
                true
            }
            None => false,
        }
    }

    /// Removes `key`'s entry; false if it has none.
    pub fn remove(&mut self, key: u64, is: impl FnMut(usize) -> bool) -> bool {
        let Some(mut i) = self.position(key, is) else {
            return false;
        };
        // Backward-shift deletion: move each later entry of the run whose home is not in
        // (i, j] into the hole, so that no probe meets an empty entry before its key.
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            let h = (e >> self.shift) as usize;
            if (j.wrapping_sub(h) & mask) >= (j.wrapping_sub(i) & mask) {
                self.entries[i] = e;
                i = j;
            }
        }
        self.entries[i] = 0;
        self.len -= 1;
        true
    }

    /// Doubles the table. Entries are read in order and their homes in the new table are
    /// in (nearly) the same order, so both tables are walked sequentially.
    fn grow(&mut self) {
        let bits = 64 - self.shift + 1;
        assert!(bits <= 32, "key index beyond 2^32 entries");
        let old = std::mem::replace(&mut self.entries, vec![0; 1 << bits]);
        // Probes land at random: huge pages spare a page walk per probe (before the first
        // write, so that the pages are huge from the start).
        super::mem::advise_huge(&self.entries);
        self.shift = 64 - bits;
        for e in old.into_iter().filter(|&e| e != 0) {
            let mask = self.mask();
            let mut i = (e >> self.shift) as usize;
            while self.entries[i] != 0 {
                i = (i + 1) & mask;
            }
            self.entries[i] = e;
        }
    }
}

#[inline]
fn entry(key: u64, slot: usize) -> u64 {
    (key >> 32) << 32 | (slot as u64 + 1)
}

#[inline]
fn slot_of(e: u64) -> usize {
    (e as u32 - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against a `HashMap`: inserts, re-points and removes, with keys forced to share
        /// homes and tags (few distinct top bits) so that runs, wrap-around and tag
        /// collisions are all exercised.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u64..64, 0u64..4), 1..400)) {
            let mut idx = KeyIndex::new();
            // slot → key, as the store's records.
            let mut recs: Vec<u64> = Vec::new();
            let mut map = std::collections::HashMap::new();
            for (op, hi, lo) in ops {
                // Top bits from `hi` (homes and tags collide), low bits tell keys apart.
                let key = (hi << 58) | (hi << 40) | lo;
                match op {
                    0 if !map.contains_key(&key) => {
                        recs.push(key);
                        idx.insert(key, recs.len() - 1);
                        map.insert(key, recs.len() - 1);
                    }
                    1 if map.contains_key(&key) => {
                        // Move the key's record to a new slot (as the store's swap-remove).
                        let old = map[&key];
                        recs[old] = u64::MAX;
                        recs.push(key);
                        prop_assert!(idx.set(key, recs.len() - 1, |s| s == old));
                        map.insert(key, recs.len() - 1);
                    }
                    2 => {
                        let had = map.remove(&key).is_some();
                        prop_assert_eq!(idx.remove(key, |s| recs[s] == key), had);
                    }
                    _ => {}
                }
                prop_assert_eq!(idx.len(), map.len());
            }
            for k in 0..64u64 {
                for lo in 0..4 {
                    let key = (k << 58) | (k << 40) | lo;
                    prop_assert_eq!(idx.find(key, |s| recs[s] == key), map.get(&key).copied());
                    if let Some(&s) = map.get(&key) {
                        prop_assert_eq!(recs[s], key);
                    }
                }
            }
        }
    }

    #[test]
    fn grows_and_finds_a_million_keys() {
        let mut idx = KeyIndex::new();
        let keys: Vec<u64> = (0..1_000_000u64)
            .map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()))
            .collect();
        for (s, &k) in keys.iter().enumerate() {
            idx.insert(k, s);
        }
        assert!(idx.capacity() * 3 >= idx.len() * 4);
        for (s, &k) in keys.iter().enumerate() {
            assert_eq!(idx.find(k, |x| keys[x] == k), Some(s));
            // A hint: the slot of a key with the same tag (1 M keys share ~100 tags).
            let hint = idx.peek(k).expect("present");
            assert_eq!(keys[hint] >> 32, k >> 32);
        }
        // Remove every other key; the rest are still found, the removed are not.
        for (s, &k) in keys.iter().enumerate().step_by(2) {
            assert!(idx.remove(k, |x| x == s));
        }
        for (s, &k) in keys.iter().enumerate() {
            let want = (s % 2 == 1).then_some(s);
            assert_eq!(idx.find(k, |x| keys[x] == k), want);
        }
        assert_eq!(idx.len(), keys.len() / 2);
    }
}
