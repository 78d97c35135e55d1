//! Field names and their interned ids.
//!
//! Every field name a rule, an extractor or the engine itself refers to is interned once, at
//! load time, into a [`FieldTable`]; the hot path then looks fields up by [`FieldId`], a dense
//! `u32`, never by string. Parsers resolve the names they meet in the input (JSON keys, SD
//! params, CEF extension keys) through [`FieldTable::get`]; a name nobody interned is either
//! skipped (the engine: only fields rules need are kept) or kept by name (`kuzet parse`), as
//! [`FieldMode`] says.
//!
//! The table is immutable once built and shared behind an `Arc`; it does not live on the
//! per-event path except for lookups.

use hashbrown::HashSet;

/// Dense id of an interned field name. Index into per-event lookup tables.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FieldId(pub u32);

/// The fields every event may carry, with fixed ids so parsers need no lookup for them.
/// Order matters: the ids are the positions in [`WELL_KNOWN`].
impl FieldId {
    pub const FACILITY: FieldId = FieldId(0);
    pub const SEVERITY: FieldId = FieldId(1);
    pub const TIMESTAMP: FieldId = FieldId(2);
    pub const HOSTNAME: FieldId = FieldId(3);
    pub const APPNAME: FieldId = FieldId(4);
    pub const PROCID: FieldId = FieldId(5);
    pub const MSGID: FieldId = FieldId(6);
    pub const MESSAGE: FieldId = FieldId(7);
    pub const CEF_VERSION: FieldId = FieldId(8);
    pub const CEF_VENDOR: FieldId = FieldId(9);
    pub const CEF_PRODUCT: FieldId = FieldId(10);
    pub const CEF_PRODUCT_VERSION: FieldId = FieldId(11);
    pub const CEF_SIGNATURE_ID: FieldId = FieldId(12);
    pub const CEF_NAME: FieldId = FieldId(13);
    pub const CEF_SEVERITY: FieldId = FieldId(14);
    pub const LEEF_VERSION: FieldId = FieldId(15);
    pub const LEEF_VENDOR: FieldId = FieldId(16);
    pub const LEEF_PRODUCT: FieldId = FieldId(17);
    pub const LEEF_PRODUCT_VERSION: FieldId = FieldId(18);
    pub const LEEF_EVENT_ID: FieldId = FieldId(19);

    /// Marks a slot whose name was not interned (kept by name in [`FieldMode::All`]).
    pub const UNKNOWN: FieldId = FieldId(u32::MAX);

    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Names of the well-known fields, indexed by their [`FieldId`].
pub const WELL_KNOWN: &[&str] = &[
    "facility",
    "severity",
    "timestamp",
    "hostname",
    "appname",
    "procid",
    "msgid",
    "message",
    "cef.version",
    "cef.vendor",
    "cef.product",
    "cef.product_version",
    "cef.signature_id",
    "cef.name",
    "cef.severity",
    "leef.version",
    "leef.vendor",
    "leef.product",
    "leef.product_version",
    "leef.event_id",
];

/// Which input fields a parser keeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum FieldMode {
    /// Keep only interned fields: the engine, where the table holds what rules reference.
    Known,
    /// Keep every field, by name when it is not interned: `kuzet parse`, alert evidence.
    #[default]
    All,
}

/// The interner: field name ↔ [`FieldId`].
///
/// Also remembers every proper dotted prefix of every interned name (`a` and `a.b` for `a.b.c`)
/// so the JSON parser can skip whole subtrees no rule looks into ([`FieldTable::has_prefix`]).
#[derive(Clone, Debug)]
pub struct FieldTable {
    names: Vec<Box<str>>,
    /// Name → id, built while names are interned (load time) and only read on the hot path.
    index: NameIndex,
    prefixes: HashSet<Box<[u8]>>,
}

