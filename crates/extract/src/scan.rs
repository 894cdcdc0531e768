//! The CSV state machine, byte by byte: where records and fields end, whether a quote is open.
//!
//! [`CsvScanner`] has the same states as the `csv` crate's parser (RFC 4180: a quote opens a
//! quoted field only at the start of a field; `""` inside quotes is a literal quote; `\r`, `\n`
//! and `\r\n` end records outside quotes; blank lines are skipped). Partitioned runs use it to find
//! record boundaries; [`Tracked`] runs it over the bytes the parser reads, to count physical
//! lines, to bound the size of a field and a record, and to tell at the end of the file whether
//! a quote was left open (the parser itself would silently read the rest of the file as one
//! field).

use std::io::{self, Read};

/// The largest CSV field, in bytes: a field longer than this stops the read (a runaway quote or a
/// wrong delimiter would otherwise make the parser allocate the rest of the file as one value).
pub const MAX_FIELD_BYTES: u64 = 1 << 20;
/// The largest CSV record, in bytes, delimiters included.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// The UTF-8 byte-order mark, which the parser skips at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A state of the CSV parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvState {
    /// Between records: line ends here are blank lines and are skipped.
    StartRecord,
    /// Just after a delimiter.
    StartField,
    /// In an unquoted field.
    InField,
    /// In a quoted field.
    InQuoted,
    /// Just after a quote inside a quoted field: a second quote is a literal one.
    QuoteInQuoted,
    /// Just after a `\r` that ended a record: a `\n` here belongs to it.
    AfterCr,
}

/// The parser's state machine for one delimiter.
#[derive(Debug, Clone)]
pub struct CsvScanner {
    delimiter: u8,
    state: CsvState,
}

impl CsvScanner {
    /// A scanner at the start of a record.
    pub fn new(delimiter: u8) -> Self {
        Self {
            delimiter,
            state: CsvState::StartRecord,
        }
    }

    /// The current state.
    pub fn state(&self) -> CsvState {
        self.state
    }

    /// Whether `b` can end an unquoted field.
    pub fn is_special(&self, b: u8) -> bool {
        b == self.delimiter || b == b'\r' || b == b'\n'
    }

    /// How many bytes at the start of `bytes` cannot change the state (a run inside a quoted or
    /// an unquoted field), so that callers can skip them without [`CsvScanner::step`].
    pub fn run_len(&self, bytes: &[u8]) -> usize {
        match self.state {
            CsvState::InQuoted => bytes.iter().position(|&c| c == b'"').unwrap_or(bytes.len()),
            CsvState::InField => bytes
                .iter()
                .position(|&c| self.is_special(c))
                .unwrap_or(bytes.len()),
            _ => 0,
        }
    }

    /// A byte that is not a quote, where a field may go on unquoted: a delimiter starts the next
    /// field, a line break ends the record, anything else is field text.
    fn outside_quotes(&mut self, b: u8, term: bool, end_record: impl Fn(&mut Self) -> bool) -> bool {
        if b == self.delimiter {
            self.state = CsvState::StartField;
            false
        } else if term {
            end_record(self)
        } else {
            self.state = CsvState::InField;
            false
        }
    }

    /// One byte; `true` if it ends a record.
    pub fn step(&mut self, b: u8) -> bool {
        let term = b == b'\r' || b == b'\n';
        let end_record = |s: &mut Self| {
            s.state = if b == b'\r' {
                CsvState::AfterCr
            } else {
                CsvState::StartRecord
            };
            true
        };
        let mut state = self.state;
        if state == CsvState::AfterCr {
            if b == b'\n' {
                self.state = CsvState::StartRecord;
                return false;
            }
            state = CsvState::StartRecord;
        }
        match state {
            CsvState::StartRecord | CsvState::StartField => {
                if state == CsvState::StartRecord && term {
                    self.state = CsvState::StartRecord;
                    false
                } else if b == b'"' {
                    self.state = CsvState::InQuoted;
                    false
                } else {
                    self.outside_quotes(b, term, end_record)
                }
            }
            CsvState::InField => self.outside_quotes(b, term, end_record),
            CsvState::InQuoted => {
                if b == b'"' {
                    self.state = CsvState::QuoteInQuoted;
                }
                false
            }
            CsvState::QuoteInQuoted => {
                if b == b'"' {
                    self.state = CsvState::InQuoted;
                    false
                } else {
                    self.outside_quotes(b, term, end_record)
                }
            }
            CsvState::AfterCr => unreachable!("handled above"),
        }
    }
}

