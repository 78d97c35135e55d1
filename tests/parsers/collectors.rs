//! Sample files as the collectors people run write them (`tests/data/collectors/`), read the
//! way `kuzet parse FILE` reads them: every line must parse with no error, in the expected
//! outer format, with a time (and a hostname, for syslog), and chosen lines must yield the
//! fields a rule would use.
//!
//! How each sample was shaped (the templates are quoted from the collectors' documentation):
//!
//! | file | producer and template |
//! |------|-----------------------|
//! | `rsyslog-traditional-file.log` | rsyslog `RSYSLOG_TraditionalFileFormat`: `%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\n` (Debian's default) |
//! | `rsyslog-file.log` | rsyslog `RSYSLOG_FileFormat`: the same with `timereported` as RFC 3339 (microseconds, local offset) |
//! | `rsyslog-traditional-forward.log` | rsyslog `RSYSLOG_TraditionalForwardFormat`: `<%PRI%>%TIMESTAMP% %HOSTNAME% %syslogtag:1:32%%msg:::sp-if-no-1st-sp%%msg%` (a tag longer than 32 bytes is cut) |
//! | `rsyslog-forward.log` | rsyslog `RSYSLOG_ForwardFormat`: the same with `%TIMESTAMP:::date-rfc3339%` |
//! | `rsyslog-protocol23.log` | rsyslog `RSYSLOG_SyslogProtocol23Format`: `<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%\n`; MSG of BSD origin keeps its leading space (rsyslog issue #160) |
//! | `syslog-ng-syslog.log` | syslog-ng `syslog()` destination: RFC 5424 with `[meta sequenceId="N"]` appended to the SD (octet-counted on the wire; here the messages alone) |
//! | `syslog-ng-network.log` | syslog-ng `network()` destination: `<PRI>BSDDATE HOST MSGHDRMSG` |
//! | `nxlog-bsd.log` | NXLog `to_syslog_bsd()` of Windows events: `SourceName[ProcessID]:`, spaces in the source name as `_`; CRLF line ends (om_file on Windows) |
//! | `nxlog-ietf.log` | NXLog `to_syslog_ietf()`: every other field as `[NXLOG@14506 ...]` params |
//! | `nxlog-json.log` | NXLog `to_json()` of `im_msvistalog` events: `EventTime` is local time without a zone |
//! | `winlogbeat.log` | Winlogbeat 8 ECS JSON (`winlog.event_id` a string), and Winlogbeat 7 through Logstash (`@version`, numeric `event_id`) |
//! | `fluentbit.log` | Fluent Bit `syslog-rfc3164` / `syslog-rfc5424` parsers, `json_lines` output (`date` as epoch seconds) |
//! | `vector.log` | Vector `syslog` source, JSON codec (legacy namespace: SD elements as objects) |
//! | `evtx_dump.log` | `evtx_dump -o jsonl` (omerbenamram/evtx) of Security 4625 and 4624 |

use super::support::{config, frames, parse_with, ts};
use kuzet::event::FieldTable;
use serde_json::Value;

/// When the files were "read": the year rule resolves their year-less stamps against it
/// (not the checkout's modification time, which would move the expected years).
const READ_AT: &str = "2024-03-10T12:05:00Z";

struct Sample {
    file: &'static str,
    /// Input format override.
    format: &'static str,
    tz: &'static str,
    /// JSON time fields, when the default list does not hold the producer's.
    time_fields: &'static [&'static str],
    /// `$format` of every line.
    outer: &'static str,
    lines: usize,
    /// (1-based line number, fields as in the parser tables).
    checks: &'static [(usize, &'static [(&'static str, &'static str)])],
}

const fn sample(file: &'static str, outer: &'static str, lines: usize) -> Sample {
    Sample {
        file,
        format: "auto",
        tz: "UTC",
        time_fields: &[],
        outer,
        lines,
        checks: &[],
    }
}

