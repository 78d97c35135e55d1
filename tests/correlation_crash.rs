//! Crash recovery of `kuzet replay --state-dir`: a replay killed with SIGKILL in the middle
//! of a large file and run again must, together, print exactly the alerts of an
//! uninterrupted replay, each (id, revision) once.
//!
//! The file: ~1.2 M events over a week, mostly noise (successful logins, sporadic failures
//! from a large pool of addresses), with ~6 000 brute-force attacks (15–80 failures from one
//! address, 2–20 s apart, so each lasts minutes) spread through it: at any moment several
//! are under way, so every checkpoint and the kill fall inside open windows and open alerts.
//! The rule: `event_count ≥ 10` per `src` over 10 minutes; each attack gives an alert and an
//! update (default suppression). Besides it, over the same stream: a chain counting those
//! alerts, a chain into `temporal_ordered` (an attack, then a success from its address) and
//! an `lt` rule (episodes, judged by timers), so that state of each shape is checkpointed.
//!
//! The runs: (1) uninterrupted, without `--state-dir`; (2) with `--state-dir D
//! --checkpoint-every 20000`, killed (`Child::kill`, SIGKILL on Unix) once `D/replay.ckpt`
//! exists and half of (1)'s alerts are out; (3) the same command again, which resumes from
//! the checkpoint and skips what the journal says (2) already printed; (4) once more, which
//! has nothing left to do. Alerts are compared whole, but for the wall-clock `detected_at`.

#[path = "correlation/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Writes the event file; returns the number of attacks.
fn generate(path: &Path) -> usize {
    let mut rng = Rng::new(2024);
    let span = 7 * DAY;
    // (time, action, address)
    let mut ev: Vec<(i64, &str, u32)> = Vec::with_capacity(1_600_000);
    let mut t = 0;
    while t < span {
        t += rng.range(0, 1_000);
        // Noise: 10.0.0.0/14, a failure now and then.
        let action = if rng.chance(0.2) { "fail" } else { "ok" };
        ev.push((t, action, 0x0A00_0000 | rng.range(0, 1 << 18) as u32));
    }
    let attacks = 6_000;
    for i in 0..attacks {
        let mut s = rng.range(0, span);
        let ip = 0xAC10_0000 + i as u32; // 172.16.0.0 + i
        for _ in 0..rng.range(15, 81) {
            s += rng.range(2_000, 20_000);
            ev.push((s, "fail", ip));
        }
        // A third of them get in.
        if rng.chance(0.33) {
            ev.push((s + rng.range(1_000, 60_000), "success", ip));
        }
    }
    ev.sort_unstable();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    for (t, action, ip) in ev {
        // 2024-01-DD: the week stays in January.
        let (d, r) = (t / DAY, t % DAY);
        writeln!(
            w,
            r#"{{"timestamp":"2024-01-{:02}T{:02}:{:02}:{:02}.{:03}Z","action":"{}","src":"{}.{}.{}.{}"}}"#,
            1 + d,
            r / HOUR,
            r / MIN % 60,
            r / SEC % 60,
            r % SEC,
            action,
            ip >> 24,
            ip >> 16 & 0xff,
            ip >> 8 & 0xff,
            ip & 0xff
        )
        .expect("write");
    }
    w.flush().expect("flush");
    attacks
}

/// The brute-force rule, and correlations of every state shape over the same stream: a
/// chain (global count of brute-force alerts), a chain into `temporal_ordered` (attack,
/// then a success from the same address), and an episode rule (`lt`: judged by timers).
fn rules() -> Vec<String> {
    vec![
        action_rule("fail", "fail"),
        action_rule("success", "success"),
        detection(
            "fail_outside",
            "sel:\n  action: fail\n  src|startswith: '172.16.'\ncondition: sel",
        ),
        correlation(
            "brute",
            "type: event_count\nrules: [fail]\ngroup-by: [src]\ntimespan: 10m\ncondition: {gte: 10}",
        ),
        correlation(
            "wave",
            "type: event_count\nrules: [brute]\ntimespan: 10m\ncondition: {gte: 3}\ngenerate: true",
        ),
        correlation(
            "brute_then_success",
            "type: temporal_ordered\nrules: [brute, success]\ngroup-by: [src]\ntimespan: 30m",
        ),
        correlation(
            "slow_outside",
            "type: event_count\nrules: [fail_outside]\ngroup-by: [src]\ntimespan: 10m\ncondition: {lt: 20}",
        ),
    ]
}

/// Alerts by (id, revision), without `detected_at`; panics on a repeated key.
fn by_key(lines: &[&str], what: &str) -> BTreeMap<(String, u64), Value> {
    let mut m = BTreeMap::new();
    for l in lines {
        let a = parse_alert(l);
        let mut j = a.json;
        j.as_object_mut().expect("object").remove("detected_at");
        let key = (a.id, a.revision);
        assert!(
            m.insert(key.clone(), j).is_none(),
            "{what}: {key:?} printed twice"
        );
    }
    m
}

/// (id, revision) records of the replay journal.
fn journal(dir: &Path) -> Vec<(String, u64)> {
    let b = std::fs::read(dir.join("replay.journal")).unwrap_or_default();
    b.chunks_exact(20)
        .map(|r| {
            let id = u128::from_le_bytes(r[..16].try_into().unwrap());
            let rev = u32::from_le_bytes(r[16..].try_into().unwrap());
            (format!("{id:032x}"), rev as u64)
        })
        .collect()
}