/// What [`Tracked`] found wrong in the bytes it passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanProblem {
    /// A field grew past [`MAX_FIELD_BYTES`]: the line its record starts on and its 1-based
    /// column.
    FieldTooLarge {
        /// The physical line on which the record starts (1-based, counted from where reading
        /// started).
        line: u64,
        /// The field's 1-based position in the record.
        column: usize,
    },
    /// A record grew past [`MAX_RECORD_BYTES`].
    RecordTooLarge {
        /// The physical line on which the record starts.
        line: u64,
    },
}

impl ScanProblem {
    /// The same problem with its line moved down by `lines` (for a tracker that started
    /// reading part way into a file).
    #[must_use]
    pub fn shifted(self, lines: u64) -> Self {
        match self {
            ScanProblem::FieldTooLarge { line, column } => ScanProblem::FieldTooLarge {
                line: line + lines,
                column,
            },
            ScanProblem::RecordTooLarge { line } => ScanProblem::RecordTooLarge { line: line + lines },
        }
    }
}

/// A reader that passes bytes through to the CSV parser while running [`CsvScanner`] over them:
/// it counts physical lines, refuses a field or a record above the size limits (the read fails
/// with an I/O error and [`Tracked::problem`] says why), and knows at the end of the input
/// whether a quote is still open.
#[derive(Debug)]
pub struct Tracked<R> {
    inner: R,
    scan: CsvScanner,
    /// Whether the first bytes were checked for a byte-order mark.
    started: bool,
    /// `\n` bytes passed on.
    newlines: u64,
    /// The last byte passed on.
    last: Option<u8>,
    /// The line on which the open quoted field started.
    quote_line: u64,
    /// The line on which the current record started.
    record_line: u64,
    /// The current field's 0-based position in its record, its bytes and the record's bytes.
    field: usize,
    field_bytes: u64,
    record_bytes: u64,
    ended: bool,
    problem: Option<ScanProblem>,
    /// Whether whole fields are taken in one step ([`Self::whole_field`]); off only in tests,
    /// which check that it changes nothing.
    whole_fields: bool,
}

impl<R: Read> Tracked<R> {
    /// Tracks `inner`, which starts at the start of a record (line 1 is the line it starts on).
    pub fn new(inner: R, delimiter: u8) -> Self {
        Self {
            inner,
            scan: CsvScanner::new(delimiter),
            started: false,
            newlines: 0,
            last: None,
            quote_line: 0,
            record_line: 1,
            field: 0,
            field_bytes: 0,
            record_bytes: 0,
            ended: false,
            problem: None,
            whole_fields: true,
        }
    }

    /// Why the last read failed, if the tracker failed it.
    pub fn problem(&self) -> Option<ScanProblem> {
        self.problem
    }

    /// Once the input has ended: the line on which a quoted field that is still open started.
    pub fn unclosed_quote(&self) -> Option<u64> {
        (self.ended && self.scan.state() == CsvState::InQuoted).then_some(self.quote_line)
    }

