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
//! bitmap of hashed 4-byte anchors, and, when the set has 3-byte anchors, one bit of a
//! second bitmap of those. Each bitmap is sized to its anchor count (~128 bits per anchor,
//! 512 B to 32 KiB): an event scans several fields, each with its own set, and one 32 KiB
//! bitmap per field no longer fit in L1 together (the SigmaHQ set has ~9 such fields).
//! Almost every position fails there; the rare ones that pass look their window up in a
//! hash table of anchors, and every candidate literal is compared in full. That table is
//! flat (one array of slot starts, one of candidates sorted by slot; see [`Cands`]): a
//! lookup is two reads of adjacent memory, where a map of boxed candidate lists cost a
//! control-byte probe, a bucket and a pointer chase, each a likely cache miss. So a report is
//! exact (no false positives reach the caller) and complete: every occurrence of every
//! literal contains its anchor at a known offset, the anchor set the bit probed at that
//! offset, and every offset is probed.
//!
//! Literals of 2 bytes (`^^`, a Cyrillic letter) are their own anchors, kept in a direct
//! 64 Ki-bit table. Their positions are only probed in values that can hold one: when
//! every such literal starts with a non-ASCII byte or one of at most three ASCII bytes, a
//! value that is ASCII and holds none of those bytes (found with `memchr3`) is skipped.
//!
//! Literals of 1 byte (a rare one: the prefilter only keeps those) are looked for with
//! `memchr3`, three per pass over the value.

use hashbrown::HashMap;

/// Shortest literal this set indexes.
pub const MIN_LEN: usize = 1;

#[derive(Clone, Copy, Debug)]
struct Cand {
    /// The anchor's key (see [`key`]).
    key: u64,
    lit: u32,
    /// Where the anchor starts inside the literal.
    offset: u32,
}

/// The literals anchored under each key, as a flat hash table: the candidates of hash slot
/// `h` are `cands[heads[h]..heads[h + 1]]` (keys colliding in a slot are told apart by
/// [`Cand::key`]).
#[derive(Debug, Default)]
struct Cands {
    /// `2^bits + 1` ascending offsets into `cands`; the last is `cands.len()`.
    heads: Box<[u32]>,
    bits: u32,
    /// Sorted by slot.
    cands: Box<[Cand]>,
}

impl Cands {
    #[inline(always)]
    fn slot(k: u64, bits: u32) -> usize {
        let h = (k as u32).wrapping_mul(0x9E37_79B1) ^ ((k >> 32) as u32).wrapping_mul(0x85EB_CA6B);
        (h >> (32 - bits)) as usize
    }

    fn build(mut cands: Vec<Cand>) -> Cands {
        let mut keys: Vec<u64> = cands.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        keys.dedup();
        // At most one key per slot on average: most slots hold one key or none.
        let bits = keys.len().max(2).next_power_of_two().trailing_zeros();
        cands.sort_by_key(|c| (Cands::slot(c.key, bits), c.key, c.lit));
        let mut heads = vec![0u32; (1 << bits) + 1];
        for c in &cands {
            heads[Cands::slot(c.key, bits) + 1] += 1;
        }
        for h in 1..heads.len() {
            heads[h] += heads[h - 1];
        }
        Cands {
            heads: heads.into_boxed_slice(),
            bits,
            cands: cands.into_boxed_slice(),
        }
    }

    /// The candidates in `k`'s slot (some may have another key).
    #[inline(always)]
    fn get(&self, k: u64) -> &[Cand] {
        let h = Cands::slot(k, self.bits);
        &self.cands[self.heads[h] as usize..self.heads[h + 1] as usize]
    }
}

