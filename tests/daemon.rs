//! `kuzet run` end to end: the real binary, real loopback sockets, real signals.
//!
//! Alerts go to a file sink the tests read; the daemon's ports come from its stderr
//! (`listening on tcp://ADDR`, `metrics on http://ADDR/metrics`), so every test runs on
//! ports the kernel picked. Times in the log lines are the current time: the daemon's
//! event-time clock follows the wall clock.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "browser/cdp.rs"]
mod cdp;

struct Daemon {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    tcp: SocketAddr,
    admin: SocketAddr,
    alerts: PathBuf,
}

/// A test that fails half-way must not leave its daemon running.
impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Daemon {
    /// Starts `kuzet run` with `args` plus a TCP listener on a free port, the admin listener
    /// on a free port and alerts to `dir/alerts.jsonl`.
    fn start(dir: &Path, args: &[&str]) -> Daemon {
        let alerts = dir.join("alerts.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kuzet"))
            .arg("run")
            .args(["--listen", "tcp://127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .arg("--alerts-file")
            .arg(&alerts)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kuzet");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
        let find = |prefix: &str| {
            let st = stderr.clone();
            let p = prefix.to_string();
            wait_for(prefix, Duration::from_secs(30), move || {
                st.lock().unwrap().iter().find_map(|l| {
                    l.strip_prefix(&p).map(|r| {
                        r.trim_end_matches("/metrics")
                            .parse::<SocketAddr>()
                            .unwrap()
                    })
                })
            })
        };
        let tcp = find("kuzet: listening on tcp://");
        let admin = find("kuzet: metrics on http://");
        Daemon {
            child,
            stderr,
            tcp,
            admin,
            alerts,
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// SIGTERM and wait; returns whether it exited 0.
    fn stop(mut self) -> (bool, String) {
        self.signal("TERM");
        let status = wait_for("exit", Duration::from_secs(60), || {
            self.child.try_wait().unwrap()
        });
        // Let the stderr thread catch the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (status.success(), self.stderr_text())
    }

    fn http(&self, method: &str, path: &str) -> (u16, String) {
        self.http_with(method, path, "")
    }

    /// A request with extra header lines (each ending in CRLF).
    fn http_with(&self, method: &str, path: &str, headers: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.admin).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: x\r\n{headers}Content-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string();
        (status, body)
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.http("GET", "/metrics");
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn alerts(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.alerts)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("alert is JSON"))
            .collect()
    }
}

/// An RFC 3164 stamp for now (UTC), as syslog daemons write it.
fn stamp() -> String {
    let out = Command::new("date")
        .args(["-u", "+%b %e %H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

fn failures(ip: &str, n: usize) -> String {
    let t = stamp();
    (0..n)
        .map(|i| {
            format!(
                "<38>{t} web01 sshd[{}]: Failed password for root from {ip} port {} ssh2\n",
                4000 + i,
                50000 + i
            )
        })
        .collect()
}

fn brute_force_alerts(d: &Daemon, ip: &str) -> Vec<serde_json::Value> {
    d.alerts()
        .into_iter()
        .filter(|a| {
            a["rule"]["title"] == "SSH Brute Force From One Source" && a["group"]["src_ip"] == ip
        })
        .collect()
}

#[test]
fn a_brute_force_burst_over_tcp_alerts_while_the_connection_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    let sent = Instant::now();
    conn.write_all(failures("203.0.113.7", 6).as_bytes())
        .unwrap();
    let alert = wait_for("the alert", Duration::from_secs(10), || {
        brute_force_alerts(&d, "203.0.113.7").into_iter().next()
    });
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(2), "alert after {took:?}");
    assert_eq!(alert["count"], 6);
    assert_eq!(alert["events"].as_array().unwrap().len(), 6);
    assert_eq!(alert["events"][0]["src_ip"], "203.0.113.7");
    // Still open: the connection was never closed.
    conn.write_all(failures("198.51.100.9", 1).as_bytes())
        .unwrap();
    assert!(d.metric("kuzet_alert_latency_seconds_count") >= 1.0);
    drop(conn);
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
}

#[test]
fn a_sender_faster_than_the_engine_loses_nothing_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    // One worker and tiny queues: the reader must stop reading, not drop.
    let cfg = dir.path().join("kuzet.toml");
    std::fs::write(
        &cfg,
        "[engine]\nworkers = 1\nshards = 1\nqueue_batches = 1\nshard_queue = 1\n[stats]\ninterval = 0\n",
    )
    .unwrap();
    let d = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let t = stamp();
    let n = 300_000usize;
    let mut data = String::with_capacity(n * 110);
    for i in 0..n {
        data.push_str(&format!(
            "<38>{t} web{} sshd[{i}]: Failed password for root from 10.{}.{}.{} port 22 ssh2\n",
            i % 7,
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(data.as_bytes()).unwrap();
    drop(conn);
    let events = wait_for("every event", Duration::from_secs(120), || {
        let e = d.metric("kuzet_events_total");
        (e as usize >= n).then_some(e)
    });
    assert_eq!(events as usize, n);
    let pauses = d.metric("kuzet_input_backpressure_pauses_total");
    assert!(
        pauses > 0.0,
        "the reader never had to wait: the test did not test backpressure"
    );
    assert_eq!(d.metric("kuzet_parse_errors_total"), 0.0);
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
    assert!(err.contains(&format!("kuzet: {n} events")), "{err}");
}

const EXTRA_RULE: &str = "title: Test Sudo Marker
id: 0f1c2d3e-4b5a-4978-8877-665544332211
status: test
author: kuzet tests
logsource:
  product: linux
detection:
  keywords:
    - 'KUZET-RELOAD-MARKER'
  condition: keywords
level: high
";

#[test]
fn sighup_swaps_good_rules_in_and_keeps_the_running_ones_when_the_new_ones_are_broken() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/rules/linux/sshd_bruteforce.yml"
        ),
        pack.join("sshd.yml"),
    )
    .unwrap();
    let d = Daemon::start(dir.path(), &["--rules", pack.to_str().unwrap()]);
    assert_eq!(d.http("GET", "/healthz").1.trim(), "ok generation=1");

    // A broken rule: rejected, generation unchanged, the running rules still alert.
    std::fs::write(
        pack.join("broken.yml"),
        "title: Broken\nid: 1\ndetection:\n  sel: {a: 1}\n  condition: sel and nothing\n",
    )
    .unwrap();
    d.signal("HUP");
    wait_for("the rejection", Duration::from_secs(30), || {
        d.stderr_text().contains("reload rejected").then_some(())
    });
    assert!(
        d.stderr_text().contains("broken.yml"),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.http("GET", "/healthz").1.trim(), "ok generation=1");
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(failures("203.0.113.20", 6).as_bytes())
        .unwrap();
    wait_for(
        "alert after rejected reload",
        Duration::from_secs(10),
        || brute_force_alerts(&d, "203.0.113.20").into_iter().next(),
    );

    // Fixed, plus a new rule: swapped in without dropping the connection.
    std::fs::remove_file(pack.join("broken.yml")).unwrap();
    std::fs::write(pack.join("marker.yml"), EXTRA_RULE).unwrap();
    d.signal("HUP");
    wait_for("generation 2", Duration::from_secs(30), || {
        (d.http("GET", "/healthz").1.trim() == "ok generation=2").then_some(())
    });
    let t = stamp();
    // An sshd line: the shipped extractor gives it the `product: linux` logsource.
    conn.write_all(format!("<38>{t} web01 sshd[1]: banner exchange: Connection from 192.0.2.1 port 1: KUZET-RELOAD-MARKER\n").as_bytes()).unwrap();
    wait_for("the new rule's alert", Duration::from_secs(10), || {
        d.alerts()
            .into_iter()
            .find(|a| a["rule"]["title"] == "Test Sudo Marker")
    });
    // The admin endpoint reloads too.
    let (status, body) = d.http("POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("generation 3"), "{body}");
    drop(conn);
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
}

#[test]
fn sigterm_delivers_what_was_read_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(failures("203.0.113.30", 8).as_bytes())
        .unwrap();
    conn.flush().unwrap();
    // Give the kernel the bytes, then stop at once: the daemon drains the socket first.
    std::thread::sleep(Duration::from_millis(50));
    let alerts = d.alerts.clone();
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
    assert!(err.contains("kuzet: 8 events"), "{err}");
    let text = std::fs::read_to_string(alerts).unwrap();
    assert!(text.contains("203.0.113.30"), "no alert in {text:?}\n{err}");
}

#[test]
fn a_restart_restores_correlation_windows() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let args = ["--state-dir", state.to_str().unwrap()];
    let d = Daemon::start(dir.path(), &args);
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(failures("203.0.113.40", 4).as_bytes())
        .unwrap();
    drop(conn);
    wait_for("4 hits", Duration::from_secs(10), || {
        (d.metric("kuzet_correlation_hits_total") >= 4.0).then_some(())
    });
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
    assert!(brute_force_alerts_in(&dir.path().join("alerts.jsonl"), "203.0.113.40").is_empty());
    // Four failures before the restart, two after: six within ten minutes.
    let d = Daemon::start(dir.path(), &args);
    assert!(d.stderr_text().contains("restored"), "{}", d.stderr_text());
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(failures("203.0.113.40", 2).as_bytes())
        .unwrap();
    let alert = wait_for(
        "the alert across the restart",
        Duration::from_secs(10),
        || brute_force_alerts(&d, "203.0.113.40").into_iter().next(),
    );
    assert_eq!(alert["count"], 6);
    drop(conn);
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
}

