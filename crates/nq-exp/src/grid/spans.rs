//! Where each key of a grid file is, so that errors found after parsing
//! (a `k` of 0, a pruning name that does not exist) can name its line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::GridError;

/// Byte spans of every key (dotted path) and of its value.
pub struct KeySpans {
    spans: BTreeMap<String, (Range<usize>, Range<usize>)>,
    line_starts: Vec<usize>,
}

impl KeySpans {
    /// Indexes `source`; a file that does not parse gets no spans (its
    /// parse error carries its own position).
    pub fn new(source: &str) -> Self {
        let mut spans = BTreeMap::new();
        if let Ok(table) = DeTable::parse(source) {
            walk(table.get_ref(), "", &mut spans);
        }
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { spans, line_starts }
    }

    /// 1-based line of byte `offset`.
    pub fn line_of_offset(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// Line of `key` (dotted), or of the nearest enclosing key that is in
    /// the file.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let mut path = key;
        loop {
            if let Some((k, _)) = self.spans.get(path) {
                return Some(self.line_of_offset(k.start));
            }
            path = &path[..path.rfind('.')?];
        }
    }

    /// The innermost key whose key or value span holds `offset`.
    fn key_at(&self, offset: usize) -> Option<&str> {
        self.spans
            .iter()
            .filter(|(_, (k, v))| k.contains(&offset) || v.contains(&offset))
            .min_by_key(|(_, (k, v))| v.end.max(k.end) - k.start.min(v.start))
            .map(|(path, _)| path.as_str())
    }

    /// A [`GridError`] from a TOML syntax or type error.
    pub fn toml_error(&self, path: &Path, e: &toml::de::Error) -> GridError {
        let message = e.message().trim().to_owned();
        let offset = e.span().map(|s| s.start);
        let mut key = offset
            .and_then(|o| self.key_at(o))
            .unwrap_or_default()
            .to_owned();
        // "missing field `x`" points at the table that lacks it
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            key = if key.is_empty() {
                field.to_owned()
            } else {
                format!("{key}.{field}")
            };
        }
        GridError {
            file: path.to_owned(),
            line: offset.map(|o| self.line_of_offset(o)),
            key,
            message,
        }
    }
}

fn walk(
    table: &DeTable<'_>,
    prefix: &str,
    out: &mut BTreeMap<String, (Range<usize>, Range<usize>)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.insert(path.clone(), (key.span(), value.span()));
        if let DeValue::Table(inner) = value.get_ref() {
            walk(inner, &path, out);
        }
    }
}