/// A set of lowercase literals, each with an id (its index at build time).
#[derive(Debug, Default)]
pub struct LiteralSet {
    /// Bit per hashed 4-byte anchor; 2^`shift4` bits (see [`bitmap_bits`]).
    bits4: Box<[u64]>,
    shift4: u32,
    /// Bit per hashed 3-byte anchor; 2^`shift3` bits; empty when there are none.
    bits3: Box<[u64]>,
    shift3: u32,
    /// Bit per 2-byte literal, indexed by its two bytes (little-endian); empty when none.
    bits2: Box<[u64]>,
    /// Which values can hold a 2-byte literal (see [`Pairs`]).
    pairs: Pairs,
    /// Literals of one byte (a rare one, such as the backtick of PowerShell obfuscation)
    /// and their ids; looked for three at a time with `memchr3` (one pass per value
    /// holding none, as nearly all do).
    singles: Vec<(u8, u32)>,
    /// Every literal under its anchor.
    table: Cands,
    /// Literal bytes, and each literal's (start, len) in it.
    bytes: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

#[inline]
fn key(anchor: u32, width: usize) -> u64 {
    anchor as u64 | (width as u64) << 32
}

/// Most bitmap bits: 2^18 bits, 32 KiB, an L1 data cache.
const MAX_BITS: u32 = 18;
/// Fewest bitmap bits: 2^12, 512 B.
const MIN_BITS: u32 = 12;

/// log2 of the bitmap size for `anchors` anchors: about 128 bits per anchor, so that <1% of
/// the bits are set and a probe of text seldom passes (hashes spread the anchors); 32 bits
/// per anchor cost 1.3% more instructions on SigmaHQ in false passes to `verify`.
fn bitmap_bits(anchors: usize) -> u32 {
    let want = (anchors.max(1) * 128).next_power_of_two().trailing_zeros();
    want.clamp(MIN_BITS, MAX_BITS)
}

/// The first bytes of a set's 2-byte literals, as a quick test of whether a value can
/// hold one of them at all.
#[derive(Clone, Debug, Default)]
enum Pairs {
    /// No 2-byte literals.
    #[default]
    None,
    /// Every 2-byte literal starts with a non-ASCII byte (when `non_ascii`) or with one
    /// of `ascii` (at most three; unused slots repeat a used one).
    Few {
        non_ascii: bool,
        ascii: Option<[u8; 3]>,
    },
    /// Too many first bytes to look for: every value is probed.
    Many,
}

impl Pairs {
    fn of(lits: &[&[u8]]) -> Pairs {
        let firsts: std::collections::BTreeSet<u8> =
            lits.iter().filter(|l| l.len() == 2).map(|l| l[0]).collect();
        if firsts.is_empty() {
            return Pairs::None;
        }
        let non_ascii = firsts.iter().any(|b| !b.is_ascii());
        let ascii: Vec<u8> = firsts.iter().copied().filter(u8::is_ascii).collect();
        match ascii[..] {
            [] => Pairs::Few {
                non_ascii,
                ascii: None,
            },
            [a] => Pairs::Few {
                non_ascii,
                ascii: Some([a, a, a]),
            },
            [a, b] => Pairs::Few {
                non_ascii,
                ascii: Some([a, b, b]),
            },
            [a, b, c] => Pairs::Few {
                non_ascii,
                ascii: Some([a, b, c]),
            },
            _ => Pairs::Many,
        }
    }

    /// Whether `hay` may hold a 2-byte literal (never false when it does).
    #[inline]
    fn may_hold(&self, hay: &[u8]) -> bool {
        match self {
            Pairs::None => false,
            Pairs::Many => true,
            Pairs::Few { non_ascii, ascii } => {
                (*non_ascii && !hay.is_ascii())
                    || ascii.is_some_and(|[a, b, c]| memchr::memchr3(a, b, c, hay).is_some())
            }
        }
    }
}

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
    match width {
        4 => u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]),
        3 => u32::from_le_bytes([b[i], b[i + 1], b[i + 2], 0]),
        _ => u32::from_le_bytes([b[i], b[i + 1], 0, 0]),
    }
}

