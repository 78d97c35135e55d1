//! `kuzet report --from DATE --to DATE [--format csv|json|md]`: the periodic summary the
//! regulation asks for, read from the incident database (`<state.dir>/incidents.sqlite3`,
//! opened read only, so it runs beside the daemon).
//!
//! Incidents count in the period they were detected in. `--from` is inclusive; `--to` is
//! exclusive when it is a time and inclusive when it is a date (the whole day). A deadline
//! counts as missed when its step was done after it, or is still not done when the report
//! runs. Times are in seconds.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::CliError;
use crate::incident::api::parse_when;
use crate::incident::model::{Incident, Status, ms_rfc3339};
use crate::incident::store::{FILE_NAME, Filter, Store};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD) or time (RFC 3339) of the period.
    #[arg(long)]
    pub from: String,
    /// Last day (inclusive) or end time (exclusive) of the period.
    #[arg(long)]
    pub to: String,
    /// csv, json or md.
    #[arg(long, default_value = "md")]
    pub format: String,
    /// The daemon's state directory (holds incidents.sqlite3).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Read the state directory from this daemon config.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Mean and worst of a set of durations.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Times {
    /// Incidents measured (those that reached the step).
    pub count: u64,
    pub mean_seconds: Option<f64>,
    pub worst_seconds: Option<f64>,
    /// The incident with the worst time.
    pub worst_incident: Option<String>,
}

impl Times {
    fn add(&mut self, id: &str, ms: i64) {
        let secs = ms as f64 / 1000.0;
        let mean = self.mean_seconds.unwrap_or(0.0);
        self.count += 1;
        self.mean_seconds = Some(mean + (secs - mean) / self.count as f64);
        if self.worst_seconds.is_none_or(|w| secs > w) {
            self.worst_seconds = Some(secs);
            self.worst_incident = Some(id.to_string());
        }
    }
}

/// A missed deadline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Missed {
    pub incident: String,
    pub object_class: String,
    pub organisation: String,
    pub step: String,
    pub due: String,
    /// When the step was done (late), or `null` when it still is not.
    pub done_at: Option<String>,
}

/// The summary.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub incidents: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_object_class: BTreeMap<String, u64>,
    pub by_organisation: BTreeMap<String, u64>,
    /// `rule id — title` → count.
    pub by_rule: BTreeMap<String, u64>,
    pub by_level: BTreeMap<String, u64>,
    pub self_detected: u64,
    pub detection_to_notification: Times,
    pub detection_to_resolution: Times,
    /// Missed deadlines by step.
    pub deadlines_missed: BTreeMap<String, u64>,
    pub missed: Vec<Missed>,
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "(unknown)".into()
    } else {
        s.to_string()
    }
}

/// Summarises incidents detected in `[from, to)`; `now` decides which open steps are missed.
pub fn summarize(incidents: &[Incident], from: i64, to: i64, now: i64) -> Report {
    let mut r = Report {
        from: ms_rfc3339::format(from),
        to: ms_rfc3339::format(to),
        ..Report::default()
    };
    for inc in incidents
        .iter()
        .filter(|i| (from..to).contains(&i.detected_at))
    {
        r.incidents += 1;
        let it = &inc.data_list.incident_type;
        *r.by_status.entry(inc.status.name().into()).or_default() += 1;
        *r.by_object_class
            .entry(or_unknown(&inc.object_class))
            .or_default() += 1;
        *r.by_organisation
            .entry(or_unknown(&inc.organisation))
            .or_default() += 1;
        *r.by_rule
            .entry(format!("{} — {}", it.rule_id, it.title))
            .or_default() += 1;
        *r.by_level.entry(it.level.clone()).or_default() += 1;
        if inc.self_detected {
            r.self_detected += 1;
        }
        if let Some(n) = inc.notified_at {
            r.detection_to_notification
                .add(&inc.id, n - inc.detected_at);
        }
        if inc.status == Status::Resolved
            && let Some(t) = inc.resolved_at
        {
            r.detection_to_resolution.add(&inc.id, t - inc.detected_at);
        }
        for d in &inc.deadlines {
            // A false positive needs no remediation, and a closed incident no more steps.
            let moot = inc.status.is_closed() && d.done_at.is_none();
            if !moot && d.missed(now) {
                *r.deadlines_missed.entry(d.step.clone()).or_default() += 1;
                r.missed.push(Missed {
                    incident: inc.id.clone(),
                    object_class: or_unknown(&inc.object_class),
                    organisation: or_unknown(&inc.organisation),
                    step: d.step.clone(),
                    due: ms_rfc3339::format(d.due),
                    done_at: d.done_at.map(ms_rfc3339::format),
                });
            }
        }
    }
    r
}

fn fmt_secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.0}")).unwrap_or_default()
}

/// CSV: `section,key,value` rows, then one row per missed deadline.
pub fn write_csv(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut row = |a: &str, b: &str, c: &str| w.write_record([a, b, c]);
    row("section", "key", "value")?;
    row("period", "from", &r.from)?;
    row("period", "to", &r.to)?;
    row("total", "incidents", &r.incidents.to_string())?;
    row("total", "self_detected", &r.self_detected.to_string())?;
    for (section, m) in [
        ("by_status", &r.by_status),
        ("by_object_class", &r.by_object_class),
        ("by_organisation", &r.by_organisation),
        ("by_rule", &r.by_rule),
        ("by_level", &r.by_level),
        ("deadlines_missed", &r.deadlines_missed),
    ] {
        for (k, v) in m {
            row(section, k, &v.to_string())?;
        }
    }
    for (section, t) in [
        ("detection_to_notification", &r.detection_to_notification),
        ("detection_to_resolution", &r.detection_to_resolution),
    ] {
        row(section, "count", &t.count.to_string())?;
        row(section, "mean_seconds", &fmt_secs(t.mean_seconds))?;
        row(section, "worst_seconds", &fmt_secs(t.worst_seconds))?;
        row(
            section,
            "worst_incident",
            t.worst_incident.as_deref().unwrap_or(""),
        )?;
    }
    for m in &r.missed {
        row(
            "missed",
            &format!("{} {}", m.incident, m.step),
            &format!(
                "due {} done {}",
                m.due,
                m.done_at.as_deref().unwrap_or("never")
            ),
        )?;
    }
    w.flush()
}

