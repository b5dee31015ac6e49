//! What a diagnostic shows of a file: the lines around its labels, each cut to a window of
//! at most [`LINE_WINDOW`] characters, so that no diagnostic prints more than a few lines of
//! the user's file, however long its lines are (a 10 MB line, a file that is not a
//! Profilingfile at all). Messages are bounded too ([`bounded`]): they may quote a token.

use std::ops::Range;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::source::SourceFile;

/// The most characters of one line shown; a longer line is cut around its labels, with `…`
/// where it is cut.
const LINE_WINDOW: usize = 120;

/// The lines kept before and after the labels' lines (miette shows one).
const CONTEXT_LINES: usize = 2;

/// A label over more lines than this is shortened to its first line.
const MAX_LABEL_LINES: usize = 8;

/// The most characters of a message, label or help line: one that quotes a longer token
/// keeps its first characters and its last [`TEXT_TAIL`].
const TEXT_LIMIT: usize = 400;
const TEXT_TAIL: usize = 80;

const ELLIPSIS: &str = "…";

/// The shown part of a file, as miette reads it, and the labels' spans in it.
#[derive(Clone, Debug)]
pub(crate) struct Excerpt {
    file: SourceFile,
    /// The shown lines, each ending with `\n` but the last.
    text: String,
    /// The 0-based number in the file of the first shown line.
    first_line: usize,
    /// The labels' spans in `text`, in the order given.
    spans: Vec<SourceSpan>,
    /// The byte column in the file where each label starts (miette counts bytes).
    columns: Vec<usize>,
}

/// One shown line: where it is in the file and in [`Excerpt::text`].
struct ShownLine {
    /// Where the line starts in the file.
    start: usize,
    /// The part of the line shown (without its line break).
    window: Range<usize>,
    /// Whether text of the line is cut before and after the window (each shown as `…`).
    cut_before: bool,
    cut_after: bool,
    /// Where the line starts and ends (before its `\n`) in the excerpt's text.
    at: usize,
    end_at: usize,
}

impl Excerpt {
    /// The excerpt of `file` for labels at `spans` (byte ranges of the file).
    pub(crate) fn new(file: &SourceFile, spans: &[Range<usize>]) -> Excerpt {
        let text = file.text();
        let line_starts = file.line_starts();
        let line_of = |offset: usize| line_starts.partition_point(|&start| start <= offset) - 1;
        let last_line_of =
            |span: &Range<usize>| line_of(span.end.saturating_sub(1).max(span.start));
        // Where each line's content ends: before its `\n`, and a `\r` before that.
        let content_end = |line: usize| {
            let end = line_starts
                .get(line + 1)
                .map_or(text.len(), |&next| next - 1);
            end - usize::from(end > line_starts[line] && text[..end].ends_with('\r'))
        };
        let spans: Vec<Range<usize>> = spans
            .iter()
            .map(|span| {
                let start = text.floor_char_boundary(span.start);
                let end = text.ceil_char_boundary(span.end.max(start));
                let span = start..end;
                if last_line_of(&span) - line_of(start) >= MAX_LABEL_LINES {
                    start..content_end(line_of(start)).max(start)
                } else {
                    span
                }
            })
            .collect();
        let first_line = spans.iter().map(|s| line_of(s.start)).min().unwrap_or(0);
        let last_line = spans.iter().map(last_line_of).max().unwrap_or(0);
        let first_line = first_line.saturating_sub(CONTEXT_LINES);
        let last_line = (last_line + CONTEXT_LINES).min(line_starts.len() - 1);

        let mut shown_text = String::new();
        let mut lines = Vec::with_capacity(last_line + 1 - first_line);
        let shown_lines = line_starts
            .iter()
            .enumerate()
            .take(last_line + 1)
            .skip(first_line);
        for (line, &start) in shown_lines {
            let end = content_end(line);
            // The labels on this line: all of them if they fit, else the first given.
            let on_line: Vec<Range<usize>> = spans
                .iter()
                .filter(|span| span.start <= end && span.end >= start)
                .map(|span| span.start.max(start) - start..span.end.min(end) - start)
                .collect();
            let line_text = &text[start..end];
            let focus = match on_line
                .iter()
                .cloned()
                .reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
            {
                Some(all) if fits(&line_text[all.clone()]) => all,
                _ => on_line.first().cloned().unwrap_or(0..0),
            };
            let window = window(line_text, focus);
            let window = start + window.start..start + window.end;
            if line > first_line {
                shown_text.push('\n');
            }
            let at = shown_text.len();
            let (cut_before, cut_after) = (window.start > start, window.end < end);
            if cut_before {
                shown_text.push_str(ELLIPSIS);
            }
            shown_text.extend(text[window.clone()].chars().map(shown));
            if cut_after {
                shown_text.push_str(ELLIPSIS);
            }
            lines.push(ShownLine {
                start,
                window,
                cut_before,
                cut_after,
                at,
                end_at: shown_text.len(),
            });
        }
        let shown_spans = spans
            .iter()
            .map(|span| {
                let start = shown_offset(&lines, text, span.start, false);
                let end = shown_offset(&lines, text, span.end, true).max(start);
                (start, end - start).into()
            })
            .collect();
        Excerpt {
            file: file.clone(),
            text: shown_text,
            first_line,
            spans: shown_spans,
            columns: spans
                .iter()
                .map(|s| s.start - line_starts[line_of(s.start)])
                .collect(),
        }
    }

