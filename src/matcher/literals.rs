//! Searching one value for many literals at once, when there are too many literals for an
//! Aho-Corasick DFA to stay in cache (the SigmaHQ set puts ~9,000 literals on `CommandLine`
//! and ~5,600 hashes on `Hashes`; their DFAs are 50–60 MB and cost ~7 ns per byte in cache
//! misses, measured).
//!
//! Each literal is indexed under one window of itself, its *anchor*: 4 bytes (3 for
//! literals of exactly 3 bytes), chosen as the window least likely to occur in log text
//! (by a static byte-frequency prior: `\`, `.` and `e` are everywhere, `q` and `~` are not),
//! then as the one fewest other literals share.
//! Scanning slides over the (lowercased) value once, probing one bit per position: a 32 KiB
//! bitmap (it stays in L1) of the hashed first three bytes of every anchor. Almost every
//! position fails there; the rare ones that pass look both the 3- and the 4-byte window up in
//! a hash table of anchors, and every candidate literal is compared in full. So a report is
//! exact (no false positives reach the caller) and complete: every occurrence of every
//! literal contains its anchor at a known offset, the anchor's first three bytes set the
//! bit probed at that offset, and every offset of the value is probed.

use hashbrown::HashMap;

/// Shortest literal this set indexes.
pub const MIN_LEN: usize = 3;

#[derive(Clone, Copy, Debug)]
struct Cand {
    lit: u32,
    /// Where the anchor starts inside the literal.
    offset: u32,
}

/// A set of lowercase literals, each with an id (its index at build time).
#[derive(Debug, Default)]
pub struct LiteralSet {
    /// Bit per hashed 3-byte anchor prefix; [`BITS_LOG2`] bits.
    bits: Box<[u64]>,
    /// Key: the anchor's bytes, little-endian, with its width in bits 32..; see [`key`].
    table: HashMap<u64, Box<[Cand]>>,
    /// Literal bytes, and each literal's (start, len) in it.
    bytes: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

#[inline]
fn key(anchor: u32, width: usize) -> u64 {
    anchor as u64 | (width as u64) << 32
}

/// 2^18 bits: 32 KiB, an L1 data cache.
const BITS_LOG2: u32 = 18;

/// The bitmap slot of a 3-byte window (`w` holds it in its low 24 bits).
#[inline(always)]
fn slot(w: u32) -> usize {
    ((w & 0x00FF_FFFF).wrapping_mul(0x9E37_79B1) >> (32 - BITS_LOG2)) as usize
}

/// How common a byte is in (lowercased) log text: 0 rare … 4 ubiquitous.
fn commonness(b: u8) -> u32 {
    match b {
        b' ' | b'.' | b'\\' | b'/' | b'-' | b'_' | b':' => 4,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' | b'l' | b'c' => 3,
        b'0'..=b'9' => 2,
        b'a'..=b'z' => 1,
        _ => 0,
    }
}

#[inline]
fn window(b: &[u8], i: usize, width: usize) -> u32 {
    if width == 4 {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    } else {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], 0])
    }
}