fn brute_force_alerts_in(path: &Path, ip: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(ip))
        .map(str::to_string)
        .collect()
}

#[test]
fn config_errors_stop_the_daemon_with_every_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[engine]\npolicy = \"forget\"\nqueue_batches = 0\n[[sink]]\ntype = \"file\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in ["engine.policy", "engine.queue_batches", "sink[0].path"] {
        assert!(err.contains(want), "{want} missing in {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(["check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("engine.policy"));
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/kuzet.example.toml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Issue 7 end to end: the example inventory names `web01` (the host in `failures`) as an
/// e-government object; its notification deadline is shortened to 1 s so the watcher's
/// escalation is seen through the sink, once, also across a restart.
#[test]
fn an_ssh_brute_force_becomes_one_incident_with_its_owner_and_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kuzet.toml");
    let inventory = dir.path().join("assets.csv");
    let example = include_str!("../assets.example.csv");
    std::fs::write(&inventory, example).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[state]\ndir = {:?}\n[stats]\ninterval = 0\n[incidents]\nassets = [{:?}]\nwatch_interval = \"100ms\"\n[incidents.regimes.egov]\nnotify_owner = \"1s\"\nremediate = \"75h\"\n",
            dir.path().join("state"),
            inventory,
        ),
    )
    .unwrap();
    let args = ["--config", cfg.to_str().unwrap()];
    let d = Daemon::start(dir.path(), &args);
    assert!(
        d.stderr_text()
            .contains("assets: 5 loaded, 0 rows rejected"),
        "{}",
        d.stderr_text()
    );
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(failures("203.0.113.50", 6).as_bytes())
        .unwrap();
    let list = |d: &Daemon| -> Vec<serde_json::Value> {
        let (status, body) = d.http("GET", "/incidents?class=egov");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["incidents"].as_array().unwrap().clone()
    };
    let inc = wait_for("the incident", Duration::from_secs(10), || {
        list(&d).into_iter().next()
    });
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["object_class"], "egov");
    assert_eq!(inc["organisation"], "E-Gov Operator JSC");
    assert_eq!(inc["group"]["src_ip"], "203.0.113.50");
    let dl = &inc["data_list"];
    assert_eq!(
        dl["incident_type"]["title"],
        "SSH Brute Force From One Source"
    );
    let owner = &dl["affected_objects"][0]["asset"];
    assert_eq!(owner["responsible"], "Nurlanov, B.");
    assert_eq!(owner["room"], "204");
    assert_eq!(dl["sources"][0]["value"], "203.0.113.50");
    assert_eq!(dl["accounts"][0], "root");
    assert_eq!(dl["evidence"].as_array().unwrap().len(), 6);
    assert!(
        dl["recommendations"][0]
            .as_str()
            .unwrap()
            .contains("Block the source")
    );
    let at = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let detected = at(&inc["detected_at"]);
    let steps: Vec<(String, i64)> = inc["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let s = x["step"].as_str().unwrap().to_string();
            (s, at(&x["due"]).duration_since(detected).as_secs())
        })
        .collect();
    assert_eq!(
        steps,
        [("notify_owner".into(), 1), ("remediate".into(), 75 * 3600)]
    );
    // The alert itself carries the assets it names.
    let alert = brute_force_alerts(&d, "203.0.113.50").remove(0);
    assert_eq!(alert["assets"]["target"][0]["asset"]["class"], "egov");
    // More of the same attack: the same incident.
    conn.write_all(failures("203.0.113.50", 6).as_bytes())
        .unwrap();
    wait_for("the merge", Duration::from_secs(10), || {
        (d.metric("kuzet_correlation_hits_total") >= 12.0).then_some(())
    });
    // Nobody acknowledged within 1 s: one escalation alert through the sink.
    let escalations = |d: &Daemon| -> Vec<serde_json::Value> {
        d.alerts()
            .into_iter()
            .filter(|a| a["rule"]["type"] == "escalation")
            .collect()
    };
    let esc = wait_for("the escalation", Duration::from_secs(10), || {
        escalations(&d).into_iter().next()
    });
    assert_eq!(esc["group"]["incident"], inc["id"]);
    assert_eq!(esc["group"]["step"], "notify_owner");
    assert_eq!(list(&d).len(), 1, "merged, not a second incident");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(escalations(&d).len(), 1);
    drop(conn);
    let (ok, err) = d.stop();
    assert!(ok, "{err}");

    // After a restart: the incident is still there, the escalation is not repeated, and
    // acknowledging records the actor.
    let d = Daemon::start(dir.path(), &args);
    let again = list(&d);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["id"], inc["id"]);
    assert_eq!(again[0]["escalations"].as_array().unwrap().len(), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(escalations(&d).len(), 1);
    let id = inc["id"].as_str().unwrap();
    let (status, body) = d.http_with(
        "POST",
        &format!("/incidents/{id}/ack"),
        "X-Kuzet-Actor: duty-officer\r\n",
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "notified");
    assert_eq!(
        v["history"].as_array().unwrap().last().unwrap()["actor"],
        "duty-officer"
    );

    // The inventory reloads on SIGHUP: a new responsible person, and a malformed row that is
    // reported with its line while the others load.
    let changed =
        example.replace("\"Nurlanov, B.\"", "K. Abenova") + "broken,,10.0.0.999,,,,,,,,,egov\n";
    std::fs::write(&inventory, changed).unwrap();
    d.signal("HUP");
    wait_for("the reloaded inventory", Duration::from_secs(30), || {
        d.stderr_text()
            .contains("assets: 5 loaded, 1 rows rejected")
            .then_some(())
    });
    assert!(
        d.stderr_text().contains("assets.csv:10: ip \"10.0.0.999\""),
        "{}",
        d.stderr_text()
    );
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(failures("203.0.113.51", 6).as_bytes())
        .unwrap();
    let fresh = wait_for("the second incident", Duration::from_secs(10), || {
        list(&d)
            .into_iter()
            .find(|i| i["group"]["src_ip"] == "203.0.113.51")
    });
    assert_eq!(
        fresh["data_list"]["affected_objects"][0]["asset"]["responsible"],
        "K. Abenova"
    );
    drop(conn);
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
}

