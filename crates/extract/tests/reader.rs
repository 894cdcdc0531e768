//! Data-driven tests of the extract readers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Date64Array, Float64Array, Int32Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use linklab_extract::{Encoding, ExtractError, ExtractReader, InputFormat};
use proptest::prelude::*;

const CSV: InputFormat = InputFormat::CSV;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// Reads the whole file and renders every row and reject, one per line:
/// `r<record> l<line>: v1|v2` or `r<record> l<line> reject <reason>`.
fn render(reader: ExtractReader) -> Result<String, ExtractError> {
    let mut out = String::new();
    for batch in reader {
        let batch = batch?;
        writeln!(
            out,
            "-- batch of {} rows, {} rejects",
            batch.len(),
            batch.rejects().len()
        )
        .unwrap();
        let mut lines: Vec<(u64, String)> = Vec::new();
        for i in 0..batch.len() {
            let values: Vec<&str> = batch.columns().iter().map(|c| c.get(i)).collect();
            let line = batch.line(i).map_or(String::new(), |l| format!(" l{l}"));
            lines.push((
                batch.records()[i],
                format!("r{}{line}: {}", batch.records()[i], values.join("|")),
            ));
        }
        for r in batch.rejects() {
            let line = r.line.map_or(String::new(), |l| format!(" l{l}"));
            lines.push((r.record, format!("r{}{line} reject {}", r.record, r.reason)));
        }
        lines.sort();
        for (_, l) in lines {
            writeln!(out, "{l}").unwrap();
        }
    }
    Ok(out)
}

/// Reads `bytes` as CSV with the given format, columns and batch size; the result or the error
/// message (with the temp folder replaced by `[dir]`).
fn read(bytes: &[u8], format: InputFormat, columns: &[&str], batch_rows: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "extract.csv", bytes);
    let result = ExtractReader::open(&path, format, &cols(columns), batch_rows).and_then(render);
    match result {
        Ok(text) => text,
        Err(e) => format!(
            "error: {}",
            e.to_string().replace(&dir.path().display().to_string(), "[dir]")
        ),
    }
}