    /// Once the input has ended: its number of physical lines (`\n` bytes, plus one for a last
    /// line without a line end).
    pub fn lines(&self) -> Option<u64> {
        self.ended
            .then(|| self.newlines + u64::from(self.last.is_some_and(|b| b != b'\n')))
    }

    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ScanProblem> {
        if !self.started {
            self.started = true;
            if let Some(rest) = bytes.strip_prefix(BOM) {
                bytes = rest;
            }
        }
        if let Some((head, region, tail)) = self.whole_fields.then(|| self.unquoted_region(bytes)).flatten() {
            self.feed_steps(head)?;
            self.skip_unquoted(region);
            bytes = tail;
        }
        self.feed_steps(bytes)
    }

    /// Splits `bytes` around the run of whole unquoted lines in its middle that
    /// [`Self::skip_unquoted`] can take without looking at each field: `bytes` holds no quote,
    /// no quote is open, and `bytes` is short enough that no field or record wholly inside it
    /// can pass the size limits. The run starts after the first `\n` (so in
    /// [`CsvState::StartRecord`]) and ends with the last one. `None` if there is no such run.
    fn unquoted_region<'b>(&self, bytes: &'b [u8]) -> Option<(&'b [u8], &'b [u8], &'b [u8])> {
        if bytes.len() as u64 > MAX_FIELD_BYTES
            || matches!(self.scan.state(), CsvState::InQuoted | CsvState::QuoteInQuoted)
            || bytes.contains(&b'"')
        {
            return None;
        }
        let first = bytes.iter().position(|&c| c == b'\n')?;
        let last = bytes.iter().rposition(|&c| c == b'\n')?;
        if last <= first {
            return None;
        }
        let (head, rest) = bytes.split_at(first + 1);
        let (region, tail) = rest.split_at(last - first);
        Some((head, region, tail))
    }

    /// Takes a run of whole lines without a quote, starting in [`CsvState::StartRecord`] and
    /// ending with `\n`, leaving the tracker as [`Self::byte`] would have byte by byte: no quote
    /// opens, the run ends between records, and the only thing to find is the line on which its
    /// last record started (a record starts at a byte that is not a line end, just after one).
    fn skip_unquoted(&mut self, region: &[u8]) {
        let is_term = |c: &u8| *c == b'\n' || *c == b'\r';
        let count = |part: &[u8]| -> u64 { part.iter().map(|&c| u64::from(c == b'\n')).sum() };
        if let Some(q) = region.iter().rposition(|c| !is_term(c)) {
            let start = region[..q].iter().rposition(is_term).map_or(0, |t| t + 1);
            let before = count(&region[..start]);
            self.record_line = self.newlines + before + 1;
            self.newlines += before + count(&region[start..]);
        } else {
            self.newlines += count(region);
        }
        self.scan.state = CsvState::StartRecord;
        self.last = Some(b'\n');
        self.field = 0;
        self.field_bytes = 0;
        self.record_bytes = 0;
    }

    /// [`Self::feed`] without the shortcut over unquoted lines.
    fn feed_steps(&mut self, mut bytes: &[u8]) -> Result<(), ScanProblem> {
        while !bytes.is_empty() {
            if let Some(taken) = self.whole_fields.then(|| self.whole_field(bytes)).flatten() {
                bytes = &bytes[taken..];
                continue;
            }
            let run = self.scan.run_len(bytes);
            let (taken, b) = if run > 0 {
                // Only a run inside quotes can hold a line end: an unquoted one stops before it.
                if self.scan.state() == CsvState::InQuoted {
                    let newlines: u64 = bytes[..run].iter().map(|&c| u64::from(c == b'\n')).sum();
                    self.newlines += newlines;
                }
                self.field_bytes += run as u64;
                self.record_bytes += run as u64;
                (run, bytes[run - 1])
            } else {
                let b = bytes[0];
                self.byte(b);
                (1, b)
            };
            self.last = Some(b);
            bytes = &bytes[taken..];
            if self.field_bytes > MAX_FIELD_BYTES {
                return Err(ScanProblem::FieldTooLarge {
                    line: self.record_line,
                    column: self.field + 1,
                });
            }
            if self.record_bytes > MAX_RECORD_BYTES {
                return Err(ScanProblem::RecordTooLarge {
                    line: self.record_line,
                });
            }
        }
        Ok(())
    }

    /// The common case in one step: at the start of a field, a whole field (quoted without a
    /// quote or a `\n` inside, or unquoted) and the delimiter or `\n` after it, all in `bytes`, within the
    /// size limits. Returns the bytes taken, having left the tracker as [`Self::byte`] and the
    /// runs would have, byte by byte; `None` (nothing changed) for anything else.
    fn whole_field(&mut self, bytes: &[u8]) -> Option<usize> {
        let state = self.scan.state();
        if !matches!(state, CsvState::StartRecord | CsvState::StartField) {
            return None;
        }
        let delimiter = self.scan.delimiter;
        let (&first, rest) = bytes.split_first()?;
        // The terminator's offset. A quoted field holding a line end is left to the byte loop,
        // which counts lines.
        let end = if first == b'"' {
            let close = 1 + rest.iter().position(|&c| c == b'"' || c == b'\n')?;
            if bytes[close] != b'"' {
                return None;
            }
            close + 1
        } else if first == delimiter || first == b'\r' || first == b'\n' {
            return None;
        } else {
            1 + rest
                .iter()
                .position(|&c| c == delimiter || c == b'\r' || c == b'\n')?
        };
        let term = *bytes.get(end)?;
        if term != delimiter && term != b'\n' {
            return None;
        }
        // The field's bytes, and the record's, before the terminator.
        let field_bytes = self.field_bytes + end as u64;
        let record_bytes = self.record_bytes + end as u64;
        if field_bytes > MAX_FIELD_BYTES || record_bytes > MAX_RECORD_BYTES {
            return None;
        }
        let line = self.newlines + 1;
        if state == CsvState::StartRecord {
            self.record_line = line;
        }
        if first == b'"' {
            self.quote_line = line;
        }
        self.last = Some(term);
        if term == delimiter {
            self.scan.state = CsvState::StartField;
            self.field += 1;
            self.field_bytes = 0;
            self.record_bytes = record_bytes + 1;
        } else {
            self.scan.state = CsvState::StartRecord;
            self.newlines += 1;
            self.field = 0;
            self.field_bytes = 0;
            self.record_bytes = 0;
        }
        Some(end + 1)
    }

    fn byte(&mut self, b: u8) {
        let before = self.scan.state();
        let ended = self.scan.step(b);
        let line = self.newlines + 1;
        if b == b'\n' {
            self.newlines += 1;
        }
        let after = self.scan.state();
        if matches!(before, CsvState::StartRecord | CsvState::AfterCr)
            && !matches!(after, CsvState::StartRecord | CsvState::AfterCr)
        {
            self.record_line = line;
        }
        if after == CsvState::InQuoted
            && matches!(
                before,
                CsvState::StartRecord | CsvState::StartField | CsvState::AfterCr
            )
        {
            self.quote_line = line;
        }
        if ended || matches!(after, CsvState::StartRecord | CsvState::AfterCr) {
            self.field = 0;
            self.field_bytes = 0;
            self.record_bytes = 0;
        } else if after == CsvState::StartField {
            self.field += 1;
            self.field_bytes = 0;
            self.record_bytes += 1;
        } else {
            self.field_bytes += 1;
            self.record_bytes += 1;
        }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(problem) = self.problem {
            return Err(io::Error::other(format!("{problem:?}")));
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.ended = true;
        } else if let Err(problem) = self.feed(&buf[..n]) {
            self.problem = Some(problem);
            return Err(io::Error::other("a CSV field or record is larger than the limit"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads all of `text` through a tracker: the problem, the open quote's line and the lines.
    fn check(text: &str, expected: (Option<ScanProblem>, Option<u64>, Option<u64>)) {
        let mut tracked = Tracked::new(text.as_bytes(), b',');
        let mut sink = Vec::new();
        let problem = tracked.read_to_end(&mut sink).err().and(tracked.problem());
        assert_eq!(
            (problem, tracked.unclosed_quote(), tracked.lines()),
            expected,
            "{text:?}"
        );
    }

    /// Everything a tracker knows, to compare two.
    fn state<R>(t: &Tracked<R>) -> impl PartialEq + std::fmt::Debug {
        (
            (t.scan.state(), t.newlines, t.last, t.quote_line, t.record_line),
            (t.field, t.field_bytes, t.record_bytes, t.ended, t.problem),
        )
    }

    /// Feeds `bytes` cut at `cuts` to a scanner with the shortcuts and to one byte by byte, and
    /// checks that they agree after every chunk.
    fn same_as_byte_by_byte(
        bytes: &[u8],
        cuts: Vec<usize>,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut fast = Tracked::new(&b""[..], b',');
        let mut slow = Tracked::new(&b""[..], b',');
        slow.whole_fields = false;
        for w in cuts.windows(2) {
            let chunk = &bytes[w[0]..w[1]];
            proptest::prop_assert_eq!(fast.feed(chunk), slow.feed(chunk));
            proptest::prop_assert_eq!(state(&fast), state(&slow));
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn whole_fields_change_nothing(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just(b'a'), proptest::strategy::Just(b','),
                proptest::strategy::Just(b'"'), proptest::strategy::Just(b'\n'),
                proptest::strategy::Just(b'\r'), proptest::strategy::Just(b'b'),
            ], 0..120),
            cuts in proptest::collection::vec(0_usize..120, 0..6),
        ) {
            same_as_byte_by_byte(&bytes, cuts)?;
        }
    }

    proptest::proptest! {
        /// Without quotes, so that the shortcut over whole unquoted lines is taken.
        #[test]
        fn unquoted_lines_change_nothing(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just(b'a'), proptest::strategy::Just(b','),
                proptest::strategy::Just(b'\n'), proptest::strategy::Just(b'\r'),
                proptest::strategy::Just(b'b'),
            ], 0..200),
            cuts in proptest::collection::vec(0_usize..200, 0..6),
            quote in proptest::option::of(0_usize..200),
        ) {
            let mut bytes = bytes;
            // At most one quote, so that a chunk after it may start inside quotes.
            if let Some(at) = quote.filter(|&at| at < bytes.len()) {
                bytes[at] = b'"';
            }
            same_as_byte_by_byte(&bytes, cuts)?;
        }
    }

    #[test]
    fn quotes_lines_and_limits() {
        check("a,b\n1,2\n", (None, None, Some(2)));
        check("a,b\n1,2", (None, None, Some(2)));
        check("", (None, None, Some(0)));
        check("a,b\n\"1\n\",2\n3,4\n", (None, None, Some(4)));
        check("a,b\n1,\"2\n3,4\n5,6\n", (None, Some(2), Some(4)));
        check("a,b\n1,\"2\"\"\n", (None, Some(2), Some(2)));
        check("a,b\r\n1,x\"y\r\n", (None, None, Some(2)));
        check("\u{feff}\"a\",b\n", (None, None, Some(1)));
        let long = "x".repeat(usize::try_from(MAX_FIELD_BYTES).unwrap() + 1);
        check(
            &format!("a,b\n1,2\n3,{long}\n"),
            (
                Some(ScanProblem::FieldTooLarge { line: 3, column: 2 }),
                None,
                None,
            ),
        );
        check(
            &format!("a,b\n\"{long}"),
            (
                Some(ScanProblem::FieldTooLarge { line: 2, column: 1 }),
                None,
                None,
            ),
        );
        let wide = "x,".repeat(usize::try_from(MAX_RECORD_BYTES).unwrap() / 2 + 1);
        check(
            &format!("a\n{wide}\n"),
            (Some(ScanProblem::RecordTooLarge { line: 2 }), None, None),
        );
    }
}