impl Sample {
    const fn checks(
        self,
        checks: &'static [(usize, &'static [(&'static str, &'static str)])],
    ) -> Sample {
        Sample { checks, ..self }
    }
    const fn tz(self, tz: &'static str) -> Sample {
        Sample { tz, ..self }
    }
    const fn time_fields(self, time_fields: &'static [&'static str]) -> Sample {
        Sample {
            time_fields,
            ..self
        }
    }
}

static SAMPLES: &[Sample] = &[
    sample("rsyslog-traditional-file.log", "rfc3164", 12).checks(&[
        (
            1,
            &[
                ("timestamp", r#""2024-03-10T11:58:01Z""#),
                ("hostname", r#""web1""#),
                ("appname", r#""CRON""#),
                ("procid", r#""20816""#),
            ],
        ),
        (
            2,
            &[
                ("appname", r#""sshd""#),
                ("procid", r#""20901""#),
                (
                    "message",
                    r#""Failed password for invalid user admin from 203.0.113.50 port 40022 ssh2""#,
                ),
            ],
        ),
        (
            6,
            &[
                ("appname", r#""sudo""#),
                (
                    "message",
                    r#""   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx""#,
                ),
                ("$payload", "null"),
            ],
        ),
        (
            8,
            &[
                ("appname", r#""kernel""#),
                ("SRC", r#""203.0.113.9""#),
                ("DST", r#""192.0.2.10""#),
                ("DPT", r#""23""#),
                ("OUT", r#""""#),
                ("$payload", r#""kv""#),
            ],
        ),
        (
            9,
            &[
                ("appname", r#""nginx""#),
                (
                    "message",
                    r#""192.0.2.7 - - [10/Mar/2024:11:59:58 +0000] \"GET /index.html HTTP/1.1\" 200 615 \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0\"""#,
                ),
                ("$payload", "null"),
            ],
        ),
        (11, &[("timestamp", r#""2024-03-09T23:17:01Z""#)]),
        (
            12,
            &[("appname", r#""postfix/smtpd""#), ("procid", r#""3021""#)],
        ),
    ]),
    sample("rsyslog-file.log", "rfc3164", 6).checks(&[
        (
            1,
            &[
                ("timestamp", r#""2024-03-10T11:59:02.118204Z""#),
                ("appname", r#""sshd""#),
            ],
        ),
        (
            3,
            &[
                ("timestamp", r#""2024-03-10T11:59:41.007851Z""#),
                ("hostname", r#""web2""#),
                ("appname", r#""sudo""#),
            ],
        ),
        (
            4,
            &[
                ("SRC", r#""203.0.113.9""#),
                ("DPT", r#""3389""#),
                ("$payload", r#""kv""#),
            ],
        ),
        // rsyslog writes two spaces after its own tag (rsyslog issue #2979).
        (
            6,
            &[
                ("appname", r#""rsyslogd""#),
                (
                    "message",
                    r#"" [origin software=\"rsyslogd\" swVersion=\"8.2312.0\" x-pid=\"812\" x-info=\"https://www.rsyslog.com\"] rsyslogd was HUPed""#,
                ),
            ],
        ),
    ]),
    sample("rsyslog-traditional-forward.log", "rfc3164", 6).checks(&[
        (
            1,
            &[
                ("facility", "10"),
                ("severity", "6"),
                ("appname", r#""sshd""#),
                ("timestamp", r#""2024-03-10T11:59:02Z""#),
            ],
        ),
        (2, &[("severity", "5"), ("appname", r#""sudo""#)]),
        (
            3,
            &[
                ("facility", "0"),
                ("severity", "4"),
                ("SRC", r#""203.0.113.9""#),
            ],
        ),
        (4, &[("facility", "23"), ("appname", r#""nginx""#)]),
        // `%syslogtag:1:32%` cut the tag: no tag is recognised, nothing is lost.
        (
            5,
            &[
                ("hostname", r#""web1""#),
                (
                    "message",
                    r#""systemd-networkd-wait-online[612 Timeout occurred while waiting for network connectivity.""#,
                ),
            ],
        ),
        (
            6,
            &[
                ("facility", "9"),
                ("timestamp", r#""2024-03-09T23:17:01Z""#),
            ],
        ),
    ]),
    sample("rsyslog-forward.log", "rfc3164", 5).checks(&[
        (
            2,
            &[
                ("timestamp", r#""2024-03-10T11:59:30.512233Z""#),
                ("hostname", r#""ast1""#),
                ("appname", r#""sshd""#),
                ("procid", r#""20950""#),
            ],
        ),
        (4, &[("SRC", r#""203.0.113.9""#), ("DPT", r#""3389""#)]),
    ]),
    sample("rsyslog-protocol23.log", "rfc5424", 6).checks(&[
        (
            1,
            &[
                ("appname", r#""sshd""#),
                ("procid", r#""20901""#),
                ("msgid", super::ABSENT),
                (
                    "message",
                    r#"" Failed password for invalid user admin from 203.0.113.50 port 40022 ssh2""#,
                ),
            ],
        ),
        (
            3,
            &[
                ("appname", r#""kernel""#),
                ("SRC", r#""203.0.113.9""#),
                ("$payload", r#""kv""#),
            ],
        ),
        (4, &[("appname", r#""alice""#), ("message", r#"" test123""#)]),
        (
            5,
            &[
                ("user", r#""bob""#),
                ("action", r#""login_failed""#),
                ("src_ip", r#""203.0.113.77""#),
                ("$payload", r#""json""#),
            ],
        ),
        (
            6,
            &[
                ("exampleSDID@32473.eventID", r#""1011""#),
                ("msgid", r#""ID47""#),
            ],
        ),
    ]),
    sample("syslog-ng-syslog.log", "rfc5424", 4).checks(&[
        (
            1,
            &[
                ("meta.sequenceId", r#""1""#),
                ("appname", r#""sshd""#),
                ("procid", r#""20950""#),
                ("timestamp", r#""2024-03-10T11:59:30Z""#),
            ],
        ),
        (
            2,
            &[
                ("meta.sequenceId", r#""2""#),
                ("timestamp", r#""2024-03-10T11:59:41Z""#),
                (
                    "message",
                    r#""   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id""#,
                ),
            ],
        ),
        (
            3,
            &[
                ("appname", r#""syslog-ng""#),
                ("message", r#""syslog-ng starting up; version='4.5.0'""#),
            ],
        ),
        (
            4,
            &[
                ("exampleSDID@32473.iut", r#""3""#),
                ("meta.sequenceId", r#""4""#),
                ("procid", r#""77""#),
            ],
        ),
    ]),
    sample("syslog-ng-network.log", "rfc3164", 4).checks(&[
        (
            1,
            &[
                ("facility", "10"),
                ("appname", r#""sshd""#),
                ("procid", r#""20950""#),
            ],
        ),
        (3, &[("timestamp", r#""2024-03-09T23:17:01Z""#)]),
        (
            4,
            &[("appname", r#""syslog-ng""#), ("procid", r#""7120""#)],
        ),
    ]),
    sample("nxlog-bsd.log", "rfc3164", 3).checks(&[
        (
            1,
            &[
                ("hostname", r#""WIN-DC01.corp.example.com""#),
                ("appname", r#""Microsoft-Windows-Security-Auditing""#),
                ("procid", r#""640""#),
                ("$payload", "null"),
            ],
        ),
        (
            2,
            &[
                ("appname", r#""Service_Control_Manager""#),
                (
                    "message",
                    r#""The Windows Update service entered the running state.""#,
                ),
            ],
        ),
        (
            3,
            &[
                ("facility", "1"),
                ("severity", "3"),
                ("timestamp", r#""2024-03-09T23:59:59Z""#),
            ],
        ),
    ]),
    sample("nxlog-ietf.log", "rfc5424", 2).checks(&[
        (
            1,
            &[
                ("appname", r#""Microsoft-Windows-Security-Auditing""#),
                ("procid", r#""640""#),
                ("NXLOG@14506.EventID", r#""4625""#),
                ("NXLOG@14506.Keywords", r#""-9214364837600034816""#),
                ("NXLOG@14506.TargetUserName", r#""administrator""#),
                ("NXLOG@14506.IpAddress", r#""203.0.113.50""#),
                ("message", r#""An account failed to log on.""#),
                ("timestamp", r#""2024-03-10T11:59:59.482113Z""#),
            ],
        ),
        (
            2,
            &[
                ("appname", super::ABSENT),
                (
                    "NXLOG@14506.FileName",
                    r#""C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex240310.log""#,
                ),
                ("$payload", "null"),
            ],
        ),
    ]),
    sample("nxlog-json.log", "json", 2)
        .tz("Europe/Berlin")
        .checks(&[
            (
                1,
                &[
                    ("EventID", "4625"),
                    ("Keywords", "-9214364837600034816"),
                    ("Hostname", r#""WIN-DC01.corp.example.com""#),
                    ("Channel", r#""Security""#),
                    ("SourceName", r#""Microsoft-Windows-Security-Auditing""#),
                    ("TargetUserName", r#""administrator""#),
                    ("LogonType", r#""3""#),
                    ("$time", r#""2024-03-10T11:59:59Z""#),
                ],
            ),
            (
                2,
                &[
                    ("EventID", "4624"),
                    ("ProcessName", r#""C:\\Windows\\System32\\svchost.exe""#),
                    ("$time", r#""2024-03-10T12:00:01Z""#),
                ],
            ),
        ]),
    sample("winlogbeat.log", "json", 2).checks(&[
        (
            1,
            &[
                ("winlog.event_id", r#""4625""#),
                ("event.code", r#""4625""#),
                ("winlog.channel", r#""Security""#),
                ("winlog.keywords", r#""Audit Failure""#),
                ("winlog.process.pid", "640"),
                ("winlog.event_data.IpAddress", r#""203.0.113.50""#),
                ("winlog.event_data.TargetUserName", r#""administrator""#),
                ("EventID", r#""4625""#),
                ("Channel", r#""Security""#),
                ("IpAddress", r#""203.0.113.50""#),
                ("TargetUserName", r#""administrator""#),
                ("event.category", r#""authentication""#),
                ("host.name", r#""WIN-DC01.corp.example.com""#),
                ("$time", r#""2024-03-10T11:59:59.482Z""#),
            ],
        ),
        (
            2,
            &[
                ("winlog.event_id", "4624"),
                ("EventID", "4624"),
                ("Computer", r#""WIN-DC01.corp.example.com""#),
                ("LogonType", r#""10""#),
                ("event.code", "4624"),
                ("@version", r#""1""#),
                ("tags", r#""beats_input_codec_plain_applied""#),
                ("$time", r#""2024-03-10T12:00:01.007Z""#),
            ],
        ),
    ]),
    // Fluent Bit's `date` is not among the default time fields: the input names it.
    sample("fluentbit.log", "json", 2)
        .time_fields(&["date"])
        .checks(&[
            (
                1,
                &[
                    ("ident", r#""sshd""#),
                    ("pid", r#""20901""#),
                    ("host", r#""web1""#),
                    ("$time", r#""2024-03-10T11:59:59.500Z""#),
                ],
            ),
            (
                2,
                &[
                    ("extradata", r#""[meta sequenceId=\"7\"]""#),
                    ("message", r#""user login ok""#),
                    ("$time", r#""2024-03-10T12:00:00Z""#),
                ],
            ),
        ]),
    sample("vector.log", "json", 2).checks(&[
        (
            1,
            &[
                ("appname", r#""sshd""#),
                ("facility", r#""authpriv""#),
                ("severity", r#""info""#),
                ("procid", "20901"),
                ("hostname", r#""web1""#),
                ("$time", r#""2024-03-10T11:59:02Z""#),
            ],
        ),
        (
            2,
            &[
                ("exampleSDID@32473.eventID", r#""1011""#),
                ("version", "1"),
                ("$time", r#""2024-03-10T12:00:01.003Z""#),
            ],
        ),
    ]),
    sample("evtx_dump.log", "json", 2).checks(&[
        (
            1,
            &[
                ("EventID", "4625"),
                ("Channel", r#""Security""#),
                ("TargetUserName", r#""administrator""#),
                ("IpAddress", r#""203.0.113.50""#),
                ("LogonType", "3"),
                ("Status", r#""0xc000006d""#),
                ("$time", r#""2024-03-10T11:59:59.482113Z""#),
            ],
        ),
        (
            2,
            &[
                ("EventID", "4624"),
                (
                    "Correlation_ActivityID",
                    r#""F0C6C0A1-72E1-0001-2AC1-C6F0E172DA01""#,
                ),
                ("$time", r#""2024-03-10T12:00:01.007391Z""#),
            ],
        ),
    ]),
];

#[test]
fn collector_samples() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/collectors");
    // Every file in the folder has its entry, so a new sample cannot go untested.
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/data/collectors")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|s| s.file.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "samples on disk vs. listed in SAMPLES");

    let mut failures = Vec::new();
    for s in SAMPLES {
        let data = std::fs::read(format!("{dir}/{}", s.file)).unwrap();
        let lines = frames(&data);
        if lines.len() != s.lines {
            failures.push(format!(
                "{}: {} lines, want {}",
                s.file,
                lines.len(),
                s.lines
            ));
        }
        for (n, line) in lines.iter().enumerate() {
            let n = n + 1;
            let mut cfg = config(s.format, s.tz);
            if !s.time_fields.is_empty() {
                cfg.time_fields = s.time_fields.iter().map(|f| f.to_string()).collect();
            }
            let p = parse_with(line, cfg, FieldTable::new(), ts(READ_AT));
            let mut problems = Vec::new();
            if let Some(e) = p.error {
                problems.push(format!("error {e}"));
            }
            if p.format.name() != s.outer {
                problems.push(format!("format {}, want {}", p.format.name(), s.outer));
            }
            if p.time.is_none() {
                problems.push("no event time".into());
            }
            if s.outer.starts_with("rfc") && !p.fields.contains_key("hostname") {
                problems.push("no hostname".into());
            }
            if p.fields
                .values()
                .any(|v| v.as_str().is_some_and(|s| s.ends_with('\r')))
            {
                problems.push("a value ends in CR".into());
            }
            for (_, fields) in s.checks.iter().filter(|(l, _)| *l == n) {
                problems.extend(super::support::compare(&p, fields));
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{}:{n}: {}\n    output: {}",
                    s.file,
                    problems.join("; "),
                    p.rendered
                ));
            }
        }
        for (l, _) in s.checks {
            if *l > lines.len() {
                failures.push(format!("{}: check for missing line {l}", s.file));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A year-less line of the traditional file format dated 31 December and read on New Year's
/// Day lands in the year before (the reference is the read time, or the file's mtime).
#[test]
fn collector_samples_read_in_january() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/collectors");
    let data = std::fs::read(format!("{dir}/rsyslog-traditional-file.log")).unwrap();
    let line = frames(&data).remove(0);
    // Rewrite "Mar 10" to "Dec 31" and read it on 1 January.
    let line = String::from_utf8(line)
        .unwrap()
        .replacen("Mar 10", "Dec 31", 1);
    let p = parse_with(
        line.as_bytes(),
        config("auto", "UTC"),
        FieldTable::new(),
        ts("2025-01-01T00:10:00Z"),
    );
    assert_eq!(
        p.fields["timestamp"],
        Value::String("2024-12-31T11:58:01Z".into()),
        "{}",
        p.rendered
    );
}
