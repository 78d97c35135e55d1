//! The asset inventory: the monitored objects (hosts and networks) with their owner,
//! location, responsible person and object class, loaded from CSV (with a header) or TOML
//! files and matched against the addresses and host names alerts carry.
//!
//! Matching, most specific first: an exact IP address, then the CIDR with the longest
//! prefix that contains the address, then the host name (case-insensitive; a fully
//! qualified name also matches an asset listed by its first label, `web01.corp.local` →
//! `web01`). A value that is neither an address nor a known name matches nothing.
//!
//! Loading never stops at a bad row: each one becomes an [`AssetError`] with `file:line`
//! and the other rows load (the daemon logs and counts them). Which alert fields are looked
//! at, and the incidents built from the match, live in `enrich.rs` and `mod.rs`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hashbrown::HashMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One monitored object, as the inventory describes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Asset {
    /// Inventory id (optional; defaults to the host name or address).
    pub id: String,
    /// Network name.
    pub hostname: String,
    /// An address (`10.0.0.5`) or a network (`10.0.0.0/24`).
    pub ip: String,
    pub organisation: String,
    /// The structural unit.
    pub department: String,
    pub floor: String,
    pub room: String,
    /// The responsible person.
    pub responsible: String,
    /// How to reach them (phone, e-mail).
    pub contact: String,
    pub os: String,
    /// Network contour: `internal` or `external`.
    pub contour: String,
    /// Object class: `state_body`, `egov`, `critical_infrastructure` or a custom name; it
    /// picks the deadline regime and routes alerts to sinks.
    pub class: String,
}

/// The CSV header names, in the order the example inventory uses.
pub const COLUMNS: &[&str] = &[
    "id",
    "hostname",
    "ip",
    "organisation",
    "department",
    "floor",
    "room",
    "responsible",
    "contact",
    "os",
    "contour",
    "class",
];

/// A row (or file) that did not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", path.display())]
pub struct AssetError {
    pub path: PathBuf,
    /// 1-based; 0 when the whole file failed.
    pub line: usize,
    pub reason: String,
}

/// Where an asset's address matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Exact(IpAddr),
    Cidr(IpNet),
}

/// A compiled inventory, immutable once built (swapped whole on reload).
#[derive(Debug, Default)]
pub struct Inventory {
    assets: Vec<Arc<Asset>>,
    exact: HashMap<IpAddr, u32>,
    /// Sorted by prefix length, longest first: the first containing network wins.
    cidrs: Vec<(IpNet, u32)>,
    /// Lower-case host name → asset.
    names: HashMap<String, u32>,
}

impl Inventory {
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    pub fn assets(&self) -> &[Arc<Asset>] {
        &self.assets
    }

