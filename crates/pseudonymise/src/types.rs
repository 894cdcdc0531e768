//! Types of keep columns: inference from a sample, parsing, and Arrow arrays.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::DataType;
use chrono::{Datelike, NaiveDate};
use linklab_extract::TextColumn;
use serde::{Deserialize, Serialize};

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// The type of a keep column in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// A 64-bit signed integer: `-?[0-9]+` without leading zeros (`007` is text).
    Int,
    /// A 64-bit float: an integer as above, optionally with a fraction and an exponent
    /// (`-1.5e3`). `inf` and `NaN` are text.
    Float,
    /// A calendar date written `YYYY-MM-DD`, `DD/MM/YYYY` or `YYYYMMDD`, stored as Arrow Date32.
    Date,
    /// Text, as it is.
    String,
}

impl ColumnType {
    /// Every type.
    pub const ALL: [ColumnType; 4] = [
        ColumnType::Int,
        ColumnType::Float,
        ColumnType::Date,
        ColumnType::String,
    ];

    /// The label used in pipeline files: `int`, `float`, `date` or `string`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Date => "date",
            ColumnType::String => "string",
        }
    }

    /// The type with this label.
    pub fn parse(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == label)
    }

    /// The Arrow type of the output column.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Date => DataType::Date32,
            ColumnType::String => DataType::Utf8,
        }
    }

    /// The name of the output column's physical type, as written in manifests.
    pub const fn arrow_name(self) -> &'static str {
        match self {
            ColumnType::Int => "int64",
            ColumnType::Float => "float64",
            ColumnType::Date => "date32",
            ColumnType::String => "string",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `-?(0|[1-9][0-9]*)`
fn int_syntax(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s).as_bytes();
    match digits {
        [b'0'] => true,
        [] | [b'0', ..] => false,
        _ => digits.iter().all(u8::is_ascii_digit),
    }
}

pub(crate) fn parse_int(s: &str) -> Option<i64> {
    if int_syntax(s) { s.parse().ok() } else { None }
}

/// An integer as in [`int_syntax`], then optionally `.digits`, then optionally `e[+-]digits`.
fn float_syntax(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    int_syntax(whole)
        && fraction.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

pub(crate) fn parse_float(s: &str) -> Option<f64> {
    if float_syntax(s) {
        s.parse::<f64>().ok().filter(|f| f.is_finite())
    } else {
        None
    }
}

/// Days since 1970-01-01 of a date written `YYYY-MM-DD`, `DD/MM/YYYY` or `YYYYMMDD`.
pub(crate) fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let (year, month, day) = match b.len() {
        10 if b[4] == b'-' && b[7] == b'-' => (&b[0..4], &b[5..7], &b[8..10]),
        10 if b[2] == b'/' && b[5] == b'/' => (&b[6..10], &b[3..5], &b[0..2]),
        8 => (&b[0..4], &b[4..6], &b[6..8]),
        _ => return None,
    };
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0_u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(number(year)?).ok()?, number(month)?, number(day)?)?;
    Some(date.num_days_from_ce() - EPOCH_DAYS_FROM_CE)
}

/// A value with surrounding ASCII whitespace removed, or `None` if nothing is left.
fn present(value: &str) -> Option<&str> {
    Some(value.trim_ascii()).filter(|v| !v.is_empty())
}

/// The narrowest type that fits every non-empty value of the sample: a date, else an integer,
/// else a float, else text. A sample without values is text.
pub(crate) fn infer(sample: &TextColumn) -> ColumnType {
    let (mut date, mut int, mut float, mut any) = (true, true, true, false);
    for value in sample.iter().filter_map(present) {
        any = true;
        date = date && parse_date(value).is_some();
        int = int && parse_int(value).is_some();
        float = float && parse_float(value).is_some();
        if !(date || int || float) {
            return ColumnType::String;
        }
    }
    match (any, date, int, float) {
        (true, true, ..) => ColumnType::Date,
        (true, false, true, _) => ColumnType::Int,
        (true, false, false, true) => ColumnType::Float,
        _ => ColumnType::String,
    }
}

/// Why a column could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// The value at this row index does not fit the type.
    Mismatch(usize),
    /// The column's text in one batch is too large for 32-bit offsets.
    TooLarge,
}

