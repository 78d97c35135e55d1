//! Searching one value for many literals at once, when there are too many literals for an
//! Aho-Corasick DFA to stay in cache (the SigmaHQ set puts ~9,000 literals on `CommandLine`
//! and ~5,600 hashes on `Hashes`; their DFAs are 50–60 MB and cost ~7 ns per byte in cache
//! misses, measured).
//!
//! Each literal is indexed under one window of itself, its *anchor*: 4 bytes (3 for
//! literals of exactly 3 bytes), chosen as the window least likely to occur in log text
//! (by a static byte-frequency prior: `\`, `.` and `e` are everywhere, `q` and `~` are not),
//! then as the one fewest other literals share.
//! Scanning slides over the (lowercased) value once, probing at each position one bit of a
//! 32 KiB bitmap (it stays in L1) of hashed 4-byte anchors, and, when the set has 3-byte
//! anchors, one bit of a second, 8 KiB bitmap of those. Almost every position fails there;
//! the rare ones that pass look their window up in a hash table of anchors, and every
//! candidate literal is compared in full. So a report is exact (no false positives reach
//! the caller) and complete: every occurrence of every literal contains its anchor at a
//! known offset, the anchor set the bit probed at that offset, and every offset is probed.

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
    /// Bit per hashed 4-byte anchor; 2^[`BITS4`] bits.
    bits4: Box<[u64]>,
    /// Bit per hashed 3-byte anchor; 2^[`BITS3`] bits; empty when there are none.
    bits3: Box<[u64]>,
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
const BITS4: u32 = 18;
/// 3-byte anchors are few (only literals with a byte rare in text get one).
const BITS3: u32 = 16;

/// The bitmap slot of a window, `bits` wide.
#[inline(always)]
fn slot(w: u32, bits: u32) -> usize {
    (w.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

#[inline(always)]
fn test(map: &[u64], s: usize) -> bool {
    map[s / 64] & (1 << (s % 64)) != 0
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
        let mut bits4 = vec![0u64; (1usize << BITS4) / 64];
        let mut bits3 = Vec::new();
        for &k in table.keys() {
            let (w, width) = (k as u32, (k >> 32) as usize);
            if width == 4 {
                let s = slot(w, BITS4);
                bits4[s / 64] |= 1 << (s % 64);
            } else {
                if bits3.is_empty() {
                    bits3 = vec![0u64; (1usize << BITS3) / 64];
                }
                let s = slot(w, BITS3);
                bits3[s / 64] |= 1 << (s % 64);
            }
        }
        set.bits4 = bits4.into_boxed_slice();
        set.bits3 = bits3.into_boxed_slice();
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

    /// The rare path: window key `k` passed its bitmap at position `i`; report the literals
    /// anchored there.
    #[cold]
    #[inline(never)]
    fn verify(&self, k: u64, i: usize, hay: &[u8], f: &mut dyn FnMut(u32)) {
        let Some(cands) = self.table.get(&k) else {
            return;
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

    /// Calls `f(id)` for every occurrence of every literal in `hay` (which must be
    /// lowercased the way the literals are).
    #[inline]
    pub fn scan(&self, hay: &[u8], mut f: impl FnMut(u32)) {
        let f: &mut dyn FnMut(u32) = &mut f;
        let (b4, b3) = (&*self.bits4, &*self.bits3);
        let has3 = !b3.is_empty();
        for (i, w) in hay.windows(4).enumerate() {
            let a = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            if test(b4, slot(a, BITS4)) {
                self.verify(key(a, 4), i, hay, f);
            }
            if has3 {
                let a3 = a & 0x00FF_FFFF;
                if test(b3, slot(a3, BITS3)) {
                    self.verify(key(a3, 3), i, hay, f);
                }
            }
        }
        // The last 3-byte window has no 4-byte window around it.
        if has3 && hay.len() >= 3 {
            let i = hay.len() - 3;
            let a3 = window(hay, i, 3);
            if test(b3, slot(a3, BITS3)) {
                self.verify(key(a3, 3), i, hay, f);
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