/// Open-addressing table from name to id, specialised for [`FieldTable::get`]: parsers look
/// up every JSON key and SD param they meet, most of them not interned, and a general
/// `HashMap<Box<[u8]>, _>` spent a quarter of JSON parse time hashing them. Here the hash
/// reads two unaligned words and the table is kept at most a quarter full, so an unknown
/// name usually ends at an empty slot after one probe.
///
/// Each slot also holds those two words and the length ([`NameIndex::key`]), which spell
/// out any name of up to 16 bytes, so a hit on such a name (most field names) is settled by
/// three integer compares, without reading the name itself; only longer names compare
/// their bytes.
///
/// Invariants: `slots.len()` is a power of two and at least 4 × the number of names;
/// a slot's `id` holds `id + 1` (0 = empty) and its `key`/`len` are those of that name;
/// every interned id sits in the probe sequence of its name's hash before any empty slot.
#[derive(Clone, Debug)]
struct NameIndex {
    slots: Vec<Entry>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    key: (u64, u64),
    len: u32,
    /// `FieldId + 1`; 0 marks an empty slot.
    id: u32,
}

impl NameIndex {
    /// A name's length-dependent words: for up to 16 bytes, together with the length, they
    /// determine the name (every byte is in at least one of them).
    #[inline]
    fn key(name: &[u8]) -> (u64, u64) {
        let n = name.len();
        if n >= 8 {
            let first: [u8; 8] = name[..8].try_into().expect("8 bytes");
            let last: [u8; 8] = name[n - 8..].try_into().expect("8 bytes");
            (u64::from_le_bytes(first), u64::from_le_bytes(last))
        } else if n >= 4 {
            // Two overlapping loads, not a copy into a stack word: reading back a fresh
            // copy stalls on store forwarding, and most JSON keys are this short.
            let lo: [u8; 4] = name[..4].try_into().expect("4 bytes");
            let hi: [u8; 4] = name[n - 4..].try_into().expect("4 bytes");
            (
                u64::from(u32::from_le_bytes(lo)) | u64::from(u32::from_le_bytes(hi)) << 32,
                0,
            )
        } else if n > 0 {
            let w = u64::from(name[0]) | u64::from(name[n / 2]) << 8 | u64::from(name[n - 1]) << 16;
            (w, 0)
        } else {
            (0, 0)
        }
    }

    /// Hash of a name from its key and length.
    #[inline]
    fn hash((a, b): (u64, u64), n: usize) -> usize {
        let h = (a ^ b.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h ^ (h >> 29)) as usize
    }