fn check(bytes: &[u8], columns: &[&str], expected: &str) {
    assert_eq!(
        read(bytes, CSV, columns, 1000),
        expected,
        "input {:?}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn csv_cases() {
    // Column mapping and order.
    check(
        b"a,b,c\n1,2,3\n4,5,6\n",
        &["c", "a"],
        "-- batch of 2 rows, 0 rejects\nr1 l2: 3|1\nr2 l3: 6|4\n",
    );
    // A repeated request.
    check(
        b"a,b\n1,2\n",
        &["a", "a"],
        "-- batch of 1 rows, 0 rejects\nr1 l2: 1|1\n",
    );
    // Quoted fields with delimiters, quotes and newlines; CRLF line ends. (The csv crate counts
    // lines one short after a CRLF header; record numbers are exact.)
    check(
        b"a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",z\r\n",
        &["a", "b"],
        "-- batch of 2 rows, 0 rejects\nr1 l1: x,y|say \"hi\"\nr2 l2: multi\nline|z\n",
    );
    // Lines after a quoted newline are numbered by physical line.
    check(
        b"a\n\"1\n2\"\n3\n",
        &["a"],
        "-- batch of 2 rows, 0 rejects\nr1 l2: 1\n2\nr2 l4: 3\n",
    );
    // Values are not trimmed; empty values stay empty; header names are trimmed.
    check(
        b" a , b\n x ,\n",
        &["a", "b"],
        "-- batch of 1 rows, 0 rejects\nr1 l2:  x |\n",
    );
    // Ragged rows are rejected and reading goes on; blank lines are skipped (the csv crate does not
    // count a skipped blank line in its line numbers).
    check(
        b"a,b\n1,2\n3\n4,5,6\n\n7,8\n",
        &["b"],
        "-- batch of 2 rows, 2 rejects\nr1 l2: 2\nr2 l3 reject wrong_field_count\nr3 l4 reject wrong_field_count\nr4 l5: 8\n",
    );
    // Windows-1252 bytes in a UTF-8 file: the row is rejected, even if the bad field is not requested.
    check(
        b"a,b\nJos\xe9,1\nok,2\nx,\xff\n",
        &["a"],
        "-- batch of 1 rows, 2 rejects\nr1 l2 reject invalid_utf8\nr2 l3: ok\nr3 l4 reject invalid_utf8\n",
    );
    // A UTF-8 byte-order mark is skipped.
    check(
        b"\xEF\xBB\xBFid,name\n1,Jos\xc3\xa9\n",
        &["id", "name"],
        "-- batch of 1 rows, 0 rejects\nr1 l2: 1|José\n",
    );
    // A header only yields nothing; so does a header with a final newline.
    check(b"a,b", &["a"], "");
    check(b"a,b\n", &["a"], "");
    // A last line without a newline is read.
    check(
        b"a\n1\n2",
        &["a"],
        "-- batch of 2 rows, 0 rejects\nr1 l2: 1\nr2 l3: 2\n",
    );
}

#[test]
fn windows_1252_is_decoded_per_field() {
    let bytes = b"name,town\nJos\xe9,Z\xfcrich\n\x80uro,\x93q\x94\n";
    let format = InputFormat::Csv {
        delimiter: b',',
        encoding: Encoding::Windows1252,
    };
    assert_eq!(
        read(bytes, format, &["name", "town"], 10),
        "-- batch of 2 rows, 0 rejects\nr1 l2: José|Zürich\nr2 l3: €uro|\u{201c}q\u{201d}\n"
    );
}

#[test]
fn other_delimiters() {
    let format = InputFormat::Csv {
        delimiter: b';',
        encoding: Encoding::Utf8,
    };
    assert_eq!(
        read(b"a;b\n1,5;2\n", format, &["a", "b"], 10),
        "-- batch of 1 rows, 0 rejects\nr1 l2: 1,5|2\n"
    );
    let format = InputFormat::Csv {
        delimiter: b'\t',
        encoding: Encoding::Utf8,
    };
    assert_eq!(
        read(b"a\tb\n1\t2\n", format, &["b"], 10),
        "-- batch of 1 rows, 0 rejects\nr1 l2: 2\n"
    );
}

#[test]
fn batches_hold_at_most_batch_rows_records_including_rejects() {
    let text = b"a\n1\n2\n3\n4,x\n5\n6,x\n7,x\n8\n";
    assert_eq!(
        read(text, CSV, &["a"], 3),
        "-- batch of 3 rows, 0 rejects\nr1 l2: 1\nr2 l3: 2\nr3 l4: 3\n\
         -- batch of 1 rows, 2 rejects\nr4 l5 reject wrong_field_count\nr5 l6: 5\nr6 l7 reject wrong_field_count\n\
         -- batch of 1 rows, 1 rejects\nr7 l8 reject wrong_field_count\nr8 l9: 8\n"
    );
}

#[test]
fn errors() {
    let errors: Vec<String> = [
        read(b"", CSV, &["a"], 10),
        read(b"\n\n", CSV, &["a"], 10),
        read(b"a,b\n1,2\n", CSV, &["a", "dob", "Nino"], 10),
        read(b"first_name,NINO\n1,2\n", CSV, &["first_name", "nino"], 10),
        // The wrong delimiter: the header is one column; the error says which delimiter it seems to use.
        read(
            b"first_name;surname;dob\nZQXCANARYONE;A;B\n",
            CSV,
            &["surname"],
            10,
        ),
        read(b"a,a\n1,2\n", CSV, &["a"], 10),
        read(b"a\xff,b\n1,2\n", CSV, &["b"], 10),
        read(b"a\n1\n", CSV, &["a"], 0),
        read(
            b"a\n1\n",
            InputFormat::Csv {
                delimiter: b'"',
                encoding: Encoding::Utf8,
            },
            &["a"],
            10,
        ),
    ]
    .into_iter()
    .collect();
    insta::assert_snapshot!(errors.join("\n"));
    let err = ExtractReader::open(Path::new("/nonexistent/extract.csv"), CSV, &cols(&["a"]), 10).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot open extract /nonexistent/extract.csv: "),
        "{err}"
    );
}

/// A canary in a header-less file never reaches an error message.
#[test]
fn errors_never_quote_the_header() {
    let text = b"ZQXCANARYONE,AB123456C\nZQXCANARYTWO,CD123456A\n";
    let message = read(text, CSV, &["surname", "nino"], 10);
    assert!(message.starts_with("error: "), "{message}");
    assert!(
        !message.contains("ZQXCANARY") && !message.contains("AB123456"),
        "{message}"
    );
}