#[test]
fn kill_and_resume() {
    let started = Instant::now();
    // A failed run leaves its ~120 MB behind for a look; the next run clears it.
    if let Ok(old) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) {
        for e in old.flatten() {
            if e.file_name().to_string_lossy().starts_with("corr-crash-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = scratch("crash");
    let file = dir.join("events.jsonl");
    let attacks = generate(&file);
    let (rdir, _) = write_inputs(&dir.join("in"), &rules(), &exact(&[]));
    let generated = started.elapsed();

    // (1) Uninterrupted.
    let out = replay_command(&rdir)
        .arg(&file)
        .output()
        .expect("run kuzet");
    assert!(out.status.success());
    let full_text = String::from_utf8(out.stdout).expect("utf-8");
    let full_lines: Vec<&str> = full_text.lines().collect();
    let full = by_key(&full_lines, "uninterrupted run");
    let count = |rule: &str| {
        let id = uuid(rule);
        full.values()
            .filter(|a| a["rule"]["id"] == id.as_str() && a["revision"] == 0)
            .count()
    };
    let brute = count("brute");
    assert!(
        brute > attacks * 9 / 10 && brute <= attacks + 200,
        "{brute} alerts for {attacks} attacks"
    );
    for r in ["wave", "brute_then_success", "slow_outside"] {
        assert!(count(r) > 20, "{r}: {} alerts", count(r));
    }
    let uninterrupted = started.elapsed() - generated;

    // (2) Killed once a checkpoint exists and half the alerts are out.
    let state = dir.join("state");
    let args = [
        "--state-dir",
        state.to_str().expect("utf-8 path"),
        "--checkpoint-every",
        "20000",
    ];
    let mut child = replay_command(&rdir)
        .args(args)
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kuzet");
    let mut stdout = child.stdout.take().expect("stdout");
    let lines = Arc::new(AtomicUsize::new(0));
    let seen = lines.clone();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 1 << 16];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    let nl = buf[..n].iter().filter(|&&b| b == b'\n').count();
                    seen.fetch_add(nl, Ordering::Relaxed);
                }
            }
        }
        all
    });
    let target = full.len() / 2;
    loop {
        if state.join("replay.ckpt").exists() && lines.load(Ordering::Relaxed) >= target {
            child.kill().expect("kill");
            break;
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the replay ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.wait().expect("wait");
    let killed_bytes = reader.join().expect("reader");
    let journaled = journal(&state);
    let killed_text = String::from_utf8_lossy(&killed_bytes).into_owned();
    // Only complete lines were printed; a torn last line would be printed again in (3).
    let complete = killed_text.rfind('\n').map_or("", |i| &killed_text[..i]);
    let torn = &killed_text[complete.len()..].trim_start_matches('\n');
    let killed_lines: Vec<&str> = complete.lines().filter(|l| !l.is_empty()).collect();
    let killed = by_key(&killed_lines, "killed run");
    assert!(
        killed.len() >= target && killed.len() < full.len(),
        "killed after {} of {} alerts",
        killed.len(),
        full.len()
    );

    // (3) Resumed.
    let out = replay_command(&rdir)
        .args(args)
        .arg(&file)
        .output()
        .expect("run kuzet");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resuming"), "{stderr}");
    let resumed_text = String::from_utf8(out.stdout).expect("utf-8");
    let resumed_lines: Vec<&str> = resumed_text.lines().collect();
    let resumed = by_key(&resumed_lines, "resumed run");

    // Nothing printed by both: the journal told (3) what (2) printed after its last
    // checkpoint. The one exception kuzet allows is the alert (2) was writing when killed:
    // its line is flushed to stdout before its journal record is written (a crash repeats
    // an alert rather than losing one), so only the last line of (2), and only if the
    // journal lacks it.
    let twice: Vec<&(String, u64)> = killed.keys().filter(|k| resumed.contains_key(k)).collect();
    if let [k] = twice.as_slice() {
        let last = parse_alert(killed_lines.last().expect("a line"));
        assert_eq!(
            (&last.id, last.revision),
            (&k.0, k.1),
            "printed twice: {k:?}"
        );
        assert!(!journaled.contains(k), "journaled yet printed again: {k:?}");
    } else {
        assert!(twice.is_empty(), "printed by both runs: {twice:?}");
    }
    if !torn.is_empty() {
        eprintln!("the killed run's last line was torn: {} bytes", torn.len());
    }
    let mut union = killed.clone();
    union.extend(resumed.clone());
    let missing: Vec<_> = full.keys().filter(|k| !union.contains_key(k)).collect();
    let extra: Vec<_> = union.keys().filter(|k| !full.contains_key(k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {} (e.g. {:?}), extra {} (e.g. {:?})",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
    let differ: Vec<_> = full.iter().filter(|(k, v)| union[*k] != **v).collect();
    assert!(
        differ.is_empty(),
        "{} alerts differ, e.g. {:?}\nvs {:?}",
        differ.len(),
        differ.first(),
        differ.first().map(|(k, _)| &union[*k])
    );

    // (4) After a complete run there is nothing left to do.
    let out = replay_command(&rdir)
        .args(args)
        .arg(&file)
        .output()
        .expect("run kuzet");
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    eprintln!(
        "{} alerts ({} brute, {} wave, {} brute_then_success, {} slow_outside raised; {} killed + {} resumed); generate {:.1?}, uninterrupted {:.1?}, total {:.1?}",
        full.len(),
        brute,
        count("wave"),
        count("brute_then_success"),
        count("slow_outside"),
        killed.len(),
        resumed.len(),
        generated,
        uninterrupted,
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
