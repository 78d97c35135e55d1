//! `kuzet gen`'s traffic model: a seeded, time-ordered stream of realistic log lines from the
//! sources the shipped rule pack covers (RFC 3164 and RFC 5424 syslog from sshd, cron, sudo,
//! netfilter, nginx, postfix, systemd; Windows Security events as NXLog-style JSON; CEF from a
//! gateway), with attacks injected at known times, and the **ground truth**: the alerts a
//! correct engine must raise on exactly this stream.
//!
//! How the ground truth stays exact (issue 8):
//!
//! * Every threshold and window comes from the loaded rule pack ([`Thresholds::from_engine`]),
//!   never from constants here: change a rule, and both the attacks and the guards follow.
//! * **Background traffic cannot fire a correlation.** Events that feed a counting rule
//!   (failed logins, firewall denies, 404s) are rationed per key with a `Guard`: at most
//!   `(threshold − 1) / 2` per key per bucket, a bucket being as long as the longest window
//!   involved, so any window (which spans at most two buckets) holds fewer than the
//!   threshold. A background event over its ration is replaced by a benign one. Background
//!   events never match an alerting single-event rule.
//! * **Attacks use keys of their own** (source addresses in 100.64.0.0/10, account names that
//!   background never uses), so nothing else adds to their windows, and each attack is shaped
//!   to cross exactly its target rule's threshold and no other (a spray stays under the
//!   brute-force count per 10 minutes; a port scan stays under the deny-burst rate).
//! * The expected alerts are computed from what was actually written: an attack cut short by
//!   the end of the stream is expected only if the part written still crosses the threshold.
//!
//! What does not live here: writing to sockets and files (`cli/gen.rs`), checking an engine's
//! alerts against the truth ([`super::truth`]).

use std::collections::VecDeque;
use std::fmt::Write as _;

use hashbrown::HashMap;

use super::Rng;
use super::truth::Expected;
use crate::engine::Engine;
use crate::event::Timestamp;
use crate::sigma::correlation::CmpOp;

/// Which line formats the stream may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    pub rfc3164: bool,
    pub rfc5424: bool,
    pub json: bool,
    pub cef: bool,
}

impl Formats {
    pub const NAMES: [&'static str; 4] = ["rfc3164", "rfc5424", "json", "cef"];

    pub fn all() -> Formats {
        Formats {
            rfc3164: true,
            rfc5424: true,
            json: true,
            cef: true,
        }
    }

    /// `rfc3164,json`, ... (names from [`Formats::NAMES`]).
    pub fn parse(list: &[String]) -> Result<Formats, String> {
        let mut f = Formats {
            rfc3164: false,
            rfc5424: false,
            json: false,
            cef: false,
        };
        for n in list {
            match n.as_str() {
                "rfc3164" => f.rfc3164 = true,
                "rfc5424" => f.rfc5424 = true,
                "json" => f.json = true,
                "cef" => f.cef = true,
                o => {
                    return Err(format!(
                        "unknown format {o:?} (one of {:?})",
                        Formats::NAMES
                    ));
                }
            }
        }
        if !f.rfc3164 && !f.rfc5424 {
            // Attacks are syslog (sshd, netfilter, shadow-utils): one syslog format is needed.
            return Err("the formats need rfc3164 or rfc5424 (the attacks are syslog)".into());
        }
        Ok(f)
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    /// Lines in the stream (background and attacks together).
    pub count: u64,
    /// Event-time rate: line `i` is stamped `start + i / rate`.
    pub rate: f64,
    /// Event time of the first line, in milliseconds since the epoch.
    pub start_ms: i64,
    /// Distinct sending hosts.
    pub hosts: u64,
    /// Distinct source addresses of the background traffic (at most 2^24: 10.0.0.0/8).
    pub addrs: u64,
    /// Distinct user names of the background traffic.
    pub users: u64,
    pub formats: Formats,
    /// Attacks of each kind (spread evenly over the stream's duration).
    pub attacks: u64,
    /// Which part of the key space this stream uses, for streams sent side by side (`kuzet
    /// bench` connections): part p takes addresses from `p × addrs`, users from `p × users`,
    /// attackers from `p × 65,536`, so the rations of one stream never add up with another's.
    pub part: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seed: 1,
            count: 100_000,
            rate: 10_000.0,
            // 2026-11-24T00:00:00Z: fixed, so the same seed gives the same bytes.
            start_ms: 1_795_478_400_000,
            hosts: 200,
            addrs: 10_000,
            users: 1_000,
            formats: Formats::all(),
            attacks: 5,
            part: 0,
        }
    }
}

