//! Column specs of the raw sources (contract §2) and reading one Parquet file into the
//! canonical shape: required columns present, types checked, timestamps as UTC microseconds,
//! missing optional columns added as nulls.

use std::io::Cursor;

use bytes::Bytes;
use polars::prelude::*;

use crate::error::{Error, Result};

/// The logical type a raw column must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string (Parquet UTF8 / large or view strings).
    Str,
    /// A timestamp of any unit, naive (UTC) or with a zone. Read as `Int64` microseconds UTC.
    Timestamp,
    /// An integer, read as `Int64`.
    Int64,
    /// An integer, read as `Int32`.
    Int32,
    /// A number, read as `Float64`.
    Float64,
    /// A boolean.
    Bool,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Timestamp => "a timestamp",
            Kind::Int64 => "an int64",
            Kind::Int32 => "an int32",
            Kind::Float64 => "a float64",
            Kind::Bool => "a boolean",
        }
    }

    /// The type a column of this kind is read as.
    pub fn canonical(self) -> DataType {
        match self {
            Kind::Str => DataType::String,
            Kind::Timestamp | Kind::Int64 => DataType::Int64,
            Kind::Int32 => DataType::Int32,
            Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
        }
    }
}

/// One column of a source.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// Column name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether a file without it is refused.
    pub required: bool,
}

const fn req(name: &'static str, kind: Kind) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        required: false,
    }
}

/// Click-id columns of touches.
pub const CLICK_IDS: [&str; 7] = [
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "ttclid",
    "msclkid",
    "li_fat_id",
];
/// UTM columns of touches.
pub const UTMS: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
];

/// `raw/touches`.
pub const TOUCHES: &[ColumnSpec] = &[
    req("anon_id", Kind::Str),
    req("ts", Kind::Timestamp),
    opt("gclid", Kind::Str),
    opt("gbraid", Kind::Str),
    opt("wbraid", Kind::Str),
    opt("fbclid", Kind::Str),
    opt("ttclid", Kind::Str),
    opt("msclkid", Kind::Str),
    opt("li_fat_id", Kind::Str),
    opt("utm_source", Kind::Str),
    opt("utm_medium", Kind::Str),
    opt("utm_campaign", Kind::Str),
    opt("utm_content", Kind::Str),
    opt("utm_term", Kind::Str),
    opt("landing_url", Kind::Str),
    opt("referrer", Kind::Str),
    opt("fbp", Kind::Str),
    opt("fbc", Kind::Str),
    opt("ip", Kind::Str),
    opt("user_agent", Kind::Str),
];

/// `raw/events`.
pub const EVENTS: &[ColumnSpec] = &[
    req("event_id", Kind::Str),
    req("event", Kind::Str),
    req("ts", Kind::Timestamp),
    opt("anon_id", Kind::Str),
    opt("user_id", Kind::Str),
    opt("previous_id", Kind::Str),
    opt("seq", Kind::Int64),
    opt("org_id", Kind::Str),
    opt("tracking_version", Kind::Int32),
    opt("session_id", Kind::Str),
    opt("ip", Kind::Str),
    opt("user_agent", Kind::Str),
    opt("value", Kind::Float64),
    opt("currency", Kind::Str),
    opt("order_id", Kind::Str),
    opt("email", Kind::Str),
    opt("properties", Kind::Str),
];

/// `raw/users`.
pub const USERS: &[ColumnSpec] = &[
    req("user_id", Kind::Str),
    opt("email", Kind::Str),
    opt("phone", Kind::Str),
    opt("country", Kind::Str),
    opt("created_at", Kind::Timestamp),
    opt("ad_user_data", Kind::Bool),
    opt("ad_personalization", Kind::Bool),
];

/// `raw/orgs`.
pub const ORGS: &[ColumnSpec] = &[req("org_id", Kind::Str)];

/// `raw/memberships`.
pub const MEMBERSHIPS: &[ColumnSpec] = &[req("user_id", Kind::Str), req("org_id", Kind::Str)];

/// Bookkeeping columns added to every row read: where it came from.
pub const FILE_COL: &str = "_file";
/// Row number inside its file (0-based).
pub const ROW_COL: &str = "_row";
/// The `dt=` partition of its file (`""` for unpartitioned sources).
pub const DT_COL: &str = "_dt";

/// Read one Parquet file into the canonical columns of `spec`.
///
/// A damaged file is bad input, whatever the reader does with it: the Parquet decoder panics on
/// some corruptions (a broken Thrift footer), and such a panic is reported as an unreadable
/// file, naming it, not as a crash.
///
/// With `extra_strings`, string columns not in `spec` are kept too (touches: attribution keys
/// no one has invented yet); other extra columns are ignored. `renames` maps a file column onto
/// a spec column (`(file_name, spec_name)`, e.g. the job's conversion value column onto
/// `value`); the file's own column of that spec name is then ignored.
pub fn read_file(
    bytes: Bytes,
    file: &str,
    dt: &str,
    spec: &[ColumnSpec],
    extra_strings: bool,
    renames: &[(String, &'static str)],
) -> Result<DataFrame> {
    let read = std::panic::AssertUnwindSafe(|| {
        read_file_unguarded(bytes, file, dt, spec, extra_strings, renames)
    });
    std::panic::catch_unwind(read).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the reader failed".into());
        Err(Error::bad_input(
            file,
            format!("not a readable Parquet file ({why})"),
        ))
    })
}