fn parquet_file(dir: &Path, columns: Vec<(&str, ArrayRef)>) -> PathBuf {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let path = dir.join("extract.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    path
}

#[test]
fn parquet_columns_are_read_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = parquet_file(
        dir.path(),
        vec![
            (
                "name",
                Arc::new(StringArray::from(vec![Some("José"), None, Some("")])) as ArrayRef,
            ),
            (
                "dob",
                Arc::new(Date32Array::from(vec![Some(5172), Some(-1), None])),
            ),
            (
                "when",
                Arc::new(Date64Array::from(vec![Some(86_400_000 * 2 + 5), None, Some(-1)])),
            ),
            ("n", Arc::new(Int32Array::from(vec![Some(-7), Some(0), None]))),
            (
                "x",
                Arc::new(Float64Array::from(vec![Some(1.5), Some(2.0), Some(1e-7)])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ),
            ("skipped", Arc::new(StringArray::from(vec!["s1", "s2", "s3"]))),
        ],
    );
    let reader = ExtractReader::open(
        &path,
        InputFormat::Parquet,
        &cols(&["flag", "x", "n", "when", "dob", "name"]),
        2,
    )
    .unwrap();
    assert_eq!(reader.header_len(), 7);
    assert_eq!(
        render(reader).unwrap(),
        "-- batch of 2 rows, 0 rejects\nr1: true|1.5|-7|1970-01-03|1984-02-29|José\nr2: false|2|0||1969-12-31|\n\
         -- batch of 1 rows, 0 rejects\nr3: |0.0000001||1969-12-31||\n"
    );
    let dict: ArrayRef = Arc::new(
        vec![Some("a"), None, Some("a")]
            .into_iter()
            .collect::<arrow::array::DictionaryArray<arrow::datatypes::Int32Type>>(),
    );
    let dir2 = tempfile::tempdir().unwrap();
    let path = parquet_file(dir2.path(), vec![("d", dict)]);
    let reader = ExtractReader::open(&path, InputFormat::Parquet, &cols(&["d"]), 10).unwrap();
    assert_eq!(
        render(reader).unwrap(),
        "-- batch of 3 rows, 0 rejects\nr1: a\nr2: \nr3: a\n"
    );
}

#[test]
fn parquet_errors() {
    let dir = tempfile::tempdir().unwrap();
    let binary: ArrayRef = Arc::new(arrow::array::BinaryArray::from(vec![&b"x"[..]]));
    let path = parquet_file(
        dir.path(),
        vec![
            ("a", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
            ("blob", binary),
        ],
    );
    let open = |names: &[&str]| {
        ExtractReader::open(&path, InputFormat::Parquet, &cols(names), 10)
            .unwrap_err()
            .to_string()
            .replace(&dir.path().display().to_string(), "[dir]")
    };
    let not_parquet = write(dir.path(), "fake.parquet", b"a,b\n1,2\n");
    let errors = [
        open(&["a", "missing"]),
        open(&["blob"]),
        ExtractReader::open(&not_parquet, InputFormat::Parquet, &cols(&["a"]), 10)
            .unwrap_err()
            .to_string()
            .replace(&dir.path().display().to_string(), "[dir]"),
    ];
    insta::assert_snapshot!(errors.join("\n"));
    assert_eq!(DataType::Binary.to_string(), "Binary");
}

/// Reads `bytes` as a CSV with the columns `names`: the records read before the read stopped,
/// and the error that stopped it (the folder as `[dir]`), or the physical line count.
fn check_stop(bytes: &[u8], names: &[&str], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "x.csv", bytes);
    let reader = ExtractReader::open(&path, CSV, &cols(names), 2).unwrap();
    let summary = reader.summary();
    let mut records = 0;
    let mut end = String::new();
    for batch in reader {
        match batch {
            Ok(batch) => records += batch.len() + batch.rejects().len(),
            Err(e) => end = e.to_string().replace(&dir.path().display().to_string(), "[dir]"),
        }
    }
    if end.is_empty() {
        end = format!("{:?} lines", summary.lines());
    }
    assert_eq!(format!("{records} records; {end}"), expected);
}

/// A quote left open swallows the rest of the file into one field: the read stops and names the
/// line of the quote. A field or record over the size limits stops it too, naming line and
/// column (and the column's name only if the pipeline names it).
#[test]
fn an_open_quote_or_a_huge_field_stops_the_read_naming_its_line() {
    check_stop(
        b"a,b\n1,2\n3,\"4\n5,6\n7,8\n",
        &["b"],
        "2 records; extract [dir]/x.csv: the quote that opens a field on line 3 is never closed, so every line after it would be read as part of that one field; close or remove the quote in the extract",
    );
    check_stop(b"a,b\n1,\"x\ny\"\n\n2,3", &["b"], "2 records; Some(5) lines");
    check_stop(b"a,b\r\n1,\"x\"\"\"\r\n", &["b"], "1 records; Some(2) lines");
    let huge = "x".repeat(usize::try_from(linklab_extract::MAX_FIELD_BYTES).unwrap() + 1);
    check_stop(
        format!("a,b\n1,2\n3,{huge}\n").as_bytes(),
        &["b"],
        "0 records; extract [dir]/x.csv, line 3, column 2 (`b`): a field is longer than 1048576 bytes (1 MiB), the most one CSV field may hold; check the quoting and the delimiter of the extract",
    );
    check_stop(
        format!("a,b\n\"{huge},2\n").as_bytes(),
        &["b"],
        "0 records; extract [dir]/x.csv, line 2, column 1: a field is longer than 1048576 bytes (1 MiB), the most one CSV field may hold; check the quoting and the delimiter of the extract",
    );
    let wide = "x,".repeat(usize::try_from(linklab_extract::MAX_RECORD_BYTES).unwrap() / 2 + 1);
    check_stop(
        format!("a,b\n{wide}\n").as_bytes(),
        &["b"],
        "0 records; extract [dir]/x.csv, line 2: a record is longer than 16777216 bytes (16 MiB), the most one CSV record may hold; check the quoting and the delimiter of the extract",
    );
}

/// A file declared Windows-1252 whose non-ASCII records are all valid UTF-8 is flagged once read
/// (its names were mis-decoded); a true Windows-1252 file, or a plain ASCII one, is not.
#[test]
fn utf8_read_as_windows_1252_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let format = InputFormat::Csv {
        delimiter: b',',
        encoding: Encoding::Windows1252,
    };
    for (bytes, expected) in [
        (&b"a,b\nZo\xc3\xab,1\nAnn,2\n"[..], true),
        (&b"a,b\nZo\xeb,1\nZo\xc3\xab,2\n"[..], false),
        (&b"a,b\nZo\xeb,1\n"[..], false),
        (&b"a,b\nAnn,1\n"[..], false),
    ] {
        let path = write(dir.path(), "w.csv", bytes);
        let reader = ExtractReader::open(&path, format, &cols(&["a"]), 1).unwrap();
        let summary = reader.summary();
        assert!(!summary.utf8_in_windows_1252(), "unknown before the end");
        for batch in reader {
            batch.unwrap();
        }
        assert_eq!(summary.utf8_in_windows_1252(), expected, "{bytes:?}");
    }
}

