//! Windows-like JSON events as Winlogbeat/NXLog send them (flat, `EventID`, `Channel`, ...):
//! Sysmon process creations (~600 bytes each) from a population of mostly benign software.

use std::fmt::Write as _;

use super::Rng;

const VENDORS: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Litware",
    "Northwind",
    "Tailspin",
    "Wingtip",
    "Adatum",
    "Proseware",
];
const WORDS: &[&str] = &[
    "update", "sync", "agent", "helper", "service", "worker", "launcher", "monitor", "client",
    "viewer",
];
const SYSTEM: &[&str] = &[
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\explorer.exe",
    r"C:\Windows\System32\RuntimeBroker.exe",
    r"C:\Windows\System32\taskhostw.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
];

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A process image path: mostly third-party software, some Windows binaries.
fn image(r: &mut Rng) -> String {
    if r.chance(0.25) {
        return r.pick(SYSTEM).to_string();
    }
    let v = r.pick(VENDORS);
    let w = r.pick(WORDS);
    let n = r.below(999) + 1;
    let mut t = w.to_string();
    t[..1].make_ascii_uppercase();
    format!(r"C:\Program Files\{v}\{t}{n}\{w}{n}.exe")
}

/// Appends one Sysmon EventID 1 (process creation) event as a JSON line (no newline).
pub fn process_creation(r: &mut Rng, seq: u64, out: &mut String) {
    let img = image(r);
    let parent = image(r);
    let exe = img.rsplit('\\').next().unwrap_or("x.exe").to_string();
    let v = r.pick(VENDORS);
    let w = r.pick(WORDS);
    let secs = seq % 86_400;
    let _ = write!(
        out,
        r#"{{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS{:04}.corp.local","@timestamp":"2024-05-01T{:02}:{:02}:{:02}Z","ProcessGuid":"{{{:08x}-1111-2222-3333-444455556666}}","ProcessId":{},"Image":"#,
        r.below(500) + 1,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        r.next_u64() as u32,
        r.below(9900) + 100,
    );
    json_str(out, &img);
    let _ = write!(
        out,
        r#","Description":"{v} {w}","Company":"{v} Ltd","OriginalFileName":"#
    );
    json_str(out, &exe);
    out.push_str(r#","CommandLine":"#);
    let cmd = format!("\"{img}\" --{w} {:x}", r.next_u64() & 0xff_ffff);
    json_str(out, &cmd);
    let _ = write!(
        out,
        r#","User":"CORP\\user{}","LogonId":"0x{:x}","IntegrityLevel":"Medium","Hashes":"MD5={:016x}{:016x}","ParentImage":"#,
        r.below(3000) + 1,
        r.next_u64() & 0xff_ffff,
        r.next_u64(),
        r.next_u64()
    );
    json_str(out, &parent);
    out.push_str(r#","ParentCommandLine":"#);
    json_str(out, &format!("\"{parent}\""));
    out.push('}');
}

/// `n` process-creation events, one per line.
pub fn process_creations(seed: u64, n: usize) -> Vec<String> {
    let mut r = Rng::new(seed);
    (0..n as u64)
        .map(|i| {
            let mut s = String::with_capacity(700);
            process_creation(&mut r, i, &mut s);
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_are_json_of_about_600_bytes() {
        let evs = super::process_creations(1, 100);
        let avg = evs.iter().map(|e| e.len()).sum::<usize>() / evs.len();
        assert!((450..800).contains(&avg), "average {avg}");
        for e in &evs {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            assert_eq!(v["EventID"], 1);
        }
        assert_eq!(
            super::process_creations(1, 3),
            super::process_creations(1, 3)
        );
    }
}