    /// Loads every file; bad rows are returned as errors and skipped, the rest load. A file
    /// that cannot be read at all is an error with line 0.
    pub fn load(paths: &[PathBuf]) -> (Inventory, Vec<AssetError>) {
        let mut b = Builder::default();
        let mut errs = Vec::new();
        for p in paths {
            let text = match std::fs::read_to_string(p) {
                Ok(t) => t,
                Err(e) => {
                    errs.push(AssetError {
                        path: p.clone(),
                        line: 0,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if p.extension().is_some_and(|e| e == "toml") {
                b.toml(p, &text, &mut errs);
            } else {
                b.csv(p, &text, &mut errs);
            }
        }
        (b.finish(), errs)
    }

    /// Builds from assets already in memory (tests, the API).
    pub fn from_assets(list: Vec<Asset>) -> Result<Inventory, AssetError> {
        let mut b = Builder::default();
        for (i, a) in list.into_iter().enumerate() {
            b.add(a).map_err(|reason| AssetError {
                path: PathBuf::from("<memory>"),
                line: i + 1,
                reason,
            })?;
        }
        Ok(b.finish())
    }

    /// The asset an address or host name belongs to, most specific first.
    pub fn lookup(&self, value: &str) -> Option<&Arc<Asset>> {
        let v = value.trim();
        if v.is_empty() || v == "-" {
            return None;
        }
        if let Some(ip) = parse_ip(v) {
            if let Some(&i) = self.exact.get(&ip) {
                return Some(&self.assets[i as usize]);
            }
            return self
                .cidrs
                .iter()
                .find(|(n, _)| n.contains(&ip))
                .map(|(_, i)| &self.assets[*i as usize]);
        }
        let lower = v.to_ascii_lowercase();
        let i = self.names.get(&lower).or_else(|| {
            let short = lower.split('.').next()?;
            (short.len() < lower.len())
                .then(|| self.names.get(short))
                .flatten()
        })?;
        Some(&self.assets[*i as usize])
    }
}

/// An address as alerts write it: plain, `[v6]`, or v4-mapped v6 (`::ffff:a.b.c.d`, as
/// Windows writes it).
fn parse_ip(v: &str) -> Option<IpAddr> {
    let v = v.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = v.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    })
}

#[derive(Default)]
struct Builder {
    inv: Inventory,
}

impl Builder {
    fn add(&mut self, mut a: Asset) -> Result<(), String> {
        a.hostname = a.hostname.trim().to_string();
        a.ip = a.ip.trim().to_string();
        a.class = a.class.trim().to_string();
        if a.ip.is_empty() && a.hostname.is_empty() {
            return Err("an asset needs an ip (address or CIDR) or a hostname".into());
        }
        if !a.contour.is_empty() && !matches!(a.contour.as_str(), "internal" | "external") {
            return Err(format!(
                "contour {:?}: internal or external (or empty)",
                a.contour
            ));
        }
        let net = if a.ip.is_empty() {
            None
        } else if a.ip.contains('/') {
            let n: IpNet =
                a.ip.parse()
                    .map_err(|_| format!("ip {:?} is not an address or a CIDR network", a.ip))?;
            Some(Net::Cidr(n.trunc()))
        } else {
            Some(Net::Exact(parse_ip(&a.ip).ok_or_else(|| {
                format!("ip {:?} is not an address or a CIDR network", a.ip)
            })?))
        };
        if a.id.is_empty() {
            a.id = if a.hostname.is_empty() {
                a.ip.clone()
            } else {
                a.hostname.clone()
            };
        }
        let idx = self.inv.assets.len() as u32;
        // A later row for the same address or name replaces the earlier one's match; both
        // stay listed.
        match net {
            Some(Net::Exact(ip)) => {
                self.inv.exact.insert(ip, idx);
            }
            Some(Net::Cidr(n)) => self.inv.cidrs.push((n, idx)),
            None => {}
        }
        if !a.hostname.is_empty() {
            self.inv.names.insert(a.hostname.to_ascii_lowercase(), idx);
        }
        self.inv.assets.push(Arc::new(a));
        Ok(())
    }

    fn csv(&mut self, path: &Path, text: &str, errs: &mut Vec<AssetError>) {
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let err = |line: usize, reason: String| AssetError {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let headers = match rd.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                errs.push(err(1, format!("header: {e}")));
                return;
            }
        };
        let mut cols = Vec::new();
        for h in headers.iter() {
            match COLUMNS.iter().position(|c| c.eq_ignore_ascii_case(h)) {
                Some(i) => cols.push(i),
                None => {
                    errs.push(err(
                        1,
                        format!("unknown column {h:?} (columns: {})", COLUMNS.join(", ")),
                    ));
                    return;
                }
            }
        }
        for rec in rd.records() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                    errs.push(err(line, e.to_string()));
                    continue;
                }
            };
            let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
            if rec.len() != cols.len() {
                errs.push(err(
                    line,
                    format!(
                        "{} fields, the header has {}: {:?}",
                        rec.len(),
                        cols.len(),
                        rec.iter().collect::<Vec<_>>().join(",")
                    ),
                ));
                continue;
            }
            let mut a = Asset::default();
            for (v, &c) in rec.iter().zip(&cols) {
                let v = v.to_string();
                match COLUMNS[c] {
                    "id" => a.id = v,
                    "hostname" => a.hostname = v,
                    "ip" => a.ip = v,
                    "organisation" => a.organisation = v,
                    "department" => a.department = v,
                    "floor" => a.floor = v,
                    "room" => a.room = v,
                    "responsible" => a.responsible = v,
                    "contact" => a.contact = v,
                    "os" => a.os = v,
                    "contour" => a.contour = v,
                    _ => a.class = v,
                }
            }
            if let Err(reason) = self.add(a) {
                errs.push(err(line, reason));
            }
        }
    }

    fn toml(&mut self, path: &Path, text: &str, errs: &mut Vec<AssetError>) {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            asset: Vec<toml::Spanned<toml::Value>>,
        }
        let line_at = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
        let file: File = match toml::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                errs.push(AssetError {
                    path: path.to_path_buf(),
                    line: e.span().map(|s| line_at(s.start)).unwrap_or(0),
                    reason: e.message().trim().to_string(),
                });
                return;
            }
        };
        for sp in file.asset {
            let line = line_at(sp.span().start);
            let res = sp
                .into_inner()
                .try_into::<Asset>()
                .map_err(|e| e.message().trim().to_string())
                .and_then(|a| self.add(a));
            if let Err(reason) = res {
                errs.push(AssetError {
                    path: path.to_path_buf(),
                    line,
                    reason,
                });
            }
        }
    }

    fn finish(mut self) -> Inventory {
        // Longest prefix first; a stable sort keeps file order among equal prefixes, and
        // the later row wins like for exact addresses.
        self.inv.cidrs.reverse();
        self.inv
            .cidrs
            .sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        self.inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const CSV: &str = "id,hostname,ip,organisation,department,floor,room,responsible,contact,os,contour,class
hq-net,,10.0.0.0/8,Ministry,IT,,,Duty officer,+7 700 000 0000,,internal,state_body
dc-net,,10.1.0.0/16,Ministry,Data centre,1,101,A. Seitkali,a.seitkali@example.kz,,internal,state_body
egov-dmz,,10.1.2.0/24,E-Gov operator,DMZ,2,204,B. Nurlanov,\"Nurlanov, B. <b@example.kz>\",,external,egov
web01,web01,10.1.2.10,E-Gov operator,Portal,2,204,C. Akhmetova,+7 701 111 2233,Debian 12,external,egov
";

    #[test]
    fn overlapping_cidrs_the_most_specific_wins() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", CSV);
        let (inv, errs) = Inventory::load(&[p]);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(inv.len(), 4);
        let id = |v: &str| inv.lookup(v).map(|a| a.id.clone());
        // Exact address beats every network containing it.
        assert_eq!(id("10.1.2.10").as_deref(), Some("web01"));
        // /24 beats /16 beats /8.
        assert_eq!(id("10.1.2.11").as_deref(), Some("egov-dmz"));
        assert_eq!(id("10.1.9.9").as_deref(), Some("dc-net"));
        assert_eq!(id("10.200.0.1").as_deref(), Some("hq-net"));
        assert_eq!(id("192.0.2.1"), None);
        // Windows' v4-mapped form, host names in any case, FQDN → short name.
        assert_eq!(id("::ffff:10.1.2.10").as_deref(), Some("web01"));
        assert_eq!(id("WEB01").as_deref(), Some("web01"));
        assert_eq!(id("web01.corp.local").as_deref(), Some("web01"));
        assert_eq!(id("-"), None);
        // A quoted field with a comma in it.
        assert_eq!(
            inv.lookup("10.1.2.99").unwrap().contact,
            "Nurlanov, B. <b@example.kz>"
        );
        // Order of rows does not change which network wins.
        let mut lines: Vec<&str> = CSV.lines().collect();
        lines[1..].reverse();
        let p = write(dir.path(), "b.csv", &lines.join("\n"));
        let (inv, _) = Inventory::load(&[p]);
        assert_eq!(inv.lookup("10.1.2.11").unwrap().id, "egov-dmz");
        assert_eq!(inv.lookup("10.1.9.9").unwrap().id, "dc-net");
    }

    #[test]
    fn a_bad_row_is_reported_with_file_and_line_and_the_good_rows_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "bad.csv",
            "hostname,ip,class\nweb01,10.0.0.1,egov\nweb02,10.0.0.300,egov\nweb03,10.0.0.3\n,,egov\nweb04,10.0.0.4,state_body\n",
        );
        let (inv, errs) = Inventory::load(std::slice::from_ref(&p));
        assert_eq!(inv.len(), 2, "{errs:?}");
        assert_eq!(inv.lookup("10.0.0.4").unwrap().class, "state_body");
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let at = |n: usize| format!("{}:{n}: ", p.display());
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].starts_with(&at(3)) && msgs[0].contains("10.0.0.300"));
        assert!(msgs[1].starts_with(&at(4)) && msgs[1].contains("2 fields"));
        assert!(msgs[2].starts_with(&at(5)) && msgs[2].contains("needs an ip"));
        // An unknown column stops that file with line 1.
        let q = write(dir.path(), "cols.csv", "hostname,adress\nweb01,10.0.0.1\n");
        let (_, errs) = Inventory::load(&[q]);
        assert_eq!(errs[0].line, 1);
        assert!(errs[0].reason.contains("adress"), "{errs:?}");
    }

    #[test]
    fn toml_inventories_load_and_report_bad_assets_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.toml",
            "[[asset]]\nhostname = \"dc01\"\nip = \"192.168.10.5\"\nclass = \"critical_infrastructure\"\nresponsible = \"D. Omarov\"\n\n[[asset]]\nhostname = \"x\"\ncontour = \"dmz\"\n",
        );
        let (inv, errs) = Inventory::load(std::slice::from_ref(&p));
        assert_eq!(inv.len(), 1);
        assert_eq!(inv.lookup("dc01").unwrap().class, "critical_infrastructure");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 7, "{errs:?}");
        assert!(errs[0].reason.contains("contour"));
    }

    #[test]
    fn the_shipped_example_inventory_loads_clean() {
        let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets.example.csv"));
        let (inv, errs) = Inventory::load(&[p]);
        assert!(errs.is_empty(), "{errs:?}");
        assert!(inv.len() >= 4);
        for class in ["state_body", "egov", "critical_infrastructure"] {
            assert!(inv.assets().iter().any(|a| a.class == class), "{class}");
        }
    }
}