#[test]
fn format_helpers() {
    assert_eq!(
        InputFormat::from_extension(Path::new("x/y.PARQUET")),
        Some(InputFormat::Parquet)
    );
    assert_eq!(
        InputFormat::from_extension(Path::new("y.csv")),
        Some(InputFormat::CSV)
    );
    assert_eq!(InputFormat::from_extension(Path::new("y.xlsx")), None);
    assert_eq!(Encoding::parse("Windows-1252"), Some(Encoding::Windows1252));
    assert_eq!(Encoding::parse("latin1"), None);
    assert_eq!(Encoding::default().to_string(), "utf-8");
}

proptest! {
    /// Whatever the bytes, reading never panics, and every data record is either yielded or
    /// rejected exactly once, in order (up to a quote left open, which is an error).
    #[test]
    fn every_record_is_yielded_or_rejected(
        body in proptest::collection::vec(prop_oneof![
            Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'a'), Just(0xe9u8), Just(0xc3u8), Just(0xa9u8)
        ], 0..200),
        batch_rows in 1usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"a,b\n".to_vec();
        bytes.extend_from_slice(&body);
        let path = write(dir.path(), "garbage.csv", &bytes);
        let reader = ExtractReader::open(&path, CSV, &cols(&["b"]), batch_rows).unwrap();
        let mut numbers = Vec::new();
        for batch in reader {
            // A quote left open at the end stops the read: it is never the records' silent end.
            if let Err(ExtractError::UnclosedQuote { line, .. }) = &batch {
                prop_assert!(body.contains(&b'"') && *line >= 2);
                break;
            }
            let batch = batch.unwrap();
            prop_assert!(batch.len() + batch.rejects().len() <= batch_rows);
            prop_assert!(batch.len() + batch.rejects().len() > 0);
            prop_assert_eq!(batch.column(0).len(), batch.len());
            let mut these: Vec<u64> = batch.records().to_vec();
            these.extend(batch.rejects().iter().map(|r| r.record));
            these.sort_unstable();
            numbers.extend(these);
        }
        let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
        prop_assert_eq!(numbers, expected);
    }
}

