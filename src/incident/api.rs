//! The incidents HTTP API, as requests → [`ApiOp`]s: paths, query strings, JSON bodies and
//! the actor of every change. The admin listener (`admin.rs`) checks the token, calls
//! [`parse`], hands the operation to the incidents thread and writes its JSON answer.
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/incidents?status=&class=&rule=&since=&until=&limit=` | newest first (default limit 100, at most 10,000) |
//! | GET | `/incidents/{id}` | one incident |
//! | POST | `/incidents` | register a self-detected incident (JSON [`SelfReport`]) |
//! | POST | `/incidents/{id}/ack` | a step done: `{"step": "notify_owner"}` (default) → `notified` |
//! | POST | `/incidents/{id}/resolve` | → `resolved` |
//! | POST | `/incidents/{id}/false_positive` | → `false_positive` |
//! | GET | `/`, `/ui`, `/ui/app.js` | the operator's page ([`PAGE_HTML`]) |
//!
//! Every POST needs an actor: the `X-Kuzet-Actor` header or `"actor"` in the body; it is
//! recorded with the time in the incident's `history`. `since`/`until` are RFC 3339 or
//! `YYYY-MM-DD` (UTC midnight).

use serde::Deserialize;

use super::manager::{Action, ApiError, ApiOp, SelfReport};
use super::model::{Status, ms_rfc3339};
use super::store::Filter;

pub const ACTOR_HEADER: &str = "X-Kuzet-Actor";

/// The operator's page (`GET /`, `/ui`): open incidents by nearest deadline with live
/// countdowns, data lists, evidence, actions, and engine health from `/metrics`. Embedded,
/// no external resources; it holds no data itself (it reads the API with the token the
/// operator types in).
pub const PAGE_HTML: &str = include_str!("ui/index.html");
pub const PAGE_JS: &str = include_str!("ui/app.js");
const MAX_LIMIT: usize = 10_000;

/// A date or a time: RFC 3339, or `YYYY-MM-DD` as UTC midnight. Milliseconds.
pub fn parse_when(s: &str) -> Option<i64> {
    ms_rfc3339::parse(s).or_else(|| {
        let d: jiff::civil::Date = s.parse().ok()?;
        ms_rfc3339::parse(&format!("{d}T00:00:00Z"))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn filter(query: &str) -> Result<Filter, ApiError> {
    let mut f = Filter {
        limit: 100,
        ..Filter::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        let bad = |what: &str| ApiError::new(400, format!("{k}={v:?}: {what}"));
        match k {
            "status" => {
                f.status = Some(
                    Status::parse(&v)
                        .ok_or_else(|| bad("open, notified, resolved or false_positive"))?,
                )
            }
            "class" => f.object_class = Some(v),
            "rule" => f.rule = Some(v),
            "since" => f.since = Some(parse_when(&v).ok_or_else(|| bad("RFC 3339 or YYYY-MM-DD"))?),
            "until" => f.until = Some(parse_when(&v).ok_or_else(|| bad("RFC 3339 or YYYY-MM-DD"))?),
            "limit" => {
                f.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad("a number from 1 to 10000"))?
            }
            _ => {
                return Err(ApiError::new(
                    400,
                    format!("unknown parameter {k:?} (status, class, rule, since, until, limit)"),
                ));
            }
        }
    }
    Ok(f)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActBody {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

fn actor(header: Option<&str>, body: Option<&str>) -> Result<String, ApiError> {
    header
        .or(body)
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                400,
                format!("who is acting? set the {ACTOR_HEADER} header or \"actor\" in the body"),
            )
        })
}

/// Whether the path belongs to this API.
pub fn handles(path: &str) -> bool {
    path == "/incidents" || path.starts_with("/incidents/")
}

/// The operation a request asks for. `url` includes the query string.
pub fn parse(
    method: &str,
    url: &str,
    actor_header: Option<&str>,
    body: &[u8],
) -> Result<ApiOp, ApiError> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let rest = path.strip_prefix("/incidents").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let json_err = |e: serde_json::Error| ApiError::new(400, format!("body: {e}"));
    match (method, parts.as_slice()) {
        ("GET", []) => Ok(ApiOp::List(filter(query)?)),
        ("GET", [id]) => Ok(ApiOp::Get(id.to_string())),
        ("POST", []) => {
            let report: SelfReport = serde_json::from_slice(body).map_err(json_err)?;
            let actor = actor(actor_header, report.actor.as_deref())?;
            Ok(ApiOp::Report { report, actor })
        }
        ("POST", [id, verb]) => {
            let b: ActBody = if body.iter().all(u8::is_ascii_whitespace) {
                ActBody::default()
            } else {
                serde_json::from_slice(body).map_err(json_err)?
            };
            let action = match *verb {
                "ack" => Action::Ack(b.step.unwrap_or_else(|| "notify_owner".into())),
                "resolve" => Action::Resolve,
                "false_positive" => Action::FalsePositive,
                other => {
                    return Err(ApiError::new(
                        404,
                        format!("{other:?}: ack, resolve or false_positive"),
                    ));
                }
            };
            Ok(ApiOp::Act {
                id: id.to_string(),
                action,
                actor: actor(actor_header, b.actor.as_deref())?,
                note: b.note,
            })
        }
        ("GET" | "POST", _) => Err(ApiError::new(404, format!("no such resource {path}"))),
        _ => Err(ApiError::new(405, "method not allowed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_operations() {
        let op = parse(
            "GET",
            "/incidents?status=open&class=egov&since=2026-01-01&rule=a%20b&limit=5",
            None,
            b"",
        )
        .unwrap();
        let ApiOp::List(f) = op else { panic!() };
        assert_eq!(f.status, Some(Status::Open));
        assert_eq!(f.object_class.as_deref(), Some("egov"));
        assert_eq!(f.rule.as_deref(), Some("a b"));
        assert_eq!(f.since, Some(1_767_225_600_000));
        assert_eq!(f.limit, 5);
        assert_eq!(
            parse("GET", "/incidents/abc", None, b"").unwrap(),
            ApiOp::Get("abc".into())
        );
        assert_eq!(
            parse("POST", "/incidents/abc/ack", Some("duty"), b"").unwrap(),
            ApiOp::Act {
                id: "abc".into(),
                action: Action::Ack("notify_owner".into()),
                actor: "duty".into(),
                note: None
            }
        );
        let op = parse(
            "POST",
            "/incidents/abc/resolve",
            None,
            br#"{"actor":"bob","note":"patched"}"#,
        )
        .unwrap();
        assert!(
            matches!(op, ApiOp::Act { action: Action::Resolve, ref actor, .. } if actor == "bob")
        );
        // No actor: refused, with what to send.
        let e = parse("POST", "/incidents/abc/false_positive", None, b"").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains(ACTOR_HEADER));
        assert_eq!(
            parse("GET", "/incidents?status=done", None, b"")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse("POST", "/incidents/a/close", Some("x"), b"")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            parse("DELETE", "/incidents/a", Some("x"), b"")
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(percent_decode("a%2Fb+c%zz"), "a/b c%zz");
    }
}