    /// The labels' spans in the excerpt, in the order given to [`new`](Self::new).
    pub(crate) fn spans(&self) -> &[SourceSpan] {
        &self.spans
    }
}

/// Where the file's `offset` is shown in the excerpt of `lines`: the start (or, for
/// `is_end`, the end) of the `…` that stands for it if it is cut off.
fn shown_offset(lines: &[ShownLine], text: &str, offset: usize, is_end: bool) -> usize {
    let line = &lines[lines.partition_point(|l| l.start <= offset) - 1];
    let lead = if line.cut_before { ELLIPSIS.len() } else { 0 };
    if offset < line.window.start {
        return line.at + if is_end { lead } else { 0 };
    }
    if offset <= line.window.end {
        let shown_len: usize = text[line.window.start..offset]
            .chars()
            .map(|c| shown(c).len_utf8())
            .sum();
        return line.at + lead + shown_len;
    }
    match (line.cut_after, is_end) {
        (true, true) => line.end_at,
        (true, false) => line.end_at - ELLIPSIS.len(),
        // The line break (and a `\r` before it, which is not shown).
        (false, true) => line.end_at + 1,
        (false, false) => line.end_at,
    }
}

/// Whether `text` fits in a window.
fn fits(text: &str) -> bool {
    text.chars().nth(LINE_WINDOW).is_none()
}

/// The range of `line` to show: at most [`LINE_WINDOW`] characters, `focus` in the middle
/// (or, if it is longer, its start after a quarter of the window).
fn window(line: &str, focus: Range<usize>) -> Range<usize> {
    let before = if fits(&line[focus.clone()]) {
        (LINE_WINDOW - line[focus.clone()].chars().count()) / 2
    } else {
        LINE_WINDOW / 4
    };
    let mut start = back(line, focus.start, before);
    let (end, taken) = forward(line, start, LINE_WINDOW);
    if taken < LINE_WINDOW {
        start = back(line, start, LINE_WINDOW - taken);
    }
    start..end
}

/// Where `n` characters before `at` start (or the start of `text`).
fn back(text: &str, at: usize, n: usize) -> usize {
    text[..at]
        .char_indices()
        .rev()
        .take(n)
        .last()
        .map_or(at, |(offset, _)| offset)
}

/// Where `n` characters after `at` end (or the end of `text`), and how many there are.
fn forward(text: &str, at: usize, n: usize) -> (usize, usize) {
    text[at..]
        .char_indices()
        .take(n)
        .enumerate()
        .last()
        .map_or((at, 0), |(i, (offset, c))| {
            (at + offset + c.len_utf8(), i + 1)
        })
}

/// `text` as a diagnostic shows it: at most [`TEXT_LIMIT`] characters, control characters
/// but tabs and line breaks replaced.
pub(crate) fn bounded(text: String) -> String {
    let count = text.chars().count();
    if count <= TEXT_LIMIT && text.chars().all(|c| shown_in_text(c) == c) {
        return text;
    }
    let head = if count > TEXT_LIMIT {
        TEXT_LIMIT - TEXT_TAIL
    } else {
        count
    };
    let mut out: String = text.chars().take(head).map(shown_in_text).collect();
    if count > TEXT_LIMIT {
        out.push_str(ELLIPSIS);
        out.extend(text.chars().skip(count - TEXT_TAIL).map(shown_in_text));
    }
    out
}

/// A character of a message as shown: as in a line of the file, but line breaks stay.
fn shown_in_text(c: char) -> char {
    if c == '\n' { c } else { shown(c) }
}

/// A character as shown: a control character (a terminal could act on it) but the tab
/// becomes U+FFFD.
fn shown(c: char) -> char {
    if c.is_control() && c != '\t' {
        char::REPLACEMENT_CHARACTER
    } else {
        c
    }
}

