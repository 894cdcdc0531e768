//! Partitioned runs: which records partition `i` of `n` owns. The records of a CSV slice are
//! read through the extract reader ([`linklab_extract::ExtractReader::open_csv_range`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use linklab_extract::CsvRange;
use linklab_extract::scan::{CsvScanner, CsvState as State};

/// The read buffer of the scanner.
const BUFFER: usize = 1 << 20;
/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A record boundary: where a reader would start reading the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Boundary {
    /// The byte offset.
    pub byte: u64,
    /// Data records (not the header) that end before it.
    pub records_before: u64,
    /// `\n` bytes before `byte - 1` (the line count the `csv` crate reports is based on them).
    pub newlines_before_prev: u64,
    /// Whether the byte at `byte - 1` is `\n`.
    pub after_newline: bool,
}

/// The slice of a CSV file that partition `i` of `n` owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CsvSlice {
    pub data_start: u64,
    pub size: u64,
    pub start: Boundary,
    pub end: Boundary,
}

impl CsvSlice {
    /// The slice as the extract reader's byte range.
    pub(crate) fn range(&self) -> CsvRange {
        CsvRange {
            start: self.start.byte,
            end: self.end.byte,
            records_before: self.start.records_before,
            newlines_before_prev: self.start.newlines_before_prev,
            after_newline: self.start.after_newline,
        }
    }
}

/// The scanner: the parser's state machine over the file's bytes, counting records and `\n`
/// bytes.
struct Scanner {
    scan: CsvScanner,
    offset: u64,
    newlines: u64,
    /// Records completed so far, the header included.
    records: u64,
}

impl Scanner {
    /// A record ended with the terminator `byte` at the current offset (already counted in
    /// `newlines`); the next one may start after it.
    fn boundary_after(&self, byte: u8) -> Boundary {
        Boundary {
            byte: self.offset + 1,
            records_before: self.records.saturating_sub(1),
            newlines_before_prev: self.newlines - u64::from(byte == b'\n'),
            after_newline: byte == b'\n',
        }
    }
}

/// Finds the boundaries of partition `index` of `count` in a CSV file. Partition `i` owns the
/// records whose first byte lies in `[d + (size - d)(i - 1)/n, d + (size - d) i/n)`, where `d`
/// is the first byte after the header; a record's first byte is where the `csv` crate starts
/// reading it (just after the line end of the record before). The scan runs from the start of
/// the file to the end of the slice, so that quotes are tracked from a known state.
pub(crate) fn csv_slice(path: &Path, delimiter: u8, index: u32, count: u32) -> io::Result<CsvSlice> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut buf = vec![0_u8; BUFFER];
    let mut s = Scanner {
        scan: CsvScanner::new(delimiter),
        offset: 0,
        newlines: 0,
        records: 0,
    };
    // Cuts are known once the header has ended.
    let mut data_start = None;
    let mut cuts: [u64; 2] = [u64::MAX; 2];
    let mut found: Vec<Boundary> = Vec::with_capacity(2);
    let mut first_chunk = true;
    'read: loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if first_chunk {
            first_chunk = false;
            if chunk.starts_with(BOM) {
                chunk = &chunk[BOM.len()..];
                s.offset = BOM.len() as u64;
            }
        }
        let mut k = 0;
        while k < chunk.len() {
            let b = chunk[k];
            // Fast path: a run of bytes that cannot change the state.
            let run = s.scan.run_len(&chunk[k..]);
            if run > 0 {
                if s.scan.state() == State::InQuoted {
                    let newlines: u64 = chunk[k..k + run].iter().map(|&c| u64::from(c == b'\n')).sum();
                    s.newlines += newlines;
                }
                s.offset += run as u64;
                k += run;
                continue;
            }
            let ended = s.scan.step(b);
            if b == b'\n' {
                s.newlines += 1;
            }
            if ended {
                s.records += 1;
                let boundary = s.boundary_after(b);
                if data_start.is_none() {
                    data_start = Some(boundary.byte);
                    cuts = cut_points(boundary.byte, size, index, count);
                }
                while found.len() < 2 && cuts[found.len()] <= boundary.byte {
                    found.push(boundary);
                }
                if found.len() == 2 {
                    break 'read;
                }
            }
            s.offset += 1;
            k += 1;
        }
    }
    if found.len() < 2 {
        // The end of the file: a last record without a line end still counts.
        if !matches!(s.scan.state(), State::StartRecord | State::AfterCr) {
            s.records += 1;
        }
        let at_end = Boundary {
            byte: size,
            records_before: s.records.saturating_sub(1),
            newlines_before_prev: s.newlines,
            after_newline: false,
        };
        while found.len() < 2 {
            found.push(at_end);
        }
    }
    Ok(CsvSlice {
        data_start: data_start.unwrap_or(size),
        size,
        start: found[0],
        end: found[1],
    })
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The nominal cut points `[start, end)` of partition `index` of `count` over `[from, to)`.
pub(crate) fn cut_points(from: u64, to: u64, index: u32, count: u32) -> [u64; 2] {
    let span = u128::from(to.saturating_sub(from));
    let at = |i: u32| {
        let offset = span * u128::from(i) / u128::from(count);
        from + u64::try_from(offset).expect("a share of a u64 span fits in a u64")
    };
    [at(index - 1), at(index)]
}

