//! `kuzet bench` on a short run: the JSON has every figure issue 8 asks for, the alerts of
//! the in-process daemon match the generated ground truth, and the HTML report is one
//! well-formed, self-contained page with both charts. Speed is not asserted.

use std::process::Command;

/// Tags balance (void elements self-closed), as an XML reader would require.
fn well_formed(html: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if open != name {
                return Err(format!("<{open}> closed by </{name}>"));
            }
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap_or_default();
            stack.push(name.to_string());
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[test]
fn json_has_every_figure_alerts_match_the_truth_and_the_report_draws_both_charts() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("bench.html");
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args([
            "bench",
            "--events",
            "100000",
            "--keys",
            "20000",
            "--connections",
            "2",
            "--at",
            "0.5",
            "--latency-secs",
            "3",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ])
        .output()
        .expect("run kuzet bench");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["mode"], "saturation");
    assert_eq!(runs[1]["mode"], "fixed rate");
    assert!(v["peak_rss_mb"].as_f64().unwrap() > 0.0);
    for r in runs {
        for k in [
            "achieved_eps",
            "dropped",
            "cpu_cores",
            "alert_p50_ms",
            "alert_p99_ms",
            "alert_p999_ms",
            "event_to_alert_p99_ms",
            "expected_alerts",
        ] {
            assert!(r.get(k).is_some(), "no {k} in {r}");
        }
        assert_eq!(
            r["cpu_per_core"].as_array().unwrap().len(),
            std::thread::available_parallelism().unwrap().get().max(1)
        );
        // Every event got through, and the daemon raised exactly the expected alerts.
        assert_eq!(r["missed"], 0, "{r}");
        assert_eq!(r["extra"], 0, "{r}");
        assert!(r["throughput"].as_array().is_some_and(|t| !t.is_empty()));
    }
    assert_eq!(runs[0]["events"], 100_000);
    assert!(
        runs[0]["expected_alerts"].as_u64().unwrap() > 0,
        "the saturation run carries attacks"
    );
    assert!(runs[1]["offered_eps"].as_f64().unwrap() > 0.0);

    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    well_formed(&html).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "throughput and latency charts"
    );
    assert!(html.contains("Throughput over time") && html.contains("Receive → alert latency"));
    assert!(html.contains("<polyline") && html.contains("<rect"));
    // Self-contained: nothing fetched (the SVG namespace is a name, not a fetch).
    assert!(!html.contains("src=") && !html.contains("href=") && !html.contains("<script"));
}

/// `--target`: the traffic goes to a running `kuzet run`, whose file sink is checked.
#[test]
fn target_mode_checks_a_running_daemons_alerts() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.json");
    let cfg = dir.path().join("kuzet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[listener]]\naddress = \"tcp://127.0.0.1:0\"\n[admin]\nlisten = \"\"\n[[sink]]\ntype = \"file\"\npath = {:?}\n",
            alerts.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kuzet run");
    let mut addr = None;
    let mut err = BufReader::new(daemon.stderr.take().unwrap());
    for _ in 0..20 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(a) = line.trim().strip_prefix("kuzet: listening on ") {
            addr = Some(a.to_string());
            break;
        }
    }
    let addr = addr.expect("the daemon says where it listens");
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args([
            "bench",
            "--target",
            &addr,
            "--events",
            "120000",
            "--rate",
            "20000",
            "--keys",
            "10000",
            "--connections",
            "2",
            "--alerts",
            alerts.to_str().unwrap(),
            "--json",
        ])
        .output()
        .expect("run kuzet bench");
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["runs"][0];
    assert_eq!(r["mode"], "target");
    assert_eq!(r["events"], 120_000);
    assert!(r["expected_alerts"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["missed"], 0, "{r}");
    assert_eq!(r["extra"], 0, "{r}");
}
