//! The admin listener (default `127.0.0.1:9514`): Prometheus metrics, health, and the
//! endpoints that change the running daemon (reload), which need the configured bearer
//! token whenever one is set (and one must be set to listen beyond loopback).
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/metrics` | Prometheus text exposition |
//! | GET | `/healthz` | `ok generation=N` |
//! | POST | `/-/reload` | rebuild rules from the config and swap them in; 200 with the summary or 409 with every error |
//! | GET | `/`, `/ui` | the operator's page (embedded; it reads `/incidents` and `/metrics`) |
//! | GET, POST | `/incidents…` | the incidents API (`incident/api.rs`); with a token set, every request needs it |
//!
//! The HTTP thread owns no pipeline handles: it asks the daemon's control loop through a
//! channel and waits for the answer, so the pipeline's channels close cleanly at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

use crate::incident::api::{self as incident_api, ACTOR_HEADER};
use crate::incident::manager::{ApiError, ApiReply, ApiRequest};

/// Largest request body read (an incident report or an action's note).
const MAX_BODY: u64 = 64 * 1024;

/// What the HTTP thread asks the control loop.
pub enum Command {
    Metrics(Sender<String>),
    Health(Sender<String>),
    /// `Ok(summary)` or `Err(errors)`.
    Reload(Sender<Result<String, Vec<String>>>),
}

/// A running admin listener.
pub struct Admin {
    pub local: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Admin {
    /// Binds `addr` and serves until [`Admin::stop`].
    pub fn start(
        addr: SocketAddr,
        token: Option<String>,
        commands: Sender<Command>,
        incidents: Option<Sender<ApiRequest>>,
    ) -> std::io::Result<Admin> {
        let server = Arc::new(
            tiny_http::Server::http(addr).map_err(|e| std::io::Error::other(e.to_string()))?,
        );
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("admin listener has no IP address"))?;
        let s = server.clone();
        let thread = std::thread::Builder::new()
            .name("kuzet-admin".into())
            .spawn(move || serve(&s, token.as_deref(), &commands, incidents.as_ref()))?;
        Ok(Admin {
            local,
            server,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn text(status: u16, body: String) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes(
        &b"Content-Type"[..],
        &b"text/plain; version=0.0.4; charset=utf-8"[..],
    )
    .expect("valid header");
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header)
}

/// Whether the request carries `Authorization: Bearer <token>` (always true without a token).
fn authorized(req: &tiny_http::Request, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    req.headers().iter().any(|h| {
        h.field.equiv("Authorization")
            && h.value
                .as_str()
                .strip_prefix("Bearer ")
                .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), token.as_bytes()))
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn ask<T>(
    commands: &Sender<Command>,
    make: impl FnOnce(Sender<T>) -> Command,
    wait: Duration,
) -> Option<T> {
    let (tx, rx) = bounded(1);
    commands.send(make(tx)).ok()?;
    rx.recv_timeout(wait).ok()
}

fn json(status: u16, v: &serde_json::Value) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
        .expect("valid header");
    tiny_http::Response::from_data(serde_json::to_vec_pretty(v).unwrap_or_default())
        .with_status_code(status)
        .with_header(header)
}

/// A page asset, allowed to load nothing but this listener's own resources.
fn page(body: &str, kind: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let h = |k: &str, v: &str| {
        tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
    };
    tiny_http::Response::from_string(body)
        .with_header(h("Content-Type", kind))
        .with_header(h(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .with_header(h("X-Content-Type-Options", "nosniff"))
}

/// An incidents API request: token, body, then the incidents thread's answer.
fn incidents(
    req: &mut tiny_http::Request,
    token: Option<&str>,
    api: Option<&Sender<ApiRequest>>,
) -> ApiReply {
    if !authorized(req, token) {
        return Err(ApiError::new(401, "a bearer token is required"));
    }
    let api = api.ok_or_else(|| ApiError::new(404, "incidents are off (incidents.enabled)"))?;
    let mut body = Vec::new();
    if std::io::Read::read_to_end(
        &mut std::io::Read::take(req.as_reader(), MAX_BODY + 1),
        &mut body,
    )
    .is_err()
    {
        return Err(ApiError::new(400, "could not read the body"));
    }
    if body.len() as u64 > MAX_BODY {
        return Err(ApiError::new(413, format!("body over {MAX_BODY} bytes")));
    }
    let actor = req
        .headers()
        .iter()
        .find(|h| h.field.equiv(ACTOR_HEADER))
        .map(|h| h.value.as_str().to_string());
    let op = incident_api::parse(req.method().as_str(), req.url(), actor.as_deref(), &body)?;
    let (tx, rx) = bounded(1);
    let wait = Duration::from_secs(30);
    api.send_timeout(ApiRequest { op, reply: tx }, wait)
        .ok()
        .and_then(|_| rx.recv_timeout(wait).ok())
        .unwrap_or_else(|| Err(ApiError::new(503, "the incidents thread did not answer")))
}

fn serve(
    server: &tiny_http::Server,
    token: Option<&str>,
    commands: &Sender<Command>,
    api: Option<&Sender<ApiRequest>>,
) {
    for mut req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("").to_string();
        if incident_api::handles(&path) {
            let resp = match incidents(&mut req, token, api) {
                Ok(v) => json(200, &v),
                Err(e) => json(e.status, &serde_json::json!({ "error": e.message })),
            };
            let _ = req.respond(resp);
            continue;
        }
        if req.method() == &tiny_http::Method::Get
            && let Some((body, kind)) = match path.as_str() {
                "/" | "/ui" | "/ui/" => Some((incident_api::PAGE_HTML, "text/html; charset=utf-8")),
                "/ui/app.js" => Some((incident_api::PAGE_JS, "text/javascript; charset=utf-8")),
                _ => None,
            }
        {
            let _ = req.respond(page(body, kind));
            continue;
        }
        let method = req.method().clone();
        let resp = match (method, path.as_str()) {
            (tiny_http::Method::Get, "/metrics") => {
                match ask(commands, Command::Metrics, Duration::from_secs(5)) {
                    Some(m) => text(200, m),
                    None => text(503, "shutting down\n".into()),
                }
            }
            (tiny_http::Method::Get, "/healthz") => {
                match ask(commands, Command::Health, Duration::from_secs(5)) {
                    Some(m) => text(200, m),
                    None => text(503, "shutting down\n".into()),
                }
            }
            (tiny_http::Method::Post, "/-/reload") => {
                if !authorized(&req, token) {
                    text(401, "a bearer token is required\n".into())
                } else {
                    match ask(commands, Command::Reload, Duration::from_secs(300)) {
                        Some(Ok(summary)) => text(200, summary + "\n"),
                        Some(Err(errs)) => text(
                            409,
                            format!(
                                "reload rejected; the running rules stay:\n{}\n",
                                errs.join("\n")
                            ),
                        ),
                        None => text(503, "shutting down\n".into()),
                    }
                }
            }
            (_, "/metrics" | "/healthz" | "/-/reload") => text(405, "method not allowed\n".into()),
            _ => text(
                404,
                "not found: try /metrics, /healthz, POST /-/reload, /incidents, / (the operator's page)\n"
                    .into(),
            ),
        };
        let _ = req.respond(resp);
    }
}