/// The row groups `[start, end)` of partition `index` of `count`, and the rows before `start`
/// and in the slice, from the row counts of the groups.
pub(crate) fn row_group_slice(group_rows: &[u64], index: u32, count: u32) -> (u64, u64, u64, u64) {
    let groups = group_rows.len() as u64;
    let [start, end] = cut_points(0, groups, index, count);
    let as_index = |g: u64| usize::try_from(g).expect("a row group index fits in usize");
    let before: u64 = group_rows[..as_index(start)].iter().sum();
    let rows: u64 = group_rows[as_index(start)..as_index(end)].iter().sum();
    (start, end, before, rows)
}

/// The name prefix of partition `index` of `count`'s part files: `part-p0003of0008`.
pub(crate) fn part_prefix(index: u32, count: u32) -> String {
    format!("part-p{index:04}of{count:04}")
}

/// The file name of a partial manifest: `<extract>.manifest.part-0003-of-0008.json`.
pub(crate) fn partial_manifest_name(extract: &str, index: u32, count: u32) -> String {
    format!("{extract}.manifest.part-{index:04}-of-{count:04}.json")
}

/// The `(index, count)` of a partial manifest's file name of `extract`, if it is one.
pub(crate) fn parse_partial_manifest_name(extract: &str, name: &str) -> Option<(u32, u32)> {
    let rest = name
        .strip_prefix(extract)?
        .strip_prefix(".manifest.part-")?
        .strip_suffix(".json")?;
    let (i, n) = rest.split_once("-of-")?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(i) || !digits(n) {
        return None;
    }
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// Whether a part file's name is a single run's (`part-00000.parquet`).
pub(crate) fn is_single_run_part(name: &str) -> bool {
    name.strip_prefix("part-")
        .and_then(|r| r.strip_suffix(".parquet"))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use csv::ByteRecord;
    use proptest::prelude::*;

    /// Where the `csv` crate starts reading each data record, and the line it reports.
    fn csv_crate_starts(bytes: &[u8]) -> (Vec<u64>, Vec<u64>, u64) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut record = ByteRecord::new();
        let mut starts = Vec::new();
        let mut lines = Vec::new();
        let mut header_end = bytes.len() as u64;
        let mut first = true;
        while reader.read_byte_record(&mut record).unwrap() {
            if first {
                first = false;
                header_end = reader.position().byte();
                continue;
            }
            let p = record.position().unwrap();
            starts.push(p.byte());
            lines.push(p.line());
        }
        (starts, lines, header_end)
    }

    fn slices(bytes: &[u8], n: u32) -> Vec<CsvSlice> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, bytes).unwrap();
        (1..=n).map(|i| csv_slice(&path, b',', i, n).unwrap()).collect()
    }

    fn check(bytes: &[u8], n: u32) {
        let (starts, _, header_end) = csv_crate_starts(bytes);
        let all = slices(bytes, n);
        for s in &all {
            // The header ends where the csv crate's second read starts.
            assert_eq!(s.data_start, header_end.min(s.size), "{bytes:?}");
            // Partition boundaries are record starts (or the end of the file) and count the
            // records before them.
            for b in [s.start, s.end] {
                let before = starts.iter().filter(|&&p| p < b.byte).count() as u64;
                assert_eq!(b.records_before, before, "{bytes:?} {b:?}");
                assert!(
                    b.byte == s.size
                        || b.byte == s.data_start
                        || starts.contains(&b.byte)
                        || starts.iter().all(|&p| p < b.byte),
                    "{bytes:?} {b:?}"
                );
            }
        }
        // The slices tile the data.
        assert_eq!(all[0].start.byte, all[0].data_start);
        assert_eq!(all[all.len() - 1].end.byte, all[0].size);
        for w in all.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
    }

    #[test]
    fn boundaries_follow_the_csv_parser() {
        for (text, n) in [
            (&b"a,b\n1,2\n3,4\n"[..], 3),
            (b"a,b\r\n1,\"x\r\ny\"\r\n\r\n3,4", 4),
            (b"a\n\"q\"\"\n\",\n\n\nz", 5),
            (b"a,b", 2),
            (b"\xEF\xBB\xBFa,b\n1,2\n", 2),
            (b"a\nx\"y\nz\n", 3),
            (b"a\n\"x\"y\"\nz\n", 3),
        ] {
            check(text, n);
        }
    }

    proptest! {
        #[test]
        fn random_bytes_split_where_the_parser_would(
            body in proptest::collection::vec(prop_oneof![
                Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(0xe9_u8)
            ], 0..80),
            n in 1_u32..6,
        ) {
            let mut bytes = b"h1,h2\n".to_vec();
            bytes.extend(body);
            check(&bytes, n);
        }
    }

    #[test]
    fn names() {
        assert_eq!(part_prefix(3, 8), "part-p0003of0008");
        assert_eq!(
            partial_manifest_name("rel", 3, 8),
            "rel.manifest.part-0003-of-0008.json"
        );
        assert_eq!(
            parse_partial_manifest_name("rel", "rel.manifest.part-0003-of-0008.json"),
            Some((3, 8))
        );
        assert_eq!(parse_partial_manifest_name("rel", "rel.manifest.json"), None);
        assert_eq!(
            parse_partial_manifest_name("re", "rel.manifest.part-0003-of-0008.json"),
            None
        );
        assert!(is_single_run_part("part-00012.parquet"));
        assert!(!is_single_run_part("part-p0001of0002-00000.parquet"));
    }
}