/// Reads `bytes` whole and as consecutive byte ranges cut at the record starts in `cuts` (indices
/// of data records), and checks that the ranges give the whole read's rows, rejects, record and
/// line numbers.
fn check_ranges(bytes: &[u8], format: (u8, Encoding), columns: &[&str], cuts: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "x.csv", bytes);
    let input = InputFormat::Csv {
        delimiter: format.0,
        encoding: format.1,
    };
    let rows = |text: String| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("--"))
            .map(str::to_owned)
            .collect()
    };
    let whole = rows(render(ExtractReader::open(&path, input, &cols(columns), 2).unwrap()).unwrap());
    // Where the csv crate starts each data record.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(format.0)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut starts = Vec::new();
    while reader.read_byte_record(&mut record).unwrap() {
        starts.push(reader.position().byte());
    }
    // starts[k] is where data record k + 1 starts (the last entry is the end of the file).
    let mut bounds: Vec<(u64, u64)> = cuts.iter().map(|&k| (starts[k], k as u64)).collect();
    bounds.insert(0, (starts[0], 0));
    bounds.push((bytes.len() as u64, starts.len() as u64 - 1));
    let mut ranged = Vec::new();
    for pair in bounds.windows(2) {
        let ((start, records_before), (end, _)) = (pair[0], pair[1]);
        let before = &bytes[..usize::try_from(start).unwrap() - 1];
        let range = linklab_extract::CsvRange {
            start,
            end,
            records_before,
            newlines_before_prev: before.split(|&b| b == b'\n').count() as u64 - 1,
            after_newline: bytes[usize::try_from(start).unwrap() - 1] == b'\n',
        };
        let reader = ExtractReader::open_csv_range(&path, format, &cols(columns), &range, 2).unwrap();
        assert_eq!(reader.summary().lines(), None);
        ranged.extend(rows(render(reader).unwrap()));
    }
    assert_eq!(ranged, whole, "{cuts:?}");
}

#[test]
fn byte_ranges_read_as_the_whole_file_does() {
    let utf8 = (b',', Encoding::Utf8);
    let text = b"a,b\n1,x\n\"2\nq\",y\r\n3\n\n4,\xff\n5,z";
    for cuts in [&[][..], &[1], &[1, 2], &[2, 3, 4], &[4]] {
        check_ranges(text, utf8, &["a", "b"], cuts);
    }
    // Windows-1252: bytes that happen to be valid UTF-8 are still decoded as Windows-1252.
    let latin = (b';', Encoding::Windows1252);
    check_ranges(b"a;b\nJos\xc3\xa9;1\nJos\xe9;2\n", latin, &["a"], &[1]);
}

#[test]
fn a_tap_sees_every_byte_of_a_csv_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Larger than the reader's 1 MiB buffer, so it is read in several pieces.
    let mut bytes = b"\xEF\xBB\xBFa,b\n".to_vec();
    for i in 0..200_000 {
        bytes.extend_from_slice(format!("{i},\"x{i}\"\n").as_bytes());
    }
    let path = write(dir.path(), "extract.csv", &bytes);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tap = {
        let seen = Arc::clone(&seen);
        Box::new(move |chunk: &[u8]| seen.lock().unwrap().extend_from_slice(chunk))
    };
    let reader = ExtractReader::open_tapped(&path, InputFormat::CSV, &cols(&["b"]), 1000, Some(tap)).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().len()).sum();
    assert_eq!(rows, 200_000);
    assert!(*seen.lock().unwrap() == bytes);
}
