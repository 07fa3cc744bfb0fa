//! The Parquet encoder of every published table: polars' own page encoders and file writer,
//! with each column's dictionary decision carried from one row group to the next instead of
//! taken afresh in every row group.
//!
//! Polars' writer asks of every string (and wide integer) column, in every row group, whether
//! a dictionary is worth it: it estimates the number of distinct values by hashing all of
//! them, then, when it is worth it, hashes them all again to build the dictionary. Our files
//! are written in small row groups (see [`super::ROW_GROUP_ROWS`]) of rows sorted by a key,
//! so a column mostly answers the same way in every row group: `event_id`, timestamps and
//! the touch JSON are (nearly) unique, names, channels and the key columns repeat.
//!
//! Here a column is decided by its first row group of at least [`DECIDING_ROWS`] rows, by
//! polars' own rule (more than 75 % distinct values: plain pages). A plain column stays
//! plain for the rest of the file and is no longer hashed at all. A string column with a
//! dictionary is hashed once per row group (the dictionary itself, which counts its distinct
//! values exactly), and turns plain for the rest of the file once a row group proves it
//! mostly distinct (as the touch JSON does after row groups of mostly nulls). Number columns
//! with a dictionary keep polars' own choice in every row group (its first try is a cheap
//! min/max). The pages, statistics, compression and footer are polars'
//! (`polars_parquet::write`): readers see the same schema and types, dictionary or plain
//! pages, and the same statistics. A column that turns repetitive again after it went plain
//! stays plain (a little bigger than polars would write it).

use std::io::Write;

use polars::prelude::*;
use polars_arrow::array::DictionaryArray;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    array_to_columns, to_parquet_schema, CompressionOptions, Compressor, DynIter,
    DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, ParquetType,
    StatisticsOptions, Version, WriteOptions, ZstdLevel,
};

use crate::error::Result;

/// Rows a row group needs before its answer decides a column for the rest of the file (a
/// smaller first row group is encoded the way polars encodes it, and the next one decides).
const DECIDING_ROWS: usize = 1024;

/// Above this share of distinct values a column is written plain (polars' own threshold).
const PLAIN_ABOVE: f64 = 0.75;

/// How a column of a file is encoded, once decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pages {
    /// Not decided yet, or not ours to decide (nested, boolean: polars' own encoding).
    Polars,
    Plain,
    Dictionary,
}

/// Writes one Parquet file row group by row group ([`TableEncoder::write_group`]), then its
/// footer ([`TableEncoder::finish`]).
pub struct TableEncoder<W: Write> {
    writer: FileWriter<W>,
    fields: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    /// Per column: whether polars would pick between a dictionary and plain pages (a
    /// non-nested column whose default is a dictionary).
    choosable: Vec<bool>,
    pages: Vec<Pages>,
    options: WriteOptions,
}

