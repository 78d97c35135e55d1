//! The error a rule loader reports: which file, which rule, which line, and why.
//!
//! Loading never stops at the first problem: every failing rule becomes one [`RuleError`]
//! and every other rule still loads.

use std::fmt;
use std::sync::Arc;

/// A rule (or rule document) that could not be loaded or compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// The file, as given (or `<embedded>/name` for rules built into the binary).
    pub path: Arc<str>,
    /// The rule's `id`, else its `name`, else its `title`, when the document got that far.
    pub rule: Option<String>,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    pub reason: String,
}

impl RuleError {
    pub fn new(
        path: &Arc<str>,
        rule: Option<String>,
        line: Option<usize>,
        reason: impl Into<String>,
    ) -> RuleError {
        RuleError {
            path: path.clone(),
            rule,
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RuleError {
    /// `path:line: id: reason` — the format `kuzet check` prints, one line per failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(
            f,
            ": {}: {}",
            self.rule.as_deref().unwrap_or("-"),
            self.reason
        )
    }
}

impl std::error::Error for RuleError {}

/// A problem inside one rule, before the file and line are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: String,
    /// Text to look for in the document to find the line (a key or a value).
    pub near: Option<String>,
}

impl Problem {
    pub fn new(reason: impl Into<String>) -> Problem {
        Problem {
            reason: reason.into(),
            near: None,
        }
    }

    pub fn near(mut self, text: impl Into<String>) -> Problem {
        if self.near.is_none() {
            self.near = Some(text.into());
        }
        self
    }
}

impl<T: Into<String>> From<T> for Problem {
    fn from(s: T) -> Problem {
        Problem::new(s)
    }
}
