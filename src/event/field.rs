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

use hashbrown::{HashMap, HashSet};

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
    map: HashMap<Box<[u8]>, FieldId>,
    prefixes: HashSet<Box<[u8]>>,
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
            map: HashMap::new(),
            prefixes: HashSet::new(),
        };
        for name in WELL_KNOWN {
            t.intern(name);
        }
        t
    }

    /// Returns the id of `name`, interning it if it is new.
    pub fn intern(&mut self, name: &str) -> FieldId {
        if let Some(&id) = self.map.get(name.as_bytes()) {
            return id;
        }
        let id = FieldId(u32::try_from(self.names.len()).expect("fewer than 2^32 field names"));
        self.names.push(name.into());
        self.map.insert(name.as_bytes().into(), id);
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
        self.map.get(name).copied()
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
}