impl LiteralSet {
    /// Indexes `lits` (lowercase, each at least [`MIN_LEN`] bytes); ids are their positions.
    pub fn build(lits: &[&[u8]]) -> LiteralSet {
        assert!(
            lits.iter().all(|l| l.len() >= MIN_LEN),
            "literals must be at least {MIN_LEN} bytes"
        );
        let width = |l: &[u8]| if l.len() >= 4 { 4 } else { 3 };
        // How many literals contain each window: pick the rarest window as the anchor.
        let mut freq: HashMap<u64, u32> = HashMap::new();
        for l in lits {
            let w = width(l);
            let mut seen: Vec<u64> = (0..=l.len() - w).map(|i| key(window(l, i, w), w)).collect();
            seen.sort_unstable();
            seen.dedup();
            for k in seen {
                *freq.entry(k).or_default() += 1;
            }
        }
        let mut table: HashMap<u64, Vec<Cand>> = HashMap::new();
        let mut set = LiteralSet::default();
        for (id, l) in lits.iter().enumerate() {
            let w = width(l);
            let (offset, k) = (0..=l.len() - w)
                .map(|i| (i, key(window(l, i, w), w)))
                .min_by_key(|&(i, k)| {
                    // First keep candidate lists short (every literal sharing an anchor is
                    // compared whenever it occurs: `md5=` is in every Hashes value), then
                    // prefer windows rare in text.
                    let f = freq[&k];
                    let shared = match f {
                        0..=2 => 0,
                        3..=8 => 1,
                        9..=64 => 2,
                        _ => 3,
                    };
                    let text: u32 = l[i..i + w].iter().map(|&b| commonness(b)).sum();
                    (shared, text, f, std::cmp::Reverse(i))
                })
                .expect("literal has a window");
            table.entry(k).or_default().push(Cand {
                lit: id as u32,
                offset: offset as u32,
            });
            set.spans.push((set.bytes.len() as u32, l.len() as u32));
            set.bytes.extend_from_slice(l);
        }
        let mut bits = vec![0u64; (1usize << BITS_LOG2) / 64];
        for &k in table.keys() {
            let s = slot(k as u32);
            bits[s / 64] |= 1 << (s % 64);
        }
        set.bits = bits.into_boxed_slice();
        set.table = table
            .into_iter()
            .map(|(k, v)| (k, v.into_boxed_slice()))
            .collect();
        set
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn lit(&self, id: u32) -> &[u8] {
        let (s, l) = self.spans[id as usize];
        &self.bytes[s as usize..(s + l) as usize]
    }

    /// The rare path: the 3-byte window at `i` passed the bitmap; report the literals whose
    /// 3- or 4-byte anchor is there.
    #[cold]
    #[inline(never)]
    fn verify(&self, i: usize, hay: &[u8], f: &mut dyn FnMut(u32)) {
        let w3 = window(hay, i, 3);
        let mut keys = [Some(key(w3, 3)), None];
        if hay.len() - i >= 4 {
            keys[1] = Some(key(window(hay, i, 4), 4));
        }
        for k in keys.into_iter().flatten() {
            let Some(cands) = self.table.get(&k) else {
                continue;
            };
            for c in cands.iter() {
                let Some(start) = i.checked_sub(c.offset as usize) else {
                    continue;
                };
                let lit = self.lit(c.lit);
                if hay.len() - start >= lit.len() && &hay[start..start + lit.len()] == lit {
                    f(c.lit);
                }
            }
        }
    }

    /// Calls `f(id)` for every occurrence of every literal in `hay` (which must be
    /// lowercased the way the literals are).
    #[inline]
    pub fn scan(&self, hay: &[u8], mut f: impl FnMut(u32)) {
        let f: &mut dyn FnMut(u32) = &mut f;
        let bits = &*self.bits;
        let mut i = 0;
        // Four bytes per load while they last; the final 3-byte window separately.
        while i + 4 <= hay.len() {
            let w = u32::from_le_bytes([hay[i], hay[i + 1], hay[i + 2], hay[i + 3]]);
            let s = slot(w);
            if bits[s / 64] & (1 << (s % 64)) != 0 {
                self.verify(i, hay, f);
            }
            i += 1;
        }
        if hay.len() >= 3 {
            let i = hay.len() - 3;
            let s = slot(window(hay, i, 3));
            if bits[s / 64] & (1 << (s % 64)) != 0 {
                self.verify(i, hay, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(lits: &[Vec<u8>], hay: &[u8]) -> Vec<u32> {
        let mut v: Vec<u32> = lits
            .iter()
            .enumerate()
            .filter(|(_, l)| hay.windows(l.len()).any(|w| w == l.as_slice()))
            .map(|(i, _)| i as u32)
            .collect();
        v.sort();
        v
    }

    proptest! {
        /// Reports exactly the literals a naive search finds (small alphabet: many overlaps).
        #[test]
        fn agrees_with_naive_search(
            lits in proptest::collection::vec(proptest::collection::vec(b'a'..b'e', 3..9), 1..40),
            hay in proptest::collection::vec(b'a'..b'e', 0..200),
        ) {
            let refs: Vec<&[u8]> = lits.iter().map(|l| l.as_slice()).collect();
            let set = LiteralSet::build(&refs);
            let mut got = Vec::new();
            set.scan(&hay, |id| got.push(id));
            got.sort();
            got.dedup();
            prop_assert_eq!(got, naive(&lits, &hay));
        }
    }

    #[test]
    fn finds_literals_at_both_ends() {
        let set = LiteralSet::build(&[b"\\whoami.exe", b"abcd", b"exe", b"c:\\"]);
        let mut got = Vec::new();
        set.scan(b"abcd c:\\windows\\system32\\whoami.exe", |id| got.push(id));
        got.sort();
        got.dedup();
        assert_eq!(got, vec![0, 1, 2, 3]);
    }
}
