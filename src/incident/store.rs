//! Incident storage: one SQLite database, `<state.dir>/incidents.sqlite3` (in memory without a
//! state directory). The incidents thread is its only writer; `kuzet report` opens it read
//! only. Each incident is one row: the columns the API filters, the watcher and the report
//! query on, and the whole `kuzet.incident/1` JSON in `body`.
//!
//! WAL journal, `synchronous = NORMAL`: a committed change survives a crash of kuzet; a power
//! loss may lose the last transactions (the alerts themselves went to the sinks already).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::model::{Incident, Status};

pub const FILE_NAME: &str = "incidents.sqlite3";

/// A storage failure, with the database it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: incident {id}: stored JSON does not read back: {source}")]
    Body {
        path: String,
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: schema version {found}, this kuzet reads version {SCHEMA_VERSION}")]
    Version { path: String, found: i64 },
}

const SCHEMA_VERSION: i64 = 1;

/// What a listing asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub status: Option<Status>,
    pub object_class: Option<String>,
    pub rule: Option<String>,
    /// Detected at or after (ms).
    pub since: Option<i64>,
    /// Detected before (ms).
    pub until: Option<i64>,
    pub limit: usize,
}

pub struct Store {
    conn: Connection,
    path: String,
}

impl Store {
    /// Opens (creating) the database in `dir`, or an in-memory one.
    pub fn open(dir: Option<&Path>) -> Result<Store, StoreError> {
        let path = dir
            .map(|d| d.join(FILE_NAME).display().to_string())
            .unwrap_or_else(|| ":memory:".into());
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        if let Some(d) = dir {
            std::fs::create_dir_all(d).map_err(|source| StoreError::Io {
                path: d.display().to_string(),
                source,
            })?;
        }
        let conn = match dir {
            Some(_) => Connection::open(&path),
            None => Connection::open_in_memory(),
        }
        .map_err(sql)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta VALUES ('schema_version', 1);
             CREATE TABLE IF NOT EXISTS incidents (
                 id TEXT PRIMARY KEY,
                 rule_id TEXT NOT NULL,
                 group_key TEXT NOT NULL,
                 status TEXT NOT NULL,
                 object_class TEXT NOT NULL,
                 organisation TEXT NOT NULL,
                 level TEXT NOT NULL,
                 detected_at INTEGER NOT NULL,
                 updated_at INTEGER NOT NULL,
                 next_due INTEGER,
                 body TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS incidents_key ON incidents (rule_id, group_key, status);
             CREATE INDEX IF NOT EXISTS incidents_due ON incidents (next_due);
             CREATE INDEX IF NOT EXISTS incidents_detected ON incidents (detected_at);",
        )
        .map_err(sql)?;
        let found: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if found != SCHEMA_VERSION {
            return Err(StoreError::Version { path, found });
        }
        Ok(Store { conn, path })
    }

    /// Opens an existing database read only (`kuzet report`).
    pub fn open_read_only(file: &Path) -> Result<Store, StoreError> {
        let path = file.display().to_string();
        let conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
        Ok(Store { conn, path })
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.path)
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn decode(&self, id: &str, body: &str) -> Result<Incident, StoreError> {
        serde_json::from_str(body).map_err(|source| StoreError::Body {
            path: self.path.clone(),
            id: id.to_string(),
            source,
        })
    }

    /// Inserts or replaces an incident.
    pub fn save(&self, inc: &Incident) -> Result<(), StoreError> {
        let group_key = super::model::group_key(&inc.group);
        let body = serde_json::to_string(inc).expect("an incident always serializes");
        self.conn
            .execute(
                "INSERT INTO incidents (id, rule_id, group_key, status, object_class, organisation,
                     level, detected_at, updated_at, next_due, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(id) DO UPDATE SET status = ?4, object_class = ?5, organisation = ?6,
                     updated_at = ?9, next_due = ?10, body = ?11",
                params![
                    inc.id,
                    inc.data_list.incident_type.rule_id,
                    group_key,
                    inc.status.name(),
                    inc.object_class,
                    inc.organisation,
                    inc.data_list.incident_type.level,
                    inc.detected_at,
                    inc.updated_at,
                    inc.next_due(),
                    body
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM incidents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        body.map(|b| self.decode(id, &b)).transpose()
    }

    /// The open (or notified) incident of a rule and group, if any.
    pub fn find_active(
        &self,
        rule_id: &str,
        group_key: &str,
    ) -> Result<Option<Incident>, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT id, body FROM incidents WHERE rule_id = ?1 AND group_key = ?2
                   AND status IN ('open', 'notified') ORDER BY detected_at DESC LIMIT 1",
                params![rule_id, group_key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        row.map(|(id, b)| self.decode(&id, &b)).transpose()
    }

    /// Incidents with a deadline passed before `now` and waiting, at most `limit`.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<Incident>, StoreError> {
        self.query(
            "SELECT id, body FROM incidents WHERE next_due IS NOT NULL AND next_due < ?1
             ORDER BY next_due LIMIT ?2",
            params![now, limit as i64],
        )
    }

    /// Incidents matching `f`, newest first.
    pub fn list(&self, f: &Filter) -> Result<Vec<Incident>, StoreError> {
        self.query(
            "SELECT id, body FROM incidents
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR object_class = ?2)
               AND (?3 IS NULL OR rule_id = ?3) AND (?4 IS NULL OR detected_at >= ?4)
               AND (?5 IS NULL OR detected_at < ?5)
             ORDER BY detected_at DESC, id LIMIT ?6",
            params![
                f.status.map(|s| s.name()),
                f.object_class,
                f.rule,
                f.since,
                f.until,
                f.limit.max(1) as i64
            ],
        )
    }

    /// Incidents by status (for metrics).
    pub fn count_by_status(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT status, COUNT(*) FROM incidents GROUP BY status")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Incident>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(|e| self.sql(e))?;
            out.push(self.decode(&id, &body)?);
        }
        Ok(out)
    }
}