impl LiteralSet {
    /// Indexes `lits` (lowercase, each at least [`MIN_LEN`] bytes); ids are their positions.
    pub fn build(lits: &[&[u8]]) -> LiteralSet {
        assert!(
            lits.iter().all(|l| l.len() >= MIN_LEN),
            "literals must be at least {MIN_LEN} bytes"
        );
        let width = |l: &[u8]| l.len().min(4);
        let mut set = LiteralSet::default();
        // How many literals contain each window: pick the rarest window as the anchor.
        let mut freq: HashMap<u64, u32> = HashMap::new();
        for l in lits.iter().filter(|l| l.len() >= 2) {
            let w = width(l);
            let mut seen: Vec<u64> = (0..=l.len() - w).map(|i| key(window(l, i, w), w)).collect();
            seen.sort_unstable();
            seen.dedup();
            for k in seen {
                *freq.entry(k).or_default() += 1;
            }
        }
        let mut table: HashMap<u64, Vec<Cand>> = HashMap::new();
        set.spans.reserve(lits.len());
        for (id, l) in lits.iter().enumerate() {
            set.spans.push((set.bytes.len() as u32, l.len() as u32));
            set.bytes.extend_from_slice(l);
            if let [b] = l[..] {
                set.singles.push((b, id as u32));
                continue;
            }
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
                key: k,
                lit: id as u32,
                offset: offset as u32,
            });
        }
        let count = |width: u64| table.keys().filter(|&&k| k >> 32 == width).count();
        let (n4, n3, n2) = (count(4), count(3), count(2));
        set.shift4 = bitmap_bits(n4);
        set.shift3 = bitmap_bits(n3);
        let mut bits4 = vec![0u64; (1usize << set.shift4) / 64];
        let mut bits3 = vec![
            0u64;
            if n3 > 0 {
                (1usize << set.shift3) / 64
            } else {
                0
            }
        ];
        let mut bits2 = vec![0u64; if n2 > 0 { (1usize << 16) / 64 } else { 0 }];
        for &k in table.keys() {
            let (w, width) = (k as u32, (k >> 32) as usize);
            let (map, s) = match width {
                4 => (&mut bits4, slot(w, set.shift4)),
                3 => (&mut bits3, slot(w, set.shift3)),
                _ => (&mut bits2, w as usize),
            };
            map[s / 64] |= 1 << (s % 64);
        }
        set.bits4 = bits4.into_boxed_slice();
        set.bits3 = bits3.into_boxed_slice();
        set.bits2 = bits2.into_boxed_slice();
        set.pairs = Pairs::of(lits);
        set.table = Cands::build(table.into_values().flatten().collect());
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
        for c in self.table.get(k) {
            if c.key != k {
                continue;
            }
            let Some(start) = i.checked_sub(c.offset as usize) else {
                continue;
            };
            let lit = self.lit(c.lit);
            if hay.len() - start >= lit.len()
                && crate::event::same_bytes(&hay[start..start + lit.len()], lit)
            {
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
        let (s4, s3) = (self.shift4, self.shift3);
        let has3 = !b3.is_empty();
        for (i, w) in hay.windows(4).enumerate() {
            let a = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            if test(b4, slot(a, s4)) {
                self.verify(key(a, 4), i, hay, f);
            }
            if has3 {
                let a3 = a & 0x00FF_FFFF;
                if test(b3, slot(a3, s3)) {
                    self.verify(key(a3, 3), i, hay, f);
                }
            }
        }
        // The last 3-byte window has no 4-byte window around it.
        if has3 && hay.len() >= 3 {
            let i = hay.len() - 3;
            let a3 = window(hay, i, 3);
            if test(b3, slot(a3, s3)) {
                self.verify(key(a3, 3), i, hay, f);
            }
        }
        if self.pairs.may_hold(hay) {
            self.scan_pairs(hay, f);
        }
        for three in self.singles.chunks(3) {
            let b = |j: usize| three[j.min(three.len() - 1)].0;
            for p in memchr::memchr3_iter(b(0), b(1), b(2), hay) {
                for &(x, id) in three {
                    if x == hay[p] {
                        f(id);
                    }
                }
            }
        }
    }

    /// Reports the 2-byte literals in `hay` (the rare path: see [`Pairs`]).
    #[cold]
    #[inline(never)]
    fn scan_pairs(&self, hay: &[u8], f: &mut dyn FnMut(u32)) {
        let b2 = &*self.bits2;
        for (i, w) in hay.windows(2).enumerate() {
            let a = u16::from_le_bytes([w[0], w[1]]) as u32;
            if test(b2, a as usize) {
                self.verify(key(a, 2), i, hay, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The literals a [`LiteralSet`] of `lits` reports in `hay`, sorted, once each.
    fn scanned(lits: &[Vec<u8>], hay: &[u8]) -> Vec<u32> {
        let refs: Vec<&[u8]> = lits.iter().map(|l| l.as_slice()).collect();
        let set = LiteralSet::build(&refs);
        let mut got = Vec::new();
        set.scan(hay, |id| got.push(id));
        got.sort();
        got.dedup();
        got
    }

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
            lits in proptest::collection::vec(proptest::collection::vec(b'a'..b'e', 1..9), 1..40),
            hay in proptest::collection::vec(b'a'..b'e', 0..200),
        ) {
                        prop_assert_eq!(scanned(&lits, &hay), naive(&lits, &hay));
        }
    }

    proptest! {
        /// The same with 1- and 2-byte literals over bytes that take every path of the pair
        /// test (non-ASCII first bytes, a few ASCII ones, and more than three) and more
        /// single bytes than one `memchr3` pass looks for.
        #[test]
        fn agrees_with_naive_search_on_pairs(
            lits in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec![b'a', b'b', b'^', b'|', b'%', 0xD0, 0x90]),
                    1..5,
                ),
                1..12,
            ),
            hay in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'b', b'^', b'|', b'%', 0xD0, 0x90]),
                0..80,
            ),
        ) {
                        prop_assert_eq!(scanned(&lits, &hay), naive(&lits, &hay));
        }
    }

    #[test]
    fn finds_two_byte_literals() {
        let cyr = "\u{430}".as_bytes();
        let set = LiteralSet::build(&[b"^^", cyr, b"whoami"]);
        let mut got = Vec::new();
        set.scan(b"cmd /c who^^ami", |id| got.push(id));
        assert_eq!(got, vec![0]);
        got.clear();
        set.scan("c:\\\u{430}pp\\x.exe".as_bytes(), |id| got.push(id));
        assert_eq!(got, vec![1]);
        got.clear();
        set.scan(b"cmd /c whoami ^ x", |id| got.push(id));
        assert_eq!(got, vec![2]);
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
