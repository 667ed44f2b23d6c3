//! Reads content as NDJSON, one document per line, for bulk uploads, `deflect index` and
//! the demo catalog. Lines are parsed one by one so a large upload is never held whole,
//! and one bad line is reported by number while the others are applied.

use serde::Serialize;

use crate::domain::{ContentDocument, DocumentInput, FieldProblem};

/// Lines longer than this are rejected without being parsed.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// A line that could not be applied.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// The document id, when the line had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<FieldProblem>,
}

/// Parses one NDJSON line. Returns `Ok(None)` for a blank line.
pub fn parse_line(line: &[u8], line_number: usize) -> Result<Option<ContentDocument>, LineError> {
    let line = trim_ascii(line);
    if line.is_empty() {
        return Ok(None);
    }
    if line.len() > MAX_LINE_BYTES {
        return Err(LineError {
            line: line_number,
            id: None,
            message: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
            problems: Vec::new(),
        });
    }
    let input: DocumentInput = serde_json::from_slice(line).map_err(|error| LineError {
        line: line_number,
        id: None,
        message: format!("not a JSON document: {error}"),
        problems: Vec::new(),
    })?;
    let id = input.id.as_ref().map(|id| match id {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    ContentDocument::parse(input, None)
        .map(Some)
        .map_err(|problems| LineError {
            line: line_number,
            id,
            message: problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            problems,
        })
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace())
        .map_or(start, |end| end + 1);
    &bytes[start..end]
}

/// Splits a stream of byte chunks into lines without holding more than one line (plus
/// one chunk). A line over [`MAX_LINE_BYTES`] is cut short and reported as too long.
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    line_number: usize,
    partial_overflowed: bool,
}

/// One line out of a [`LineSplitter`].
pub enum SplitLine<'bytes> {
    Complete { number: usize, bytes: &'bytes [u8] },
    TooLong { number: usize },
}

impl LineSplitter {
    /// Feeds a chunk; calls `on_line` for each line it completes.
    pub fn push(&mut self, chunk: &[u8], mut on_line: impl FnMut(SplitLine<'_>)) {
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|byte| *byte == b'\n') {
            let (head, tail) = rest.split_at(newline);
            rest = &tail[1..];
            self.line_number += 1;
            if self.partial_overflowed || self.partial.len() + head.len() > MAX_LINE_BYTES {
                on_line(SplitLine::TooLong {
                    number: self.line_number,
                });
            } else if self.partial.is_empty() {
                on_line(SplitLine::Complete {
                    number: self.line_number,
                    bytes: head,
                });
            } else {
                self.partial.extend_from_slice(head);
                on_line(SplitLine::Complete {
                    number: self.line_number,
                    bytes: &self.partial,
                });
            }
            self.partial.clear();
            self.partial_overflowed = false;
        }
        if self.partial.len() + rest.len() > MAX_LINE_BYTES {
            self.partial_overflowed = true;
            self.partial.clear();
        } else if !self.partial_overflowed {
            self.partial.extend_from_slice(rest);
        }
    }

    /// Ends the stream: a last line without a trailing newline is still a line.
    pub fn finish(mut self, mut on_line: impl FnMut(SplitLine<'_>)) {
        if self.partial_overflowed {
            on_line(SplitLine::TooLong {
                number: self.line_number + 1,
            });
        } else if !self.partial.is_empty() {
            self.line_number += 1;
            on_line(SplitLine::Complete {
                number: self.line_number,
                bytes: &std::mem::take(&mut self.partial),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(usize, Option<String>)> {
        let mut lines = Vec::new();
        let mut splitter = LineSplitter::default();
        let mut record = |line: SplitLine<'_>| match line {
            SplitLine::Complete { number, bytes } => {
                lines.push((number, Some(String::from_utf8_lossy(bytes).into_owned())))
            }
            SplitLine::TooLong { number } => lines.push((number, None)),
        };
        for chunk in chunks {
            splitter.push(chunk, &mut record);
        }
        splitter.finish(&mut record);
        lines
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let lines = split(&[b"{\"a\":", b"1}\n{\"b\"", b":2}\n{\"c\":3}"]);
        assert_eq!(
            lines,
            [
                (1, Some("{\"a\":1}".into())),
                (2, Some("{\"b\":2}".into())),
                (3, Some("{\"c\":3}".into()))
            ]
        );
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let error = parse_line(br#"{"id": "x"}"#, 7).unwrap_err();
        assert_eq!(error.line, 7);
        assert_eq!(error.id.as_deref(), Some("x"));
        assert_eq!(error.problems[0].field, "title");
        assert_eq!(parse_line(b"   ", 8).unwrap(), None);
        assert!(parse_line(b"not json", 9)
            .unwrap_err()
            .message
            .contains("not a JSON"));
    }
}