/// Reads the excerpt with the file's line numbers, and the file's column for the header.
impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let shown =
            self.text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        // Without context, miette reads a label for the header's position: give the
        // label's column in the file.
        let column = match self.spans.iter().position(|s| s == span) {
            Some(label) if context_lines_before == 0 => self.columns[label],
            _ => shown.column(),
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.file.name().to_owned(),
            shown.data(),
            *shown.span(),
            self.first_line + shown.line(),
            column,
            shown.line_count(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Diagnostic, Location};

    /// `text` rendered with a label on each of `spans`.
    fn render(text: &str, spans: &[(usize, usize)]) -> String {
        let file = SourceFile::new("f", text);
        spans
            .iter()
            .enumerate()
            .fold(Diagnostic::error("m"), |d, (i, &(start, end))| {
                let at = Location {
                    file: file.clone(),
                    start,
                    end,
                };
                d.label(&at, format!("label {i}"))
            })
            .render_plain()
    }

    /// The shown source lines (after `N │ `) of a rendering.
    fn source_lines(rendered: &str) -> Vec<&str> {
        rendered
            .lines()
            .filter_map(|l| l.split_once(" │ ").map(|(_, text)| text))
            .collect()
    }

    #[test]
    fn short_lines_are_shown_whole() {
        let text = "profiling {\n\tprofefe \"x\n}\n";
        let rendered = render(text, &[(21, 22)]);
        assert!(rendered.contains("[f:2:10]"), "{rendered}");
        assert_eq!(
            source_lines(&rendered),
            ["profiling {", "    profefe \"x", "}"]
        );
    }

    #[test]
    fn a_long_line_is_cut_around_its_label() {
        let quote = 5_000_000;
        let text = format!("a {}\"{}\n", "y".repeat(quote - 2), "x".repeat(5_000_000));
        let rendered = render(&text, &[(quote, quote + 1)]);
        assert!(rendered.len() < 1000, "{} bytes", rendered.len());
        // The file's position, not the excerpt's.
        assert!(
            rendered.contains(&format!("[f:1:{}]", quote + 1)),
            "{rendered}"
        );
        let line = source_lines(&rendered)[0];
        assert_eq!(line.chars().count(), LINE_WINDOW + 2);
        let (before, after) = line.split_once('"').unwrap();
        assert_eq!(
            before,
            format!("…{}", "y".repeat(before.chars().count() - 1))
        );
        assert!(after.ends_with("x…"));
        // The label still points at the quote.
        let column_of = |c: char| {
            let line = rendered.lines().find(|l| l.contains(c)).unwrap();
            line.chars().position(|x| x == c)
        };
        assert_eq!(column_of('┬'), column_of('"'));
    }

    #[test]
    fn labels_on_one_long_line_are_shown_together_when_they_fit() {
        let text = format!(
            "{}first{}second{}\n",
            "a".repeat(500),
            "b".repeat(50),
            "c".repeat(500)
        );
        let rendered = render(&text, &[(500, 505), (555, 561)]);
        let line = source_lines(&rendered)[0];
        assert!(line.contains("first") && line.contains("second"), "{line}");
        assert!(line.starts_with('…') && line.ends_with('…'));
        assert!(rendered.contains("label 0") && rendered.contains("label 1"));
    }

    #[test]
    fn multibyte_text_is_cut_at_characters() {
        let text = format!("{}é{}\n", "ü".repeat(300), "é".repeat(300));
        let rendered = render(&text, &[(600, 602)]);
        let line = source_lines(&rendered)[0];
        assert_eq!(line.chars().count(), LINE_WINDOW + 2);
        // miette counts the header's column in bytes.
        assert!(rendered.contains("[f:1:601]"), "{rendered}");
    }

    #[test]
    fn control_characters_are_not_written_out() {
        let rendered = render("a\u{1b}[2J\u{7}b \u{0}c\tx\r\n", &[(0, 1)]);
        // (miette expands the tab to the next stop.)
        assert_eq!(
            source_lines(&rendered),
            ["a\u{FFFD}[2J\u{FFFD}b \u{FFFD}c  x"]
        );
        assert!(!rendered.contains(['\u{1b}', '\u{7}', '\u{0}', '\r']));
    }

    #[test]
    fn a_label_over_many_lines_shows_its_first_line() {
        let text = "line\n".repeat(100_000);
        let rendered = render(&text, &[(5, text.len())]);
        assert_eq!(source_lines(&rendered).len(), 3, "{rendered}");
    }

    #[test]
    fn labels_far_apart_keep_their_line_numbers() {
        let text = "line\n".repeat(1000);
        let rendered = render(&text, &[(5, 9), (4000, 4004)]);
        assert!(
            rendered.contains("[f:2:1]") && rendered.contains("[f:801:1]"),
            "{rendered}"
        );
        assert!(rendered.contains(" 801 │ line"));
    }

    #[test]
    fn long_messages_keep_their_ends() {
        assert_eq!(bounded("unknown app 'x'".to_owned()), "unknown app 'x'");
        let long = format!("unknown app '{}'", "x".repeat(1_000_000));
        let shown = bounded(long);
        assert_eq!(shown.chars().count(), TEXT_LIMIT + 1);
        assert!(shown.starts_with("unknown app 'xxx") && shown.ends_with("xxx'"));
        assert!(shown.contains('…'));
        assert_eq!(bounded("a\u{1b}b\nc".to_owned()), "a\u{FFFD}b\nc");
    }
}