fn read_file_unguarded(
    bytes: Bytes,
    file: &str,
    dt: &str,
    spec: &[ColumnSpec],
    extra_strings: bool,
    renames: &[(String, &'static str)],
) -> Result<DataFrame> {
    let source_of = |c: &ColumnSpec| -> String {
        renames
            .iter()
            .find(|(_, to)| *to == c.name)
            .map_or_else(|| c.name.to_string(), |(from, _)| from.clone())
    };
    let unreadable =
        |e: PolarsError| Error::bad_input(file, format!("not a readable Parquet file ({e})"));
    let mut reader = ParquetReader::new(Cursor::new(bytes));
    let schema = reader.schema().map_err(unreadable)?;
    let present: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();

    let mut wanted: Vec<String> = Vec::new();
    for c in spec {
        let source = source_of(c);
        if present.contains(&source) {
            wanted.push(source);
        } else if c.required {
            return Err(Error::schema(
                file,
                source,
                c.kind.expected(),
                "no such column",
            ));
        }
    }
    if extra_strings {
        for (name, field) in schema.iter() {
            let is_known = spec.iter().any(|c| c.name == name.as_str());
            let is_string = match field.dtype() {
                ArrowDataType::Utf8 | ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View => true,
                ArrowDataType::Dictionary(_, values, _) => matches!(
                    values.as_ref(),
                    ArrowDataType::Utf8 | ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View
                ),
                _ => false,
            };
            if !is_known && is_string && !name.starts_with('_') {
                wanted.push(name.to_string());
            }
        }
    }
    // None of the columns asked for (a column read again that the file does not have): the
    // rows, all null.
    let (df, height) = if wanted.is_empty() {
        let rows = reader.num_rows().map_err(unreadable)?;
        (DataFrame::empty(), rows)
    } else {
        let df = reader
            .with_columns(Some(wanted.clone()))
            .finish()
            .map_err(unreadable)?;
        let rows = df.height();
        (df, rows)
    };

    let mut columns: Vec<Column> = Vec::with_capacity(spec.len() + 3);
    for c in spec {
        let source = source_of(c);
        let col = match df.column(&source) {
            Ok(col) => conform(col.as_materialized_series(), c, &source, file)?,
            Err(_) => Series::full_null(c.name.into(), height, &c.kind.canonical()),
        };
        columns.push(col.into());
    }
    for name in wanted
        .iter()
        .filter(|n| !spec.iter().any(|c| source_of(c) == n.as_str()))
    {
        let s = df.column(name)?.as_materialized_series().clone();
        columns.push(s.cast(&DataType::String)?.into());
    }
    columns.push(Column::new_scalar(
        FILE_COL.into(),
        Scalar::from(PlSmallStr::from(file)),
        height,
    ));
    columns.push(Column::new_scalar(
        DT_COL.into(),
        Scalar::from(PlSmallStr::from(dt)),
        height,
    ));
    let rows: Vec<u32> = (0..height as u32).collect();
    columns.push(Column::new(ROW_COL.into(), rows));
    Ok(DataFrame::new(height, columns)?)
}

/// Check one column's type and convert it to the canonical type (`source` is its name in the
/// file, for messages).
fn conform(s: &Series, c: &ColumnSpec, source: &str, file: &str) -> Result<Series> {
    let wrong = |dtype: &DataType| Error::schema(file, source, c.kind.expected(), dtype);
    let dtype = s.dtype();
    if matches!(dtype, DataType::Null) {
        return Ok(Series::full_null(
            c.name.into(),
            s.len(),
            &c.kind.canonical(),
        ));
    }
    let out = match c.kind {
        Kind::Str => match dtype {
            DataType::String => s.clone(),
            // Dictionary-encoded strings (pandas `category`, Arrow dictionaries).
            _ if dtype.is_categorical() || dtype.is_enum() => s.cast(&DataType::String)?,
            _ => return Err(wrong(dtype)),
        },
        Kind::Timestamp => match dtype {
            DataType::Datetime(unit, _) => {
                let phys = s.cast(&DataType::Int64)?;
                match unit {
                    TimeUnit::Nanoseconds => phys
                        .i64()?
                        .apply_values(|v| v.div_euclid(1000))
                        .into_series(),
                    TimeUnit::Microseconds => phys,
                    // Saturating: a time too far out for microseconds stays far out and is
                    // quarantined as out of range, never wrapped around into a plausible one.
                    TimeUnit::Milliseconds => phys
                        .i64()?
                        .apply_values(|v| v.saturating_mul(1000))
                        .into_series(),
                }
            }
            _ => return Err(wrong(dtype)),
        },
        Kind::Int64 | Kind::Int32 => {
            if dtype.is_integer() {
                s.strict_cast(&c.kind.canonical()).map_err(|_| {
                    Error::schema(file, source, c.kind.expected(), "integers out of range")
                })?
            } else {
                return Err(wrong(dtype));
            }
        }
        Kind::Float64 => {
            if dtype.is_float() || dtype.is_integer() {
                s.cast(&DataType::Float64)?
            } else {
                return Err(wrong(dtype));
            }
        }
        Kind::Bool => match dtype {
            DataType::Boolean => s.clone(),
            _ => return Err(wrong(dtype)),
        },
    };
    Ok(out.with_name(c.name.into()))
}
