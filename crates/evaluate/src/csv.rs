//! A minimal CSV writer and reader (RFC 4180 quoting) for the evaluation's published files.

/// A field of a text column: quoted when needed, and prefixed with `'` when it starts with a
/// character that spreadsheets read as a formula (`= + - @`, tab or carriage return).
pub(crate) fn text_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    quote(&guarded)
}

/// Quotes a field when it holds a comma, a quote or a line break.
pub(crate) fn quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Joins fields (already quoted) into CSV text with a header and `\n` line ends.
pub(crate) fn to_csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Parses CSV text into records (the header is the first). Quoted fields may hold commas,
/// doubled quotes and line breaks; `\r\n` line ends are accepted; blank lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].is_empty()) {
                    records.push(std::mem::take(&mut record));
                }
                record.clear();
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// Records as maps from header name to field, so readers do not depend on column order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(text: &str) -> Self {
        let mut records = parse(text).into_iter();
        let header = records.next().unwrap_or_default();
        Self {
            header,
            rows: records.collect(),
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|r| Row {
            header: &self.header,
            fields: r,
        })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One record of a [`Table`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row<'a> {
    header: &'a [String],
    fields: &'a [String],
}

impl<'a> Row<'a> {
    /// The field under `name`, or "" when there is no such column.
    pub fn get(&self, name: &str) -> &'a str {
        self.header
            .iter()
            .position(|h| h == name)
            .and_then(|i| self.fields.get(i))
            .map_or("", String::as_str)
    }

    /// The field under `name` as a finite number (`None` for `[c]`, blanks and text).
    pub fn num(&self, name: &str) -> Option<f64> {
        self.get(name)
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }

    pub fn fields(&self) -> &'a [String] {
        self.fields
    }
}