/// One rule's threshold, as loaded.
#[derive(Clone, Debug)]
pub struct Threshold {
    pub id: String,
    pub name: String,
    /// The `gte` bound (1 for temporal correlations and detections).
    pub gte: u64,
    /// The window in milliseconds (0 for detections).
    pub window_ms: i64,
}

/// The thresholds the generator shapes attacks and rations background traffic by, read from
/// the compiled rule pack.
#[derive(Clone, Debug)]
pub struct Thresholds {
    pub ssh_bruteforce: Threshold,
    pub login_burst: Threshold,
    pub spray: Threshold,
    pub distributed: Threshold,
    pub vertical_scan: Threshold,
    pub horizontal_scan: Threshold,
    pub deny_burst: Threshold,
    pub web_discovery: Threshold,
    pub win_bruteforce_source: Threshold,
    pub win_bruteforce_account: Threshold,
    pub win_spray: Threshold,
    pub new_admin: Threshold,
    /// The single-event rule that also alerts on the group change of a new admin.
    pub privileged_group: Threshold,
}

impl Thresholds {
    /// Looks every rule up by its Sigma `name`; fails naming the first one missing (a pack
    /// without them cannot be given a ground truth by this generator).
    pub fn from_engine(eng: &Engine) -> Result<Thresholds, String> {
        let corr = |name: &str| -> Result<Threshold, String> {
            let c = eng
                .correlations
                .list
                .iter()
                .find(|c| c.meta.name.as_deref() == Some(name))
                .ok_or_else(|| format!("the rule pack has no correlation named {name}"))?;
            let gte = c
                .spec
                .cmps
                .iter()
                .find(|(op, _)| *op == CmpOp::Gte)
                .map(|(_, n)| n.ceil() as u64)
                .unwrap_or(1);
            Ok(Threshold {
                id: c.meta.label(),
                name: name.to_string(),
                gte,
                window_ms: c.spec.timespan,
            })
        };
        let rule = |name: &str| -> Result<Threshold, String> {
            let r = eng
                .prepared
                .iter()
                .find(|r| r.meta.name.as_deref() == Some(name))
                .ok_or_else(|| format!("the rule pack has no rule named {name}"))?;
            Ok(Threshold {
                id: r.meta.label(),
                name: name.to_string(),
                gte: 1,
                window_ms: 0,
            })
        };
        Ok(Thresholds {
            ssh_bruteforce: corr("kuzet_sshd_bruteforce_source")?,
            login_burst: corr("kuzet_linux_login_failure_burst")?,
            spray: corr("kuzet_linux_password_spraying")?,
            distributed: corr("kuzet_linux_distributed_login_failures")?,
            vertical_scan: corr("kuzet_firewall_vertical_port_scan")?,
            horizontal_scan: corr("kuzet_firewall_horizontal_port_scan")?,
            deny_burst: corr("kuzet_firewall_deny_burst")?,
            web_discovery: corr("kuzet_web_content_discovery")?,
            win_bruteforce_source: corr("kuzet_windows_bruteforce_source")?,
            win_bruteforce_account: corr("kuzet_windows_bruteforce_account")?,
            win_spray: corr("kuzet_windows_password_spray")?,
            new_admin: corr("kuzet_linux_new_user_privileged")?,
            privileged_group: rule("kuzet_linux_user_added_to_privileged_group")?,
        })
    }
}

/// Rations of background events per key, per bucket (see the module doc).
#[derive(Debug)]
struct Guard {
    /// Bucket length in ms: the longest window of the rules guarded.
    bucket_ms: i64,
    bucket: i64,
    /// (ration kind, key) → events given this bucket.
    used: HashMap<(u8, u64), u32>,
    /// Per ration kind: most events per key per bucket.
    budget: [u32; RATIONS],
}

const SSH_SRC: u8 = 0;
const SSH_USER: u8 = 1;
const WIN_SRC: u8 = 2;
const WIN_USER: u8 = 3;
const FW_SRC: u8 = 4;
const WEB_SRC: u8 = 5;
const RATIONS: usize = 6;