    // Always inlined: the parsers call it once per key they meet, and as a call it cost
    // ~10% of its own instructions in the JSON bench.
    #[inline(always)]
    fn get(&self, names: &[Box<str>], name: &[u8]) -> Option<FieldId> {
        let key = Self::key(name);
        let n = name.len();
        let mask = self.slots.len() - 1;
        let mut i = Self::hash(key, n) & mask;
        loop {
            let e = self.slots[i];
            if e.id == 0 {
                return None;
            }
            if e.key == key
                && e.len as usize == n
                && (n <= 16 || names[e.id as usize - 1].as_bytes() == name)
            {
                return Some(FieldId(e.id - 1));
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `id`, whose name is `names[id]`; grows (rebuilding) to keep the load ≤ 1/4.
    fn insert(&mut self, names: &[Box<str>], id: FieldId) {
        if names.len() * 4 > self.slots.len() {
            self.slots = vec![Entry::default(); (names.len() * 4).next_power_of_two()];
            for i in 0..names.len() as u32 {
                if i != id.0 {
                    self.place(names, i);
                }
            }
        }
        self.place(names, id.0);
    }

    fn place(&mut self, names: &[Box<str>], id: u32) {
        let name = names[id as usize].as_bytes();
        let key = Self::key(name);
        let mask = self.slots.len() - 1;
        let mut i = Self::hash(key, name.len()) & mask;
        while self.slots[i].id != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = Entry {
            key,
            len: u32::try_from(name.len()).expect("field names are shorter than 4 GiB"),
            id: id + 1,
        };
    }
}

impl Default for FieldTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FieldTable {
    /// A table holding the well-known fields.
    pub fn new() -> FieldTable {
        let mut t = FieldTable {
            names: Vec::new(),
            index: NameIndex {
                slots: vec![Entry::default(); 128],
            },
            prefixes: HashSet::new(),
        };
        for name in WELL_KNOWN {
            t.intern(name);
        }
        t
    }

    /// Returns the id of `name`, interning it if it is new.
    pub fn intern(&mut self, name: &str) -> FieldId {
        if let Some(id) = self.get(name.as_bytes()) {
            return id;
        }
        let id = FieldId(u32::try_from(self.names.len()).expect("fewer than 2^32 field names"));
        self.names.push(name.into());
        self.index.insert(&self.names, id);
        let bytes = name.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'.' && i > 0 {
                self.prefixes.insert(bytes[..i].into());
            }
        }
        id
    }

    /// The id of `name`, if interned.
    #[inline]
    pub fn get(&self, name: &[u8]) -> Option<FieldId> {
        self.index.get(&self.names, name)
    }

    /// True when some interned name starts with `prefix` followed by a `.`.
    #[inline]
    pub fn has_prefix(&self, prefix: &[u8]) -> bool {
        self.prefixes.contains(prefix)
    }

    /// The name of an interned id.
    ///
    /// # Panics
    /// When `id` was not produced by this table.
    pub fn name(&self, id: FieldId) -> &str {
        &self.names[id.index()]
    }

    /// Number of interned names; per-event lookup tables have this many entries.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Never true: the well-known fields are always present.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every interned id with its name, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (FieldId, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (FieldId(i as u32), &**n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ids_match_their_names() {
        let t = FieldTable::new();
        assert_eq!(t.get(b"message"), Some(FieldId::MESSAGE));
        assert_eq!(t.get(b"cef.severity"), Some(FieldId::CEF_SEVERITY));
        assert_eq!(t.get(b"leef.event_id"), Some(FieldId::LEEF_EVENT_ID));
        assert_eq!(t.name(FieldId::APPNAME), "appname");
    }

    #[test]
    fn intern_is_idempotent_and_records_prefixes() {
        let mut t = FieldTable::new();
        let a = t.intern("Event.System.EventID");
        assert_eq!(t.intern("Event.System.EventID"), a);
        assert!(t.has_prefix(b"Event"));
        assert!(t.has_prefix(b"Event.System"));
        assert!(!t.has_prefix(b"Event.System.EventID"));
        assert!(!t.has_prefix(b"Even"));
    }

    #[test]
    fn index_tells_apart_names_that_differ_in_one_byte() {
        // The slot key stands for the whole name up to 16 bytes: every byte must count.
        let mut t = FieldTable::new();
        for n in 0..=20 {
            t.intern(&"a".repeat(n));
        }
        for n in 1..=20 {
            for at in 0..n {
                let mut probe = vec![b'a'; n];
                probe[at] = b'b';
                assert_eq!(t.get(&probe), None, "{:?}", String::from_utf8_lossy(&probe));
            }
            assert!(t.get("a".repeat(n).as_bytes()).is_some());
        }
    }

    #[test]
    fn index_finds_every_interned_name_across_growth() {
        let mut t = FieldTable::new();
        let names: Vec<String> = (0..2000)
            .map(|i| format!("f{i}.x{}", "y".repeat(i % 70)))
            .collect();
        for n in &names {
            t.intern(n);
        }
        t.intern("");
        t.intern("a");
        for n in names.iter().map(String::as_str).chain(["", "a"]) {
            assert!(
                t.get(n.as_bytes()).is_some(),
                "{n:?} hidden by the prefilter"
            );
        }
        assert_eq!(t.get(b"never interned"), None);
    }
}
