//! The admin listener (default `127.0.0.1:9514`): Prometheus metrics, health, and the
//! endpoints that change the running daemon (reload), which need the configured bearer
//! token whenever one is set (and one must be set to listen beyond loopback).
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/metrics` | Prometheus text exposition |
//! | GET | `/healthz` | `ok generation=N` |
//! | POST | `/-/reload` | rebuild rules from the config and swap them in; 200 with the summary or 409 with every error |
//!
//! The HTTP thread owns no pipeline handles: it asks the daemon's control loop through a
//! channel and waits for the answer, so the pipeline's channels close cleanly at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded};

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
            .spawn(move || serve(&s, token.as_deref(), &commands))?;
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

fn serve(server: &tiny_http::Server, token: Option<&str>, commands: &Sender<Command>) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("").to_string();
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
                "not found: try /metrics, /healthz, POST /-/reload\n".into(),
            ),
        };
        let _ = req.respond(resp);
    }
}