fn typed<T>(
    column: &TextColumn,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<(Vec<T>, Option<NullBuffer>), ConvertError>
where
    T: Default,
{
    let mut values = Vec::with_capacity(column.len());
    let mut valid = Vec::with_capacity(column.len());
    for (row, value) in column.iter().enumerate() {
        match present(value) {
            None => {
                values.push(T::default());
                valid.push(false);
            }
            Some(v) => {
                values.push(parse(v).ok_or(ConvertError::Mismatch(row))?);
                valid.push(true);
            }
        }
    }
    Ok((values, nulls(valid)))
}

/// A validity buffer, or `None` when every value is valid.
pub(crate) fn nulls(valid: Vec<bool>) -> Option<NullBuffer> {
    if valid.iter().all(|&v| v) {
        None
    } else {
        Some(NullBuffer::from(valid))
    }
}

/// The column as an Arrow array of `ty`. Empty (or, for typed columns, blank) values are null.
pub(crate) fn to_array(column: &TextColumn, ty: ColumnType) -> Result<ArrayRef, ConvertError> {
    Ok(match ty {
        ColumnType::Int => {
            let (values, nulls) = typed(column, parse_int)?;
            Arc::new(Int64Array::new(ScalarBuffer::from(values), nulls))
        }
        ColumnType::Float => {
            let (values, nulls) = typed(column, parse_float)?;
            Arc::new(Float64Array::new(ScalarBuffer::from(values), nulls))
        }
        ColumnType::Date => {
            let (values, nulls) = typed(column, parse_date)?;
            Arc::new(Date32Array::new(ScalarBuffer::from(values), nulls))
        }
        ColumnType::String => {
            let mut offsets = Vec::with_capacity(column.len() + 1);
            offsets.push(0_i32);
            for &end in column.ends() {
                offsets.push(i32::try_from(end).map_err(|_| ConvertError::TooLarge)?);
            }
            let valid: Vec<bool> = offsets.windows(2).map(|w| w[1] > w[0]).collect();
            let values = Buffer::from(column.data().as_bytes());
            // Offsets rise and end at the buffer's length, and every slice is a whole string, so
            // this cannot fail; the error would not quote a value anyway.
            let array = StringArray::try_new(
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                values,
                nulls(valid),
            )
            .map_err(|_| ConvertError::TooLarge)?;
            Arc::new(array)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn column(values: &[&str]) -> TextColumn {
        let mut c = TextColumn::default();
        for v in values {
            c.push(v);
        }
        c
    }

    #[test]
    fn inference() {
        for (values, expected) in [
            (&["1", "-2", "", " 30 "][..], ColumnType::Int),
            (&["1", "2.5", "-0.5e3", "1E+2"], ColumnType::Float),
            (&["2024-01-31", "31/01/2024", "20240131", ""], ColumnType::Date),
            (&["2024-02-30"], ColumnType::String),
            (&["007"], ColumnType::String),
            (&["01.5"], ColumnType::String),
            (&["1", "x"], ColumnType::String),
            (&["inf"], ColumnType::String),
            (&["NaN"], ColumnType::String),
            (&[".5"], ColumnType::String),
            (&["5."], ColumnType::String),
            (&["1e"], ColumnType::String),
            (&["99999999999999999999"], ColumnType::Float),
            (&["", "  "], ColumnType::String),
            (&[], ColumnType::String),
            (&["0", "-0"], ColumnType::Int),
            (&["M", "F"], ColumnType::String),
            (&["１"], ColumnType::String),
        ] {
            assert_eq!(infer(&column(values)), expected, "{values:?}");
        }
    }

    #[test]
    fn dates_parse_in_three_layouts() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("02/01/1970"), Some(1));
        assert_eq!(parse_date("19691231"), Some(-1));
        assert_eq!(parse_date("1984-02-29"), Some(5172));
        for bad in [
            "1983-02-29",
            "1970-1-01",
            "1970/01/01",
            "+9700101",
            "１９７００１０１",
            "",
            "é0000000",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn arrays_have_nulls_for_empty_values() {
        let ints = to_array(&column(&["1", "", "-3"]), ColumnType::Int).unwrap();
        assert_eq!(
            ints.as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [Some(1), None, Some(-3)]
        );
        let text = to_array(&column(&["a", "", " "]), ColumnType::String).unwrap();
        let text = text.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(text.iter().collect::<Vec<_>>(), [Some("a"), None, Some(" ")]);
        let dates = to_array(&column(&["", "1970-01-02"]), ColumnType::Date).unwrap();
        assert_eq!(dates.null_count(), 1);
        assert_eq!(
            to_array(&column(&["1", "2", "x"]), ColumnType::Float).unwrap_err(),
            ConvertError::Mismatch(2)
        );
    }
}