/// Markdown tables.
pub fn write_md(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "# Incidents {} – {}\n", r.from, r.to)?;
    writeln!(
        out,
        "{} incidents ({} self-detected).\n",
        r.incidents, r.self_detected
    )?;
    for (title, m) in [
        ("By status", &r.by_status),
        ("By object class", &r.by_object_class),
        ("By organisation", &r.by_organisation),
        ("By rule", &r.by_rule),
        ("By level", &r.by_level),
        ("Deadlines missed", &r.deadlines_missed),
    ] {
        writeln!(out, "## {title}\n\n| | count |\n|---|---|")?;
        for (k, v) in m {
            writeln!(out, "| {} | {v} |", k.replace('|', "\\|"))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "## Times from detection\n\n| to | incidents | mean (s) | worst (s) | worst incident |\n|---|---|---|---|---|"
    )?;
    for (what, t) in [
        ("notification", &r.detection_to_notification),
        ("resolution", &r.detection_to_resolution),
    ] {
        writeln!(
            out,
            "| {what} | {} | {} | {} | {} |",
            t.count,
            fmt_secs(t.mean_seconds),
            fmt_secs(t.worst_seconds),
            t.worst_incident.as_deref().unwrap_or("")
        )?;
    }
    if !r.missed.is_empty() {
        writeln!(
            out,
            "\n## Missed deadlines\n\n| incident | class | organisation | step | due | done |\n|---|---|---|---|---|---|"
        )?;
        for m in &r.missed {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                m.incident,
                m.object_class,
                m.organisation,
                m.step,
                m.due,
                m.done_at.as_deref().unwrap_or("not done")
            )?;
        }
    }
    Ok(())
}

/// The period's bounds in ms: a date `--to` includes that day.
fn period(from: &str, to: &str) -> Result<(i64, i64), CliError> {
    let bad = |flag: &str, v: &str| {
        CliError::Usage(format!(
            "--{flag} {v:?}: a date (YYYY-MM-DD) or an RFC 3339 time"
        ))
    };
    let f = parse_when(from).ok_or_else(|| bad("from", from))?;
    let mut t = parse_when(to).ok_or_else(|| bad("to", to))?;
    if ms_rfc3339::parse(to).is_none() {
        t += 86_400_000;
    }
    if t <= f {
        return Err(CliError::Usage(format!(
            "--to {to} is not after --from {from}"
        )));
    }
    Ok((f, t))
}

pub fn run(a: ReportArgs) -> Result<ExitCode, CliError> {
    let (from, to) = period(&a.from, &a.to)?;
    if !matches!(a.format.as_str(), "csv" | "json" | "md") {
        return Err(CliError::Usage(format!(
            "--format {:?}: csv, json or md",
            a.format
        )));
    }
    let dir = match (&a.state_dir, &a.config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => crate::config::Config::load(c)
            .map_err(|e| {
                CliError::Usage(
                    e.iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?
            .state
            .dir
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{}: no [state] dir, so no incident database",
                    c.display()
                ))
            })?,
        (None, None) => {
            return Err(CliError::Usage(
                "where is the incident database? give --state-dir or --config".into(),
            ));
        }
    };
    let file = dir.join(FILE_NAME);
    if !file.exists() {
        return Err(CliError::Io {
            path: file.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no incident database"),
        });
    }
    let store = Store::open_read_only(&file).map_err(|e| CliError::Usage(e.to_string()))?;
    let list = store
        .list(&Filter {
            since: Some(from),
            until: Some(to),
            limit: i64::MAX as usize,
            ..Filter::default()
        })
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let now = crate::event::Timestamp::now().0 / 1_000_000;
    let r = summarize(&list, from, to, now);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let io = |source| CliError::Io {
        path: "stdout".into(),
        source,
    };
    match a.format.as_str() {
        "json" => {
            serde_json::to_writer_pretty(&mut out, &r).map_err(|e| io(e.into()))?;
            writeln!(out).map_err(io)?;
        }
        "csv" => write_csv(&r, &mut out).map_err(io)?,
        _ => write_md(&r, &mut out).map_err(io)?,
    }
    out.flush().map_err(io)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_take_dates_whole_and_times_exactly() {
        let (f, t) = period("2026-01-01", "2026-03-31").unwrap();
        assert_eq!(ms_rfc3339::format(f), "2026-01-01T00:00:00Z");
        assert_eq!(ms_rfc3339::format(t), "2026-04-01T00:00:00Z");
        let (_, t) = period("2026-01-01", "2026-03-31T12:00:00Z").unwrap();
        assert_eq!(ms_rfc3339::format(t), "2026-03-31T12:00:00Z");
        assert!(period("2026-03-31", "2026-01-01").is_err());
        assert!(period("yesterday", "2026-01-01").is_err());
    }
}
