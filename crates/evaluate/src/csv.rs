//! Reading back the evaluation's rendered CSV text (through the `csv` crate), and the shared
//! writer helpers, for the evaluation's published files.

// Labels go through the one formula guard of every published CSV (`linklab_store`), fields are
// quoted by RFC 4180 rules, and rows are joined with `\n` line ends.
pub(crate) use linklab_store::{csv_label as text_field, csv_quote as quote, csv_text as to_csv};

/// Parses CSV text into records (the header is the first) with the `csv` crate: quoted fields
/// may hold commas, doubled quotes and line breaks; `\r\n` line ends are accepted; blank lines
/// are skipped. The text is the evaluation's own rendering, so a malformed record cannot occur;
/// one would end the records read.
fn parse(text: &str) -> Vec<Vec<String>> {
    ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .into_records()
        .map_while(Result::ok)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect()
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

    #[cfg(test)]
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

    #[cfg(test)]
    pub fn fields(&self) -> &'a [String] {
        self.fields
    }
}
