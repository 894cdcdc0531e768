//! Writing the synthetic CSV files: rows are built in memory (in parallel), then appended in order
//! to a file that `linklab_store::write_atomic` renames into place only once it is complete.
//! Fields are quoted by the workspace's one CSV quoting rule, `linklab_store::csv_quote`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use linklab_store::csv_quote;

use crate::SynthError;

/// CSV rows being built in memory: fields are appended to `line`, and each finished row is
/// encoded into `bytes`.
pub(crate) struct RowBuf {
    path: PathBuf,
    line: String,
    bytes: Vec<u8>,
    windows_1252: bool,
    /// Data rows before this buffer's first row (for error messages).
    offset: u64,
    rows: u64,
}

impl RowBuf {
    pub(crate) fn new(path: &Path, windows_1252: bool, offset: u64) -> RowBuf {
        RowBuf {
            path: path.to_path_buf(),
            line: String::with_capacity(256),
            bytes: Vec::new(),
            windows_1252,
            offset,
            rows: 0,
        }
    }

    /// Appends a field, quoted only when it holds a comma, a quote or a line break.
    pub(crate) fn field(&mut self, value: &str) {
        if !self.line.is_empty() {
            self.line.push(',');
        }
        self.line.push_str(&csv_quote(value));
    }

    /// Appends a field that never needs quoting (numbers, dates, codes).
    pub(crate) fn plain(&mut self, value: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        if !self.line.is_empty() {
            self.line.push(',');
        }
        self.line
            .write_fmt(value)
            .expect("writing to a String cannot fail");
    }

    /// Ends the row being built and encodes it.
    pub(crate) fn finish_line(&mut self) -> Result<(), SynthError> {
        self.line.push('\n');
        self.rows += 1;
        if self.windows_1252 {
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&self.line);
            if unmappable {
                return Err(SynthError::Unencodable {
                    path: self.path.clone(),
                    row: self.offset + self.rows,
                });
            }
            self.bytes.extend_from_slice(&bytes);
        } else {
            self.bytes.extend_from_slice(self.line.as_bytes());
        }
        self.line.clear();
        Ok(())
    }
}

/// A CSV file being written: its header is written, rows are appended in order.
pub(crate) struct CsvSink<'a> {
    path: &'a Path,
    out: &'a mut BufWriter<File>,
    buf: RowBuf,
    rows: u64,
}

impl CsvSink<'_> {
    /// The file's final path.
    pub(crate) fn path(&self) -> &Path {
        self.path
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SynthError> {
        self.out.write_all(bytes).map_err(|source| SynthError::Io {
            path: self.path.to_path_buf(),
            source,
        })
    }

    fn flush_buf(&mut self) -> Result<(), SynthError> {
        self.out
            .write_all(&self.buf.bytes)
            .map_err(|source| SynthError::Io {
                path: self.path.to_path_buf(),
                source,
            })?;
        self.buf.bytes.clear();
        Ok(())
    }

    /// Appends a field that never needs quoting to the row being built.
    pub(crate) fn plain(&mut self, value: std::fmt::Arguments<'_>) {
        self.buf.plain(value);
    }

    /// Ends the row being built.
    pub(crate) fn finish_line(&mut self) -> Result<(), SynthError> {
        self.buf.finish_line()?;
        self.rows += 1;
        if self.buf.bytes.len() >= 1 << 16 {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Appends rows built elsewhere.
    pub(crate) fn append(&mut self, rows: &RowBuf) -> Result<(), SynthError> {
        self.flush_buf()?;
        self.write(&rows.bytes)?;
        self.rows += rows.rows;
        Ok(())
    }
}

/// Writes the CSV file `path` atomically: the header first, then what `fill` appends. Returns
/// what `fill` returned and the number of data rows. On any error the file is left as it was.
pub(crate) fn write_csv<T>(
    path: &Path,
    header: &[&str],
    windows_1252: bool,
    fill: impl FnOnce(&mut CsvSink<'_>) -> Result<T, SynthError>,
) -> Result<(T, u64), SynthError> {
    let mut failure = None;
    let mut done = None;
    let stored = linklab_store::write_atomic(path, |out| {
        let mut sink = CsvSink {
            path,
            out,
            buf: RowBuf::new(path, windows_1252, 0),
            rows: 0,
        };
        let filled = (|| {
            for h in header {
                sink.buf.field(h);
            }
            sink.buf.finish_line()?;
            sink.buf.rows = 0;
            let value = fill(&mut sink)?;
            sink.flush_buf()?;
            Ok(value)
        })();
        match filled {
            Ok(value) => {
                done = Some((value, sink.rows));
                Ok(())
            }
            Err(e) => {
                failure = Some(e);
                Err(io::Error::other("the synthetic file was abandoned"))
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    stored?;
    Ok(done.expect("a successful write filled the file"))
}