impl Guard {
    fn new(th: &Thresholds) -> Guard {
        let all = [
            &th.ssh_bruteforce,
            &th.login_burst,
            &th.spray,
            &th.distributed,
            &th.vertical_scan,
            &th.horizontal_scan,
            &th.deny_burst,
            &th.web_discovery,
            &th.win_bruteforce_source,
            &th.win_bruteforce_account,
            &th.win_spray,
        ];
        let bucket_ms = all.iter().map(|t| t.window_ms).max().unwrap_or(1).max(1);
        // Fewer than the threshold in any window spanning two buckets. Counting events
        // also bounds the distinct values (users, ports, addresses) the value_count rules see.
        let half = |ts: &[&Threshold]| {
            let m = ts.iter().map(|t| t.gte).min().unwrap_or(1);
            (m.saturating_sub(1) / 2) as u32
        };
        Guard {
            bucket_ms,
            bucket: i64::MIN,
            used: HashMap::new(),
            budget: [
                half(&[&th.ssh_bruteforce, &th.login_burst, &th.spray]),
                half(&[&th.distributed]),
                half(&[&th.win_bruteforce_source, &th.win_spray]),
                half(&[&th.win_bruteforce_account]),
                half(&[&th.deny_burst, &th.vertical_scan, &th.horizontal_scan]),
                half(&[&th.web_discovery]),
            ],
        }
    }

    /// Takes one from each ration named, or none if any is used up.
    fn take(&mut self, t_ms: i64, keys: &[(u8, u64)]) -> bool {
        let b = t_ms.div_euclid(self.bucket_ms);
        if b != self.bucket {
            self.bucket = b;
            self.used.clear();
        }
        let ok = keys
            .iter()
            .all(|k| self.used.get(k).copied().unwrap_or(0) < self.budget[k.0 as usize]);
        if ok {
            for k in keys {
                *self.used.entry(*k).or_insert(0) += 1;
            }
        }
        ok
    }
}

/// The kinds of attack injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackKind {
    SshBruteForce,
    PasswordSpray,
    VerticalScan,
    HorizontalScan,
    NewAdmin,
}

impl AttackKind {
    pub const ALL: [AttackKind; 5] = [
        AttackKind::SshBruteForce,
        AttackKind::PasswordSpray,
        AttackKind::VerticalScan,
        AttackKind::HorizontalScan,
        AttackKind::NewAdmin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::SshBruteForce => "ssh_bruteforce",
            AttackKind::PasswordSpray => "password_spray",
            AttackKind::VerticalScan => "vertical_port_scan",
            AttackKind::HorizontalScan => "horizontal_port_scan",
            AttackKind::NewAdmin => "account_created_then_privileged",
        }
    }
}

/// One attack line, before it is written.
#[derive(Clone, Debug)]
enum Step {
    SshFail { src: u64, user: String },
    FwDrop { src: u64, dst: u32, dport: u16 },
    UserAdd { user: String, uid: u32 },
    GroupAdd { user: String, gid: u32 },
    AddToGroup { user: String, group: &'static str },
}

#[derive(Debug)]
struct Attack {
    kind: AttackKind,
    /// Attacker address index (in 100.64.0.0/10), or the account for NewAdmin.
    src: u64,
    host: u64,
    target: u32,
    port: u16,
    user: String,
    /// Event times (ms) of the lines written, in order.
    written: Vec<i64>,
    /// Distinct values written (users, ports or addresses) for the value_count kinds; for
    /// NewAdmin, 1 once the account line and 2 once the group line is written.
    values: Vec<u64>,
    rfc5424: bool,
}

/// The stream: call [`Scenario::next_line`] until it returns false, then [`Scenario::truth`].
#[derive(Debug)]
pub struct Scenario {
    p: Params,
    th: Thresholds,
    r: Rng,
    guard: Guard,
    /// Next line's index.
    i: u64,
    attacks: Vec<Attack>,
    /// (time ms, attack index, step), in time order.
    pending: VecDeque<(i64, usize, Step)>,
    counts: Counts,
    scratch: String,
}

/// What was written, by kind (reported by `kuzet gen`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counts {
    pub lines: u64,
    pub bytes: u64,
    pub attack_lines: u64,
    pub rfc3164: u64,
    pub rfc5424: u64,
    pub json: u64,
    pub cef: u64,
    /// Background events replaced by a benign one because their key's ration was used up.
    pub rationed: u64,
}

