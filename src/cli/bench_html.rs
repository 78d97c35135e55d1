//! `kuzet bench --report FILE.html`: one self-contained page (inline SVG and CSS, no script,
//! no external assets) with throughput over time and the receive → alert latency
//! distribution of each run, and the result table. Charts are drawn here, by hand: a line
//! chart and a bar chart are a few dozen lines of SVG, not worth a dependency.

use std::fmt::Write as _;

use super::bench::RunResult;

/// Percentiles of the latency chart.
pub const PERCENTILES: [f64; 7] = [50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0];

const W: f64 = 720.0;
const H: f64 = 260.0;
const PAD: f64 = 48.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// `&`, `<`, `>`, `"` escaped for HTML text and attributes.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round number ≥ v for an axis maximum.
fn nice(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|x| *x >= v)
        .unwrap_or(10.0 * p)
}

fn axes(o: &mut String, title: &str, ymax: f64, ylabel: &str, xlabel: &str) {
    let _ = write!(
        o,
        r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title><line x1="{PAD}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{b}" stroke="#444"/><text x="{PAD}" y="20" font-size="14" font-weight="bold">{t}</text><text x="{r}" y="{xl}" font-size="11" text-anchor="end">{x}</text><text x="4" y="{yl}" font-size="11">{y}</text>"##,
        t = esc(title),
        b = H - PAD,
        r = W - 10.0,
        xl = H - 8.0,
        yl = PAD - 8.0,
        x = esc(xlabel),
        y = esc(ylabel),
    );
    for k in 0..=4 {
        let v = ymax * k as f64 / 4.0;
        let y = H - PAD - (H - 2.0 * PAD) * k as f64 / 4.0;
        let _ = write!(
            o,
            r##"<line x1="{PAD}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" font-size="10" text-anchor="end">{v}</text>"##,
            r = W - 10.0,
            tx = PAD - 4.0,
            ty = y + 3.0,
            v = fmt_num(v)
        );
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Lines of (x, y) points, one per series, on shared axes.
pub fn line_chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let xmax = nice(
        series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.0))
            .fold(0.0, f64::max),
    );
    let ymax = nice(
        series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let mut o = String::new();
    axes(&mut o, title, ymax, ylabel, xlabel);
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    PAD + (W - PAD - 10.0) * x / xmax,
                    H - PAD - (H - 2.0 * PAD) * y / ymax
                )
            })
            .collect();
        let _ = write!(
            o,
            r#"<polyline class="series" fill="none" stroke="{c}" stroke-width="1.5" points="{}"/><text x="{:.0}" y="{:.0}" font-size="11" fill="{c}">{}</text>"#,
            path.join(" "),
            W - 200.0,
            PAD + 14.0 * i as f64,
            esc(name)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{PAD}" y="{:.0}" font-size="10">0</text><text x="{:.0}" y="{:.0}" font-size="10" text-anchor="end">{}</text></svg>"#,
        H - PAD + 14.0,
        W - 10.0,
        H - PAD + 14.0,
        fmt_num(xmax)
    );
    o
}

/// Groups of bars: one group per label, one bar per series.
pub fn bar_chart(
    title: &str,
    ylabel: &str,
    labels: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    let ymax = nice(
        series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .fold(0.0, f64::max),
    );
    let mut o = String::new();
    axes(&mut o, title, ymax, ylabel, "percentile");
    let gw = (W - PAD - 10.0) / labels.len().max(1) as f64;
    let bw = (gw - 8.0) / series.len().max(1) as f64;
    for (g, label) in labels.iter().enumerate() {
        let x0 = PAD + gw * g as f64 + 4.0;
        for (i, (_, vals)) in series.iter().enumerate() {
            let v = vals.get(g).copied().unwrap_or(0.0);
            let h = (H - 2.0 * PAD) * v / ymax;
            let _ = write!(
                o,
                r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} p{}: {:.3} ms</title></rect>"#,
                x0 + bw * i as f64,
                H - PAD - h,
                bw.max(1.0),
                h,
                COLORS[i % COLORS.len()],
                esc(&series[i].0),
                esc(label),
                v
            );
        }
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.0}" font-size="10" text-anchor="middle">p{}</text>"#,
            x0 + gw / 2.0 - 4.0,
            H - PAD + 14.0,
            esc(label)
        );
    }
    for (i, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            o,
            r#"<text x="{:.0}" y="{:.0}" font-size="11" fill="{}">{}</text>"#,
            W - 200.0,
            PAD + 14.0 * i as f64,
            COLORS[i % COLORS.len()],
            esc(name)
        );
    }
    o.push_str("</svg>");
    o
}

fn run_name(r: &RunResult) -> String {
    match r.offered_eps {
        Some(o) => format!("{} {:.0}/s", r.mode, o),
        None => r.mode.clone(),
    }
}

/// The whole page.
pub fn page(summary: &str, runs: &[RunResult], rss_mb: f64) -> String {
    let thr: Vec<(String, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|r| (run_name(r), r.throughput.clone()))
        .collect();
    let labels: Vec<String> = PERCENTILES.iter().map(|p| format!("{p}")).collect();
    let lat: Vec<(String, Vec<f64>)> = runs
        .iter()
        .filter(|r| !r.alert_latency.is_empty())
        .map(|r| (run_name(r), r.alert_latency.iter().map(|x| x.1).collect()))
        .collect();
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>kuzet bench</title><style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:right}}th{{background:#f4f4f4}}</style></head><body><h1>kuzet bench</h1><p>{}; peak RSS {rss_mb:.0} MB.</p>",
        esc(summary)
    );
    o.push_str(&line_chart(
        "Throughput over time",
        "seconds",
        "events/s",
        &thr,
    ));
    if lat.is_empty() {
        o.push_str(
            "<p>No receive → alert latency was recorded (no alerts, or a --target run).</p>",
        );
    } else {
        o.push_str(&bar_chart("Receive → alert latency", "ms", &labels, &lat));
    }
    o.push_str("<table><tr><th>run</th><th>offered/s</th><th>achieved/s</th><th>drops</th><th>cpu</th><th>rx→alert p50/p99/p99.9 ms</th><th>event→alert p50/p99/p99.9 ms</th><th>alerts / expected</th><th>missed</th><th>extra</th></tr>");
    for r in runs {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{:.2}</td><td>{:.2} / {:.2} / {:.2}</td><td>{:.0} / {:.0} / {:.0}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.mode),
            r.offered_label(),
            r.achieved_eps,
            r.dropped,
            r.cpu_cores,
            r.alert_p50_ms,
            r.alert_p99_ms,
            r.alert_p999_ms,
            r.event_to_alert_p50_ms,
            r.event_to_alert_p99_ms,
            r.event_to_alert_p999_ms,
            r.alerts,
            r.expected_alerts,
            r.missed,
            r.extra
        );
    }
    o.push_str("</table></body></html>\n");
    o
}
