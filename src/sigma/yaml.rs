//! YAML files as Sigma uses them: several documents per file, each parsed on its own so one
//! broken document does not hide the others, with the line each document starts on so that
//! errors can point into the file.
//!
//! YAML values (`yaml_serde::Value`) are used only while loading rules; nothing past the
//! loader sees them.

pub use yaml_serde::Value;

/// One document of a multi-document file.
#[derive(Clone, Debug)]
pub struct Doc<'a> {
    pub text: &'a str,
    /// 1-based line of the file where `text` starts.
    pub first_line: usize,
}

impl Doc<'_> {
    /// The file line of the first line in this document containing `needle`.
    pub fn line_of(&self, needle: &str) -> Option<usize> {
        if needle.is_empty() {
            return None;
        }
        self.text
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| self.first_line + i)
    }

    pub fn parse(&self) -> Result<Value, (String, Option<usize>)> {
        yaml_serde::from_str::<Value>(self.text).map_err(|e| {
            // The line from the error's byte offset, counting `\n` as `first_line` and
            // editors do: the YAML scanner also breaks lines at a lone `\r` (and NEL, LS,
            // PS), so its own line number could point past the end of the file.
            let line = e.location().map(|l| {
                let at = l.index().min(self.text.len());
                let at = (0..=at)
                    .rev()
                    .find(|&i| self.text.is_char_boundary(i))
                    .unwrap_or(0);
                self.first_line + self.text[..at].matches('\n').count()
            });
            (e.to_string(), line)
        })
    }
}

/// Splits a file at `---` document markers (and drops `...` end markers). Documents that are
/// only comments or whitespace are skipped.
pub fn documents(text: &str) -> Vec<Doc<'_>> {
    fn push<'a>(text: &'a str, from: usize, to: usize, first_line: usize, docs: &mut Vec<Doc<'a>>) {
        let t = &text[from..to];
        let meaningful = t.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && l != "..."
        });
        if meaningful {
            docs.push(Doc {
                text: t,
                first_line,
            });
        }
    }
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1usize;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") || bare == "..." {
            push(text, start, offset, start_line, &mut docs);
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    push(text, start, text.len(), start_line, &mut docs);
    docs
}

/// A scalar as text, the way Sigma reads values: strings as they are, numbers and booleans
/// in their YAML spelling.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string or a list of strings (Sigma allows both for tags, references, ...).
pub fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(s) => s.iter().filter_map(scalar_text).collect(),
        other => scalar_text(other).into_iter().collect(),
    }
}

/// Converts metadata to JSON for alerts (custom fields such as `recommendation`).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                n.as_f64()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(s) => serde_json::Value::Array(s.iter().map(to_json).collect()),
        Value::Mapping(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (scalar_text(k).unwrap_or_default(), to_json(v)))
                .collect(),
        ),
        Value::Tagged(t) => to_json(&t.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_lines() {
        let t = "title: a\n---\n# comment only\n---\ntitle: b\nx: 1\n...\n";
        let d = documents(t);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].first_line, 1);
        assert_eq!(d[1].first_line, 5);
        assert_eq!(d[1].line_of("x: 1"), Some(6));
    }

    #[test]
    fn error_lines_count_newlines_only() {
        let d = documents("title: a\n---\na: 1\rb: \"\u{2028}\"\nc: [\n");
        assert_eq!(d[1].first_line, 3);
        // A lone CR and a line separator are no new lines for an editor: the error (at the
        // end, after the second `\n` of the document) is on the file's line 5.
        assert_eq!(d[1].parse().unwrap_err().1, Some(5));
        let d = documents("x: [\n");
        assert_eq!(d[0].parse().unwrap_err().1, Some(2));
    }
}
