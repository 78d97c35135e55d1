//! A mixed Linux syslog stream, the way a relay forwards a fleet's logs: sshd (failures,
//! successes, disconnects, PAM), cron, sudo, kernel netfilter drops, nginx access lines and
//! systemd noise, RFC 3164 framed with `<PRI>`, newline-terminated. Brute-force bursts
//! (8 failed passwords from one address) are injected at a fixed interval so that a rule
//! pack under test raises alerts at a known rate.

use super::Rng;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Mix {
    /// Distinct source addresses of the background sshd traffic.
    pub keys: u64,
    /// A burst of 8 failures from one fresh address every this many events (0: none).
    pub attack_every: u64,
    /// Hosts sending.
    pub hosts: u64,
    /// Attackers get addresses from here on (streams generated side by side use different
    /// bases so their attacks stay distinct).
    pub attacker_base: u64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            keys: 10_000,
            attack_every: 10_000,
            hosts: 200,
            attacker_base: 0x00C0_0000,
        }
    }
}

fn ip(k: u64, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255);
}

/// Appends events `seq..seq + n` to `out`, each stamped `stamp` (an RFC 3164 time such as
/// `Nov 25 10:00:01`). Returns the number of injected attack bursts that started.
pub fn append(r: &mut Rng, mix: &Mix, stamp: &str, seq: u64, n: u64, out: &mut String) -> u64 {
    use std::fmt::Write;
    let users = [
        "root", "admin", "deploy", "postgres", "oracle", "ubuntu", "test", "git",
    ];
    let mut attacks = 0;
    let mut i = 0;
    while i < n {
        let s = seq + i;
        let host = r.below(mix.hosts.max(1));
        if mix.attack_every > 0 && s.is_multiple_of(mix.attack_every) && i + 8 <= n {
            // An attacker address outside the background key space.
            let a = mix.attacker_base + s / mix.attack_every;
            for j in 0..8 {
                let _ = write!(
                    out,
                    "<38>{stamp} srv{host} sshd[{}]: Failed password for invalid user {} from ",
                    20000 + j,
                    users[j as usize % users.len()]
                );
                ip(a, out);
                let _ = writeln!(out, " port {} ssh2", 40000 + j);
            }
            attacks += 1;
            i += 8;
            continue;
        }
        let pid = 1000 + r.below(30000);
        match r.below(100) {
            0..=29 => {
                let _ = write!(
                    out,
                    "<38>{stamp} srv{host} sshd[{pid}]: Failed password for {} from ",
                    r.pick(&users)
                );
                ip(r.below(mix.keys.max(1)), out);
                let _ = writeln!(out, " port {} ssh2", 1024 + r.below(60000));
            }
            30..=34 => {
                let _ = write!(
                    out,
                    "<38>{stamp} srv{host} sshd[{pid}]: Accepted publickey for {} from ",
                    r.pick(&users)
                );
                ip(r.below(mix.keys.max(1)), out);
                let _ = writeln!(
                    out,
                    " port {} ssh2: ED25519 SHA256:{:016x}{:016x}",
                    1024 + r.below(60000),
                    r.next_u64(),
                    r.next_u64()
                );
            }
            35..=39 => {
                let _ = write!(
                    out,
                    "<38>{stamp} srv{host} sshd[{pid}]: Connection closed by "
                );
                ip(r.below(mix.keys.max(1)), out);
                let _ = writeln!(out, " port {} [preauth]", 1024 + r.below(60000));
            }
            40..=49 => {
                let _ = writeln!(
                    out,
                    "<86>{stamp} srv{host} CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
                );
            }
            50..=54 => {
                let _ = writeln!(
                    out,
                    "<85>{stamp} srv{host} sudo[{pid}]:   {} : TTY=pts/{} ; PWD=/home/{} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
                    r.pick(&users),
                    r.below(8),
                    r.pick(&users)
                );
            }
            55..=74 => {
                let _ = write!(
                    out,
                    "<4>{stamp} srv{host} kernel: [{}.{:06}] IPTABLES-DROP: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=",
                    r.below(1_000_000),
                    r.below(1_000_000)
                );
                ip(r.below(mix.keys.max(1)), out);
                let _ = writeln!(
                    out,
                    " DST=192.0.2.{} LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID={} DF PROTO=TCP SPT={} DPT={} WINDOW=64240 RES=0x00 SYN URGP=0",
                    r.below(254) + 1,
                    r.below(65535),
                    1024 + r.below(60000),
                    [22, 23, 80, 443, 445, 3389, 8080][r.below(7) as usize]
                );
            }
            75..=89 => {
                let _ = write!(out, "<190>{stamp} srv{host} nginx: ");
                ip(r.below(mix.keys.max(1)), out);
                let _ = writeln!(
                    out,
                    " - - [25/Nov/2026:10:00:01 +0000] \"GET /api/v1/items/{} HTTP/1.1\" {} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\"",
                    r.below(100_000),
                    [200, 200, 200, 304, 404][r.below(5) as usize],
                    r.below(50_000)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "<30>{stamp} srv{host} systemd[1]: Started Session {} of User {}.",
                    r.below(100_000),
                    r.pick(&users)
                );
            }
        }
        i += 1;
    }
    attacks
}

/// `n` events as one buffer (all stamped `stamp`).
pub fn generate(seed: u64, mix: &Mix, stamp: &str, n: u64) -> (String, u64) {
    let mut r = Rng::new(seed);
    let mut out = String::with_capacity(n as usize * 150);
    let attacks = append(&mut r, mix, stamp, 0, n, &mut out);
    (out, attacks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_counted_and_attacks_at_the_rate_asked() {
        let mix = Mix {
            attack_every: 1000,
            ..Mix::default()
        };
        let (a, n_att) = generate(7, &mix, "Nov 25 10:00:01", 10_000);
        let (b, _) = generate(7, &mix, "Nov 25 10:00:01", 10_000);
        assert_eq!(a, b);
        assert_eq!(a.lines().count(), 10_000);
        assert_eq!(n_att, 10);
        assert_eq!(a.matches("Failed password for invalid user").count(), 80);
    }
}