/// Issue 7's operator page, in headless Chromium against the real daemon: an attack sent
/// over TCP appears with its owner and a running countdown; typing a name and clicking
/// "Acknowledge" makes it `notified`, recorded with that name.
#[test]
fn the_operators_page_shows_an_attack_and_acknowledging_changes_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kuzet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[stats]\ninterval = 0\n[incidents]\nassets = [{:?}]\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/assets.example.csv"),
        ),
    )
    .unwrap();
    let d = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let browser = cdp::Browser::start();
    let mut page = browser.open(&format!("http://{}/", d.admin));
    let limit = Duration::from_secs(20);
    page.wait_for(
        "the empty list",
        "document.getElementById('empty') && !document.getElementById('empty').hidden",
        limit,
    );
    let mut conn = TcpStream::connect(d.tcp).unwrap();
    conn.write_all(failures("203.0.113.60", 6).as_bytes())
        .unwrap();
    let id = page.wait_for(
        "the incident on the page",
        "document.querySelector('article[data-incident]')?.dataset.incident",
        limit,
    );
    let text = page
        .eval("document.querySelector('article').innerText")
        .as_str()
        .unwrap()
        .to_string();
    for want in [
        "SSH Brute Force From One Source",
        "egov",
        "E-Gov Operator JSC",
        "Nurlanov, B.",
        "notify_owner",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    // The countdown runs: 30 minutes, less the seconds since detection.
    let countdown = page.wait_for(
        "the countdown",
        "document.querySelector('.countdown')?.textContent",
        limit,
    );
    assert!(
        countdown.as_str().unwrap().starts_with("in 00:2"),
        "{countdown}"
    );
    // Engine health from the metrics.
    page.wait_for(
        "the health line",
        "Number(document.getElementById('h-alerts').textContent) >= 1",
        limit,
    );
    assert_eq!(
        page.eval("document.querySelector('article').dataset.status"),
        "open"
    );
    page.type_into("#actor", "duty-officer");
    page.click("article button.ack");
    page.wait_for(
        "the acknowledged state",
        "document.querySelector('article')?.dataset.status === 'notified'",
        limit,
    );
    assert_eq!(
        page.eval("document.querySelectorAll('article button.ack').length"),
        0
    );
    let (status, body) = d.http("GET", &format!("/incidents/{}", id.as_str().unwrap()));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "notified");
    assert_eq!(v["history"][1]["actor"], "duty-officer");
    assert_eq!(v["history"][1]["step"], "notify_owner");
    drop(page);
    drop(browser);
    drop(conn);
    let (ok, err) = d.stop();
    assert!(ok, "{err}");
}