impl<W: Write> TableEncoder<W> {
    /// An encoder of files with `schema`'s columns: zstd level 1 (as small as the default level
    /// 3 on these tables, and faster), polars' default statistics (min, max, null count).
    pub fn new(w: W, schema: &Schema) -> Result<Self> {
        let arrow = schema.to_arrow(CompatLevel::newest());
        let parquet = to_parquet_schema(&arrow)?;
        let fields = parquet.fields().to_vec();
        let encodings: Vec<Vec<Encoding>> = polars::io::parquet::write::get_encodings(&arrow)
            .iter()
            .cloned()
            .collect();
        let choosable = fields
            .iter()
            .zip(&encodings)
            .map(|(f, e)| {
                matches!(f, ParquetType::PrimitiveType(_))
                    && e.as_slice() == [Encoding::RleDictionary]
            })
            .collect();
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            version: Version::V1,
            compression: CompressionOptions::Zstd(Some(ZstdLevel::try_new(1)?)),
            data_page_size: None,
        };
        let pages = vec![Pages::Polars; fields.len()];
        Ok(Self {
            writer: FileWriter::new_with_parquet_schema(w, arrow, parquet, options),
            fields,
            encodings,
            choosable,
            pages,
            options,
        })
    }

    /// Encode `group` (the file's columns, each in one chunk) as one row group.
    pub fn write_group(&mut self, group: &DataFrame) -> Result<()> {
        let rows = group.height();
        if rows == 0 {
            return Ok(());
        }
        let mut columns = Vec::with_capacity(self.fields.len());
        for (i, c) in group.columns().iter().enumerate() {
            let s = c.as_materialized_series();
            debug_assert_eq!(s.n_chunks(), 1, "a row group is one chunk per column");
            let array = s.to_arrow(0, CompatLevel::newest());
            let (array, encoding) = self.encoding_of(i, array);
            let encoding = encoding.map_or_else(|| self.encodings[i].clone(), |e| vec![e]);
            let options = self.options;
            for pages in array_to_columns(array, self.fields[i].clone(), options, &encoding)? {
                let pages = pages.map(|p| {
                    p.map_err(|e| ParquetError::FeatureNotSupported(format!("polars: {e}")))
                });
                let compressed = Compressor::new_from_vec(pages, options.compression, vec![]);
                columns.push(Ok(DynStreamingIterator::new(
                    compressed.map_err(PolarsError::from),
                )));
            }
        }
        self.writer
            .write(rows as u64, DynIter::new(columns.into_iter()))?;
        Ok(())
    }

    /// The footer (with the Arrow schema, as polars writes it); the file's size.
    pub fn finish(mut self) -> Result<u64> {
        Ok(self.writer.end(None)?)
    }

    /// The array to encode for column `i` and its encoding (`None`: polars' default), deciding
    /// the column for the rest of the file on its first row group of [`DECIDING_ROWS`].
    fn encoding_of(&mut self, i: usize, array: ArrayRef) -> (ArrayRef, Option<Encoding>) {
        // A dictionary array (a categorical column) is written as the dictionary it is.
        if !self.choosable[i] || matches!(array.dtype(), ArrowDataType::Dictionary(..)) {
            return (array, None);
        }
        if self.pages[i] == Pages::Polars && array.len() >= DECIDING_ROWS {
            let distinct = polars_compute::cardinality::estimate_cardinality(array.as_ref());
            self.pages[i] = if distinct as f64 / array.len() as f64 > PLAIN_ABOVE {
                Pages::Plain
            } else {
                Pages::Dictionary
            };
        }
        match self.pages[i] {
            Pages::Polars => (array, None),
            Pages::Plain => (array, Some(Encoding::Plain)),
            Pages::Dictionary => match array.dtype() {
                // Strings and binary: the dictionary built directly (polars would estimate
                // first). Numbers keep polars' path, whose first try is a cheap min/max.
                ArrowDataType::Utf8View | ArrowDataType::BinaryView => {
                    let dict = ArrowDataType::Dictionary(
                        IntegerType::UInt32,
                        Box::new(array.dtype().clone()),
                        false,
                    );
                    let Ok(d) =
                        polars_compute::cast::cast(array.as_ref(), &dict, Default::default())
                    else {
                        return (array, Some(Encoding::Plain));
                    };
                    // The dictionary counts the distinct values exactly: a row group that
                    // proves the column mostly distinct (after, say, row groups of nulls)
                    // turns it plain for the rest of the file.
                    let distinct = d
                        .as_any()
                        .downcast_ref::<DictionaryArray<u32>>()
                        .map_or(0, |d| d.values().len());
                    if distinct as f64 / array.len() as f64 > PLAIN_ABOVE {
                        self.pages[i] = Pages::Plain;
                        return (array, Some(Encoding::Plain));
                    }
                    (d, Some(Encoding::RleDictionary))
                }
                _ => (array, None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use polars_parquet::read::read_metadata;

    use super::*;

    /// Whether each row group's chunk of `column` has a dictionary page.
    fn dictionary_pages(file: &[u8], column: &str) -> Vec<bool> {
        let meta = read_metadata(&mut Cursor::new(file)).unwrap();
        meta.row_groups
            .iter()
            .map(|rg| {
                let chunk = rg
                    .parquet_columns()
                    .iter()
                    .find(|c| c.descriptor().path_in_schema[0].as_str() == column)
                    .unwrap();
                chunk.dictionary_page_offset().is_some()
            })
            .collect()
    }

    /// `df` as the run writes a table (`publish::encode_table`).
    fn encoded(df: &DataFrame, group_rows: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        crate::publish::encode_table(df, group_rows, &mut buf).unwrap();
        buf
    }

    fn polars_file(df: &DataFrame, group_rows: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Zstd(Some(
                ZstdLevel::try_new(1).unwrap(),
            )))
            .with_row_group_size(Some(group_rows))
            .finish(&mut df.clone())
            .unwrap();
        buf
    }

    fn table(n: usize) -> DataFrame {
        df! {
            "event_id" => (0..n).map(|i| format!("evt-{i:012}-0000-0000")).collect::<Vec<_>>(),
            "event" => (0..n).map(|i| ["page", "signup", "purchase"][i % 3]).collect::<Vec<_>>(),
            "ts" => (0..n as i64).map(|i| 1_700_000_000_000_000 + i * 7_919).collect::<Vec<_>>(),
            "seq" => (0..n as i64).map(|i| i % 5).collect::<Vec<_>>(),
            "user_id" => (0..n).map(|i| (i % 4 != 0).then(|| format!("user-{}", i / 10))).collect::<Vec<_>>(),
            "flag" => (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
        }
        .unwrap()
    }

    #[test]
    fn the_file_reads_back_as_the_frame_with_polars_own_choice_in_every_row_group() {
        let df = table(6 * 4096);
        let ours = encoded(&df, 4096);
        let theirs = polars_file(&df, 4096);
        let back = ParquetReader::new(Cursor::new(ours.clone()))
            .finish()
            .unwrap();
        assert!(back.equals_missing(&df));
        assert_eq!(back.schema(), df.schema());
        // Unique ids and timestamps plain, repeated names and users with a dictionary, in
        // every row group: what polars picks when it asks each row group.
        for column in ["event_id", "event", "ts", "seq", "user_id", "flag"] {
            let (a, b) = (
                dictionary_pages(&ours, column),
                dictionary_pages(&theirs, column),
            );
            assert_eq!(a, b, "{column}");
            assert_eq!(a.len(), 6);
        }
        assert_eq!(dictionary_pages(&ours, "event_id"), vec![false; 6]);
        assert_eq!(dictionary_pages(&ours, "user_id"), vec![true; 6]);
        // The same pages: the files differ at most in the writer's bookkeeping.
        assert!(
            ours.len().abs_diff(theirs.len()) * 100 <= theirs.len(),
            "{} bytes against polars' {}",
            ours.len(),
            theirs.len()
        );
    }

    #[test]
    fn a_small_first_row_group_does_not_decide_and_empty_files_have_the_schema() {
        // 500 rows (too few to decide) then full groups: the column is decided by the second.
        let df = table(500 + 2 * 4096);
        let mut buf = Vec::new();
        let mut enc = TableEncoder::new(&mut buf, df.schema()).unwrap();
        for (offset, n) in [(0, 500), (500, 4096), (4596, 4096)] {
            let mut g = df.slice(offset, n);
            g.rechunk_mut();
            enc.write_group(&g).unwrap();
        }
        assert_eq!(enc.pages[0], Pages::Plain);
        assert_eq!(enc.pages[4], Pages::Dictionary);
        enc.finish().unwrap();
        // The small group was encoded as polars encodes it.
        let back = ParquetReader::new(Cursor::new(buf.clone()))
            .finish()
            .unwrap();
        assert!(back.equals_missing(&df));
        assert_eq!(dictionary_pages(&buf, "event_id")[1..], [false, false]);

        let empty = df.clear();
        let file = encoded(&empty, 4096);
        let back = ParquetReader::new(Cursor::new(file)).finish().unwrap();
        assert_eq!(back.height(), 0);
        assert_eq!(back.schema(), df.schema());
    }

    #[test]
    fn a_string_column_with_a_dictionary_turns_plain_once_a_row_group_is_mostly_distinct() {
        // Two row groups of nulls (a dictionary, as polars would), then distinct values.
        let n = 4 * 4096;
        let json: Vec<Option<String>> = (0..n)
            .map(|i| (i >= 2 * 4096).then(|| format!("{{\"touch\":{i}}}")))
            .collect();
        let df = df! { "first_touch" => json }.unwrap();
        let file = encoded(&df, 4096);
        assert_eq!(
            dictionary_pages(&file, "first_touch"),
            vec![true, true, false, false]
        );
        assert_eq!(
            dictionary_pages(&polars_file(&df, 4096), "first_touch"),
            vec![true, true, false, false]
        );
        let back = ParquetReader::new(Cursor::new(file)).finish().unwrap();
        assert!(back.equals_missing(&df));
    }
}
