//! Incidents (issue 7): what an alert becomes for the people who must act on it, and the
//! regulatory clock that runs from its detection.
//!
//! ```text
//!  dispatcher ──enrich (assets of source/target)──▶ sinks (routed by level, tags, object class)
//!      │
//!      └──bounded queue──▶ incidents thread ──▶ SQLite (<state.dir>/incidents.sqlite3)
//!                            ▲  merge alerts,      │
//!          admin API ────────┘  deadline watcher ──┴──▶ escalation alerts ──▶ sinks
//! ```
//!
//! | module | what lives there |
//! |---|---|
//! | `config.rs` | the `[incidents]` section: inventories, regimes, fields, recommendations |
//! | `assets.rs` | the inventory (CSV/TOML) and matching by address, CIDR, host name |
//! | `enrich.rs` | which fields of an alert name its hosts, and their assets |
//! | `model.rs` | the incident record, deadlines, data list, status lifecycle |
//! | `store.rs` | the SQLite database |
//! | `manager.rs` | the incidents thread: merging, the API's operations, the deadline watcher |
//! | `api.rs` | HTTP requests → operations (served by `admin.rs`) |
//!
//! Not here: the HTTP server (`admin.rs`), the quarterly report (`cli/report.rs`).

pub mod api;
pub mod assets;
pub mod config;
pub mod enrich;
pub mod manager;
pub mod model;
pub mod store;

use std::sync::Arc;

use assets::{AssetError, Inventory};
use enrich::Enricher;

/// Loads the inventories and decides the enrichment fields for `engine`'s rules. Rows that
/// do not load come back as errors beside a usable enricher; `Err` when a whole inventory
/// file could not be read (a reload is then rejected and the running inventory stays).
pub fn load_enricher(
    cfg: &crate::config::Config,
    engine: Option<&crate::engine::Engine>,
) -> Result<(Enricher, Vec<AssetError>), Vec<AssetError>> {
    let (inv, errs) = Inventory::load(&cfg.incidents.assets);
    if errs.iter().any(|e| e.line == 0) {
        return Err(errs.into_iter().filter(|e| e.line == 0).collect());
    }
    let e = Enricher::new(Arc::new(cfg.incidents.clone()), Arc::new(inv), engine);
    Ok((e, errs))
}