const NAMES: &[&str] = &[
    "anna", "boris", "chen", "dana", "erik", "fatima", "george", "hana", "ivan", "julia", "kemal",
    "lena", "marat", "nina", "oleg", "priya", "quinn", "rustam", "sara", "timur", "uma", "victor",
    "wei", "ximena", "yusuf", "zarina", "deploy", "backup", "jenkins", "ansible", "postgres",
    "www-data",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Groups that make an account privileged in the shipped rule (the attack uses the first
/// two alternately).
const ADMIN_GROUPS: [&str; 2] = ["sudo", "wheel"];

fn user_name(n: u64, out: &mut String) {
    out.push_str(NAMES[(n % NAMES.len() as u64) as usize]);
    if n >= NAMES.len() as u64 {
        let _ = write!(out, "{}", n / NAMES.len() as u64);
    }
}

/// Background addresses: 10.0.0.0/8.
fn bg_ip(k: u64, out: &mut String) {
    let _ = write!(out, "10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255);
}

/// Attacker addresses: 100.64.0.0/10 (shared address space, never in the background).
pub fn attacker_ip(k: u64) -> String {
    format!(
        "100.{}.{}.{}",
        64 + ((k >> 16) & 63),
        (k >> 8) & 255,
        k & 255
    )
}

/// Scan targets: 172.16.0.0/12.
fn target_ip(k: u32) -> String {
    format!(
        "172.{}.{}.{}",
        16 + ((k >> 16) & 15),
        (k >> 8) & 255,
        k & 255
    )
}

/// (year, month 1–12, day, hour, minute, second, millisecond) of a UTC time in ms.
fn civil(t_ms: i64) -> (i64, usize, u32, i64, i64, i64, i64) {
    let secs = t_ms.div_euclid(1000);
    let (y, m, d) = crate::event::time::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    (y, m as usize, d, hh, mm, ss, t_ms.rem_euclid(1000))
}

/// `Nov 24 00:00:01` (RFC 3164 §4.1.2: day space-padded).
fn stamp3164(t_ms: i64, out: &mut String) {
    let (_, m, d, hh, mm, ss, _) = civil(t_ms);
    let _ = write!(out, "{} {d:>2} {hh:02}:{mm:02}:{ss:02}", MONTHS[m - 1]);
}

/// RFC 3339 UTC with milliseconds.
fn stamp3339(t_ms: i64, out: &mut String) {
    let (y, m, d, hh, mm, ss, ms) = civil(t_ms);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z");
}

/// Common Log Format time, as nginx writes it: `24/Nov/2026:00:00:01 +0000`.
fn stamp_clf(t_ms: i64, out: &mut String) {
    let (y, m, d, hh, mm, ss, _) = civil(t_ms);
    let _ = write!(
        out,
        "{d:02}/{}/{y:04}:{hh:02}:{mm:02}:{ss:02} +0000",
        MONTHS[m - 1]
    );
}

/// A syslog header up to and including the `: ` (3164) or the SD `- ` (5424).
fn header(
    out: &mut String,
    rfc5424: bool,
    pri: u8,
    t_ms: i64,
    host: &str,
    app: &str,
    pid: Option<u64>,
) {
    let _ = write!(out, "<{pri}>");
    if rfc5424 {
        out.push_str("1 ");
        stamp3339(t_ms, out);
        let _ = write!(out, " {host} {app} ");
        match pid {
            Some(p) => {
                let _ = write!(out, "{p}");
            }
            None => out.push('-'),
        }
        out.push_str(" - - ");
    } else {
        stamp3164(t_ms, out);
        let _ = write!(out, " {host} {app}");
        if let Some(p) = pid {
            let _ = write!(out, "[{p}]");
        }
        out.push_str(": ");
    }
}

impl Scenario {
    pub fn new(p: Params, th: Thresholds) -> Scenario {
        let guard = Guard::new(&th);
        let mut s = Scenario {
            r: Rng::new(p.seed),
            guard,
            i: 0,
            attacks: Vec::new(),
            pending: VecDeque::new(),
            counts: Counts::default(),
            scratch: String::with_capacity(1024),
            p,
            th,
        };
        s.schedule();
        s
    }

    pub fn params(&self) -> &Params {
        &self.p
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    fn time_of(&self, i: u64) -> i64 {
        self.p.start_ms + (i as f64 * 1000.0 / self.p.rate.max(1e-9)) as i64
    }

    /// Plans every attack: `attacks` of each kind, spread over the stream's duration, each
    /// planned to end before the stream does.
    fn schedule(&mut self) {
        let end = self.time_of(self.p.count);
        let dur = end - self.p.start_ms;
        let n = self.p.attacks;
        let mut steps: Vec<(i64, usize, Step)> = Vec::new();
        let mut next_src = self.p.part << 16;
        let mut next_target = 0u32;
        for (ki, kind) in AttackKind::ALL.into_iter().enumerate() {
            for j in 0..n {
                // Kinds interleave: kind ki's j-th attack starts at (j + (ki + 0.5)/5) / n.
                let at = self.p.start_ms
                    + (dur as f64 * (j as f64 + (ki as f64 + 0.5) / 5.0) / n as f64) as i64;
                let a = self.attacks.len();
                let mut plan = self.plan(kind, a, at, &mut next_src, &mut next_target);
                if plan.last().is_none_or(|s| s.0 >= end) {
                    // Does not fit before the end: not injected.
                    continue;
                }
                steps.append(&mut plan);
            }
        }
        steps.sort_by_key(|s| (s.0, s.1));
        self.pending = steps.into();
    }

    /// Pushes attack `a` and returns its lines with their planned times.
    fn plan(
        &mut self,
        kind: AttackKind,
        a: usize,
        at: i64,
        next_src: &mut u64,
        next_target: &mut u32,
    ) -> Vec<(i64, usize, Step)> {
        let th = &self.th;
        // Attack names are unique across parts too.
        let an = self.p.part * 100_000 + a as u64;
        let src = *next_src;
        *next_src += 1;
        let target = *next_target;
        *next_target += 1;
        let mut user = String::new();
        let mut steps = Vec::new();
        match kind {
            AttackKind::SshBruteForce => {
                // gte + 2 failures for one account, 0.5 s apart (a password-guessing tool):
                // well inside the window, and short enough for a few seconds of traffic.
                let _ = write!(user, "svc{an}");
                for k in 0..th.ssh_bruteforce.gte + 2 {
                    steps.push((
                        at + k as i64 * 500,
                        a,
                        Step::SshFail {
                            src,
                            user: user.clone(),
                        },
                    ));
                }
            }
            AttackKind::PasswordSpray => {
                // One failure per account for `gte` accounts, spaced so that no brute-force
                // window (a trailing window of the longer length) holds the lower count:
                // with a gap over T / (n − 1), a window of length T holds at most n − 1.
                let per_window = (th.login_burst.gte.min(th.ssh_bruteforce.gte) - 1).max(1);
                let window = th.login_burst.window_ms.max(th.ssh_bruteforce.window_ms);
                let gap = window / per_window as i64 + 5000;
                for k in 0..th.spray.gte {
                    steps.push((
                        at + k as i64 * gap,
                        a,
                        Step::SshFail {
                            src,
                            user: format!("sp{an}x{k}"),
                        },
                    ));
                }
                let last = steps.last().map(|s| s.0).unwrap_or(at);
                assert!(
                    last - at < th.spray.window_ms,
                    "spray spacing does not fit its window"
                );
            }
            AttackKind::VerticalScan | AttackKind::HorizontalScan => {
                // gte + 3 distinct ports of one host (vertical), or one port on gte + 3 hosts
                // (horizontal, in 172.24.0.0/13, apart from the vertical targets), 0.25 s
                // apart: a slow scan, under the deny-burst count while that threshold is
                // above the number of probes.
                let vertical = kind == AttackKind::VerticalScan;
                let n = if vertical {
                    th.vertical_scan.gte
                } else {
                    th.horizontal_scan.gte
                } + 3;
                for k in 0..n {
                    let (dst, dport) = if vertical {
                        (target, 1 + k as u16 * 7)
                    } else {
                        (0x8_0000 + target * 64 + k as u32, 445)
                    };
                    steps.push((at + k as i64 * 250, a, Step::FwDrop { src, dst, dport }));
                }
            }
            AttackKind::NewAdmin => {
                let _ = write!(user, "maint{an}");
                let uid = 1500 + an as u32;
                let group = ADMIN_GROUPS[a % ADMIN_GROUPS.len()];
                steps.push((
                    at,
                    a,
                    Step::GroupAdd {
                        user: user.clone(),
                        gid: uid,
                    },
                ));
                steps.push((
                    at,
                    a,
                    Step::UserAdd {
                        user: user.clone(),
                        uid,
                    },
                ));
                // The group change 2 s later (a script), well inside the correlation's window.
                let later = at + (th.new_admin.window_ms / 10).min(2_000);
                steps.push((
                    later,
                    a,
                    Step::AddToGroup {
                        user: user.clone(),
                        group,
                    },
                ));
            }
        }
        let host = self.r.below(self.p.hosts.max(1));
        let rfc5424 = self.p.formats.rfc5424 && (!self.p.formats.rfc3164 || self.r.chance(0.3));
        self.attacks.push(Attack {
            kind,
            src,
            host,
            target,
            port: 445,
            user,
            written: Vec::new(),
            values: Vec::new(),
            rfc5424,
        });
        steps
    }

    /// Appends the next line (with its `\n`) to `out`; false at the end of the stream.
    pub fn next_line(&mut self, out: &mut Vec<u8>) -> bool {
        if self.i >= self.p.count {
            return false;
        }
        let t = self.time_of(self.i);
        self.scratch.clear();
        if self.pending.front().is_some_and(|s| s.0 <= t) {
            let (_, a, step) = self.pending.pop_front().expect("checked");
            self.attack_line(t, a, step);
            self.counts.attack_lines += 1;
        } else {
            self.background_line(t);
        }
        self.scratch.push('\n');
        out.extend_from_slice(self.scratch.as_bytes());
        self.counts.lines += 1;
        self.counts.bytes += self.scratch.len() as u64;
        self.i += 1;
        true
    }

    fn attack_line(&mut self, t: i64, a: usize, step: Step) {
        let att = &mut self.attacks[a];
        att.written.push(t);
        let rfc5424 = att.rfc5424;
        if rfc5424 {
            self.counts.rfc5424 += 1;
        } else {
            self.counts.rfc3164 += 1;
        }
        let host = format!("srv{}", att.host);
        let pid = 20_000 + (a as u64 % 30_000);
        let o = &mut self.scratch;
        match step {
            Step::SshFail { src, user } => {
                let v = crate::loadgen::truth::fnv(user.as_bytes());
                if !att.values.contains(&v) {
                    att.values.push(v);
                }
                header(o, rfc5424, 38, t, &host, "sshd", Some(pid));
                let _ = write!(
                    o,
                    "Failed password for invalid user {user} from {} port {} ssh2",
                    attacker_ip(src),
                    30_000 + att.written.len()
                );
            }
            Step::FwDrop { src, dst, dport } => {
                let v = (u64::from(dst) << 16) | u64::from(dport);
                if !att.values.contains(&v) {
                    att.values.push(v);
                }
                header(o, rfc5424, 4, t, &host, "kernel", None);
                let _ = write!(
                    o,
                    "[{}.{:06}] IPTABLES-DROP: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={} DST={} LEN=44 TOS=0x00 PREC=0x00 TTL=41 ID={} PROTO=TCP SPT={} DPT={dport} WINDOW=1024 RES=0x00 SYN URGP=0",
                    (t / 1000).rem_euclid(10_000_000),
                    (t % 1000) * 1000,
                    attacker_ip(src),
                    target_ip(dst),
                    (t % 65_536),
                    40_000 + att.written.len()
                );
            }
            Step::GroupAdd { user, gid } => {
                header(o, rfc5424, 86, t, &host, "useradd", Some(pid));
                let _ = write!(o, "new group: name={user}, GID={gid}");
            }
            Step::UserAdd { user, uid } => {
                att.values.push(1);
                header(o, rfc5424, 86, t, &host, "useradd", Some(pid));
                let _ = write!(
                    o,
                    "new user: name={user}, UID={uid}, GID={uid}, home=/home/{user}, shell=/bin/bash, from=/dev/pts/0"
                );
            }
            Step::AddToGroup { user, group } => {
                att.values.push(2);
                header(o, rfc5424, 86, t, &host, "usermod", Some(pid + 1));
                let _ = write!(o, "add '{user}' to group '{group}'");
            }
        }
    }

    fn background_line(&mut self, t: i64) {
        let f = self.p.formats;
        // Weights per mille, by family; a family whose format is off gives its share to
        // syslog.
        let roll = self.r.below(1000);
        let kind = match roll {
            0..=119 if f.json => Bg::Windows,
            120..=179 if f.cef => Bg::Cef,
            _ => Bg::Syslog,
        };
        match kind {
            Bg::Windows => {
                self.counts.json += 1;
                self.windows(t);
            }
            Bg::Cef => {
                self.counts.cef += 1;
                self.cef(t);
            }
            Bg::Syslog => {
                let rfc5424 = f.rfc5424 && (!f.rfc3164 || self.r.chance(0.25));
                if rfc5424 {
                    self.counts.rfc5424 += 1;
                } else {
                    self.counts.rfc3164 += 1;
                }
                self.syslog(t, rfc5424);
            }
        }
    }

    fn syslog(&mut self, t: i64, rfc5424: bool) {
        let r = &mut self.r;
        let host = format!("srv{}", r.below(self.p.hosts.max(1)));
        let pid = 1000 + r.below(30_000);
        let src = self.p.part * self.p.addrs + r.below(self.p.addrs.clamp(1, 1 << 24));
        let uid = self.p.part * self.p.users + r.below(self.p.users.max(1));
        let mut user = String::new();
        user_name(uid, &mut user);
        let mut ip = String::new();
        bg_ip(src, &mut ip);
        let mut what = r.below(100);
        // Counted events within their key's ration, else a benign neighbour.
        if what < 8 && !self.guard.take(t, &[(SSH_SRC, src), (SSH_USER, uid)]) {
            self.counts.rationed += 1;
            what = 12;
        }
        if (40..50).contains(&what) && !self.guard.take(t, &[(FW_SRC, src)]) {
            self.counts.rationed += 1;
            what = 50;
        }
        if what == 60 && !self.guard.take(t, &[(WEB_SRC, src)]) {
            self.counts.rationed += 1;
            what = 61;
        }
        let r = &mut self.r;
        let o = &mut self.scratch;
        match what {
            0..=17 => {
                header(o, rfc5424, 38, t, &host, "sshd", Some(pid));
                let port = 1024 + r.below(60_000);
                let _ = match what {
                    0..=7 => write!(o, "Failed password for {user} from {ip} port {port} ssh2"),
                    8..=11 => write!(
                        o,
                        "Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{:016x}{:016x}",
                        r.next_u64(),
                        r.next_u64()
                    ),
                    _ => write!(o, "Connection closed by {ip} port {port} [preauth]"),
                };
            }
            18..=27 => {
                header(o, rfc5424, 86, t, &host, "CRON", Some(pid));
                o.push_str(
                    "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
                );
            }
            28..=31 => {
                header(o, rfc5424, 85, t, &host, "sudo", None);
                let _ = write!(
                    o,
                    "  {user} : TTY=pts/{} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
                    r.below(8)
                );
            }
            32..=49 => {
                let drop = what >= 40;
                header(o, rfc5424, 4, t, &host, "kernel", None);
                let _ = write!(
                    o,
                    "[{}.{:06}] IPTABLES-{}: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={ip} DST=192.0.2.{} LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID={} DF PROTO=TCP SPT={} DPT={} WINDOW=64240 RES=0x00 SYN URGP=0",
                    (t / 1000).rem_euclid(10_000_000),
                    r.below(1_000_000),
                    if drop { "DROP" } else { "ACCEPT" },
                    r.below(254) + 1,
                    r.below(65_535),
                    1024 + r.below(60_000),
                    [22u16, 80, 443, 3389, 8080, 25, 53][r.below(7) as usize]
                );
            }
            50..=64 => {
                let status = match what {
                    60 => 404,
                    61..=62 => 304,
                    _ => 200,
                };
                header(o, rfc5424, 190, t, &host, "nginx", None);
                let _ = write!(o, "{ip} - - [");
                stamp_clf(t, o);
                let _ = write!(
                    o,
                    "] \"GET /api/v1/items/{} HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\"",
                    r.below(100_000),
                    r.below(50_000)
                );
            }
            65..=72 => {
                header(o, rfc5424, 22, t, &host, "postfix/smtpd", Some(pid));
                let _ = write!(o, "connect from unknown[{ip}]");
            }
            _ => {
                header(o, rfc5424, 30, t, &host, "systemd", Some(1));
                let _ = write!(o, "Started Session {} of User {user}.", r.below(100_000));
            }
        }
    }

    fn windows(&mut self, t: i64) {
        let r = &mut self.r;
        let host = r.below(self.p.hosts.max(1));
        let src = self.p.part * self.p.addrs + r.below(self.p.addrs.clamp(1, 1 << 24));
        let uid = self.p.part * self.p.users + r.below(self.p.users.max(1));
        let mut user = String::new();
        user_name(uid, &mut user);
        let mut ip = String::new();
        bg_ip(src, &mut ip);
        let mut id = match r.below(10) {
            0..=4 => 4624,
            5..=8 => 4634,
            _ => 4625,
        };
        if id == 4625 && !self.guard.take(t, &[(WIN_SRC, src), (WIN_USER, uid)]) {
            self.counts.rationed += 1;
            id = 4634;
        }
        let o = &mut self.scratch;
        o.push_str("{\"@timestamp\":\"");
        stamp3339(t, o);
        let _ = write!(
            o,
            "\",\"Hostname\":\"WS{host:05}.corp.local\",\"Channel\":\"Security\",\"SourceName\":\"Microsoft-Windows-Security-Auditing\",\"EventID\":{id},\"TargetUserName\":\"{user}\",\"TargetDomainName\":\"CORP\",\"LogonType\":3"
        );
        if id != 4634 {
            let _ = write!(
                o,
                ",\"IpAddress\":\"{ip}\",\"IpPort\":\"{}\",\"WorkstationName\":\"WS{:05}\",\"AuthenticationPackageName\":\"NTLM\"",
                1024 + self.r.below(60_000),
                self.r.below(self.p.hosts.max(1))
            );
        }
        if id == 4625 {
            o.push_str(",\"Status\":\"0xc000006d\",\"SubStatus\":\"0xc000006a\"");
        }
        o.push('}');
    }

    fn cef(&mut self, t: i64) {
        let r = &mut self.r;
        let src = self.p.part * self.p.addrs + r.below(self.p.addrs.clamp(1, 1 << 24));
        let mut ip = String::new();
        bg_ip(src, &mut ip);
        let gw = r.below(8);
        let o = &mut self.scratch;
        header(o, false, 134, t, &format!("gw{gw}"), "CEF", None);
        // header() wrote "CEF: "; CEF wants "CEF:0|…" right after the hostname.
        o.truncate(o.len() - 2);
        let _ = write!(
            o,
            ":0|Acme|SecureGateway|4.2|100|Connection allowed|3|rt={} src={ip} dst=192.0.2.{} spt={} dpt=443 proto=TCP act=allow",
            t,
            r.below(254) + 1,
            1024 + r.below(60_000)
        );
    }

    /// The alerts a correct engine raises on the lines written so far (call at the end).
    pub fn truth(&self) -> Vec<Expected> {
        let th = &self.th;
        let mut out = Vec::new();
        for a in &self.attacks {
            let (Some(&first), Some(&last)) = (a.written.first(), a.written.last()) else {
                continue;
            };
            let n = a.values.len() as u64;
            let exp = |t: &Threshold, group: Vec<(String, String)>, from: i64| Expected {
                rule_id: t.id.clone(),
                rule: t.name.clone(),
                attack: a.kind.name().to_string(),
                group,
                not_before_ms: from,
                not_after_ms: last,
            };
            let src = || ("src_ip".to_string(), attacker_ip(a.src));
            match a.kind {
                AttackKind::SshBruteForce => {
                    if a.written.len() as u64 >= th.ssh_bruteforce.gte {
                        out.push(exp(&th.ssh_bruteforce, vec![src()], first));
                    }
                }
                AttackKind::PasswordSpray => {
                    if n >= th.spray.gte {
                        out.push(exp(&th.spray, vec![src()], first));
                    }
                }
                AttackKind::VerticalScan => {
                    if n >= th.vertical_scan.gte {
                        let g = vec![src(), ("dst_ip".to_string(), target_ip(a.target))];
                        out.push(exp(&th.vertical_scan, g, first));
                    }
                }
                AttackKind::HorizontalScan => {
                    if n >= th.horizontal_scan.gte {
                        let g = vec![src(), ("dst_port".to_string(), a.port.to_string())];
                        out.push(exp(&th.horizontal_scan, g, first));
                    }
                }
                AttackKind::NewAdmin => {
                    if a.values.contains(&2) {
                        // The group change alerts on its own line.
                        out.push(exp(&th.privileged_group, Vec::new(), last));
                        if a.values.contains(&1) {
                            let g = vec![("target_user".to_string(), a.user.clone())];
                            out.push(exp(&th.new_admin, g, first));
                        }
                    }
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy)]
enum Bg {
    Syslog,
    Windows,
    Cef,
}

/// Milliseconds since the epoch of an RFC 3339 stamp, for `--start`.
pub fn parse_start(s: &str) -> Result<i64, String> {
    if s == "now" {
        return Ok(Timestamp::now().0.div_euclid(1_000_000));
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("--start {s:?}: {e}"))
}
