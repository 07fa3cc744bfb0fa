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
//!
//! A column may also come as codes into a dictionary of strings ([`Coded`]: `journeys`' names,
//! cookies, orgs, persons and users, which the run holds as codes). The file shows the strings;
//! the encoder builds each row group's dictionary from the codes it uses, so the strings are
//! neither gathered for every row nor hashed. The same rule picks plain pages for a column whose
//! row groups are mostly distinct, which are then gathered from the dictionary.

use std::io::Write;

use polars::prelude::*;
use polars_arrow::array::{
    Array, DictionaryArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray,
};
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::page::{CompressedDictPage, DataPageHeader};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{
    array_to_columns, compress, to_parquet_schema, CompressedDataPage, CompressedPage,
    CompressionOptions, DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator,
    FileWriter, Page, ParquetType, StatisticsOptions, Version, WriteOptions, ZstdLevel,
};

use crate::error::Result;

/// Rows a row group needs before its answer decides a column for the rest of the file (a
/// smaller first row group is encoded the way polars encodes it, and the next one decides).
const DECIDING_ROWS: usize = 1024;

/// Above this share of distinct values a column is written plain (polars' own threshold).
const PLAIN_ABOVE: f64 = 0.75;

/// The zstd level of every table (as small as the default level 3 on these tables, and
/// faster).
const ZSTD_LEVEL: i32 = 1;

/// A column chunk's pages, compressed, as the file writer takes them.
struct CompressedPages {
    pages: std::vec::IntoIter<CompressedPage>,
    current: Option<CompressedPage>,
}

impl FallibleStreamingIterator for CompressedPages {
    type Item = CompressedPage;
    type Error = PolarsError;

    fn advance(&mut self) -> std::result::Result<(), PolarsError> {
        self.current = self.pages.next();
        Ok(())
    }

    fn get(&self) -> Option<&CompressedPage> {
        self.current.as_ref()
    }
}

/// How a column of a file is encoded, once decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pages {
    /// Not decided yet, or not ours to decide (nested, boolean: polars' own encoding).
    Polars,
    Plain,
    Dictionary,
}

/// A column's choice after a row group of `rows` rows with `distinct` values (more than
/// [`PLAIN_ABOVE`] of them distinct: plain). The first row group of [`DECIDING_ROWS`] or more
/// decides; a column with a dictionary turns plain for the rest of the file once a row group
/// is mostly distinct. Whether this row group is written plain.
fn settle(pages: &mut Pages, rows: usize, distinct: usize) -> bool {
    let mostly_distinct = rows > 0 && distinct as f64 / rows as f64 > PLAIN_ABOVE;
    match *pages {
        Pages::Polars if rows >= DECIDING_ROWS => {
            *pages = if mostly_distinct {
                Pages::Plain
            } else {
                Pages::Dictionary
            };
        }
        Pages::Dictionary if mostly_distinct => *pages = Pages::Plain,
        _ => {}
    }
    match *pages {
        Pages::Plain => true,
        Pages::Dictionary => false,
        Pages::Polars => mostly_distinct,
    }
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
    /// Per column: its options (the columns of [`super::TEXT_COLUMNS`] without min/max).
    options: Vec<WriteOptions>,
    /// The compression of every page.
    compression: CompressionOptions,
    /// Per column: the dictionary its codes point into (a [`Coded`] column), and the map from
    /// a code to its key in the row group's dictionary (kept for its allocation).
    coded: Vec<Option<(Utf8ViewArray, PlHashMap<u32, u32>)>>,
    /// One zstd context for all the pages of the file (polars' page compressor makes a new
    /// one for every page, and clears its tables: about 3 % of the time of writing a table).
    zstd: zstd::bulk::Compressor<'static>,
}

/// A column of a table given as UInt32 codes into `values` (a String series: a code is an
/// index, and a null code, a code past the end or a null value is a null). The file's column
/// is the strings.
#[derive(Clone, Copy)]
pub struct Coded<'a> {
    /// The column's name.
    pub name: &'a str,
    /// What its codes point into.
    pub values: &'a Series,
}

/// `schema` with the columns of `coded` as the strings they show.
fn shown_schema(schema: &Schema, coded: &[Coded<'_>]) -> Schema {
    schema
        .iter()
        .map(|(name, dtype)| {
            let shown = coded.iter().any(|c| c.name == name.as_str());
            let dtype = if shown {
                DataType::String
            } else {
                dtype.clone()
            };
            (name.clone(), dtype)
        })
        .collect()
}

impl<W: Write> TableEncoder<W> {
    /// An encoder of files with `schema`'s columns: zstd level 1 (as small as the default level
    /// 3 on these tables, and faster), polars' default statistics (min, max, null count), but
    /// null counts only for the free text of [`super::TEXT_COLUMNS`]. The columns named in
    /// `coded` are given as codes (UInt32 in `schema` and in every row group) and written as
    /// the strings they point to.
    pub fn new(w: W, schema: &Schema, coded: &[Coded<'_>]) -> Result<Self> {
        let shown = shown_schema(schema, coded);
        let coded: Vec<Option<(Utf8ViewArray, PlHashMap<u32, u32>)>> = schema
            .iter_names()
            .map(|name| {
                let Some(c) = coded.iter().find(|c| c.name == name.as_str()) else {
                    return Ok(None);
                };
                let values = c.values.str()?.rechunk();
                let values = match values.downcast_iter().next() {
                    Some(a) => a.clone(),
                    None => Utf8ViewArray::new_empty(ArrowDataType::Utf8View),
                };
                Ok(Some((values, PlHashMap::new())))
            })
            .collect::<Result<_>>()?;
        let arrow = shown.to_arrow(CompatLevel::newest());
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
            compression: CompressionOptions::Zstd(Some(ZstdLevel::try_new(ZSTD_LEVEL)?)),
            data_page_size: None,
        };
        let pages = vec![Pages::Polars; fields.len()];
        let text = WriteOptions {
            statistics: StatisticsOptions {
                min_value: false,
                max_value: false,
                ..StatisticsOptions::default()
            },
            ..options
        };
        let column_options = (schema.iter_names())
            .map(|name| {
                if super::TEXT_COLUMNS.contains(&name.as_str()) {
                    text
                } else {
                    options
                }
            })
            .collect();
        Ok(Self {
            writer: FileWriter::new_with_parquet_schema(w, arrow, parquet, options),
            fields,
            encodings,
            choosable,
            pages,
            options: column_options,
            compression: options.compression,
            coded,
            zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
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
            let (array, encoding) = if self.coded[i].is_some() {
                self.encoding_of_codes(i, array)?
            } else {
                self.encoding_of(i, array)
            };
            let encoding = encoding.map_or_else(|| self.encodings[i].clone(), |e| vec![e]);
            let options = self.options[i];
            for pages in array_to_columns(array, self.fields[i].clone(), options, &encoding)? {
                let mut compressed = Vec::new();
                for page in pages {
                    compressed.push(self.compress(page?)?);
                }
                columns.push(Ok(DynStreamingIterator::new(CompressedPages {
                    pages: compressed.into_iter(),
                    current: None,
                })));
            }
        }
        self.writer
            .write(rows as u64, DynIter::new(columns.into_iter()))?;
        Ok(())
    }

    /// `page` compressed with the file's zstd context, as polars' page compressor would.
    fn compress(&mut self, page: Page) -> Result<CompressedPage> {
        let compression = Compression::from(self.compression);
        Ok(match page {
            Page::Data(p) if matches!(p.header(), DataPageHeader::V1(_)) => {
                let buffer = self.zstd.compress(p.buffer())?;
                let uncompressed = p.buffer().len();
                let rows = p.num_rows.unwrap_or_else(|| p.num_values());
                CompressedPage::Data(CompressedDataPage::new(
                    p.header().clone(),
                    CowBuffer::Owned(buffer),
                    compression,
                    uncompressed,
                    p.descriptor.clone(),
                    rows,
                ))
            }
            Page::Dict(p) => {
                let buffer = self.zstd.compress(&p.buffer)?;
                CompressedPage::Dict(CompressedDictPage::new(
                    CowBuffer::Owned(buffer),
                    compression,
                    p.buffer.len(),
                    p.num_values,
                    p.is_sorted,
                ))
            }
            other => compress(other, Vec::new(), self.compression).map_err(PolarsError::from)?,
        })
    }

    /// The footer (with the Arrow schema, as polars writes it); the file's size.
    pub fn finish(mut self) -> Result<u64> {
        Ok(self.writer.end(None)?)
    }

    /// The strings of the codes of [`Coded`] column `i` in this row group, and their encoding:
    /// a dictionary of the values the row group uses (keys in order of first use, as polars
    /// builds it), or plain pages once the column proves mostly distinct (the same rule as
    /// [`Self::encoding_of`], on the exact count of the values used).
    fn encoding_of_codes(
        &mut self,
        i: usize,
        codes: ArrayRef,
    ) -> Result<(ArrayRef, Option<Encoding>)> {
        let Some((values, key_of)) = self.coded[i].as_mut() else {
            return Ok((codes, None));
        };
        let codes = codes
            .as_any()
            .downcast_ref::<PrimitiveArray<u32>>()
            .ok_or_else(|| {
                crate::error::Error::Internal(format!(
                    "a coded column holds {:?}, not UInt32 codes",
                    codes.dtype()
                ))
            })?;
        // The value a row shows (a null code, a code past the end or a null value: none).
        let nullable_values = values.null_count() > 0;
        let shown = |row: usize, c: u32| -> Option<usize> {
            let c = c as usize;
            (codes.is_valid(row) && c < values.len() && (!nullable_values || values.is_valid(c)))
                .then_some(c)
        };
        let rows = codes.len();
        // A column that went plain is not mapped to keys again.
        let mut used: Vec<u32> = Vec::new();
        let mut keys: Vec<u32> = Vec::new();
        let mut validity = MutableBitmap::new();
        let plain = self.pages[i] == Pages::Plain || {
            // A code's key in this row group's dictionary: a map the size of the row group's
            // distinct values (it stays in cache; one the size of the whole dictionary did
            // not). Rows come sorted by person: most codes repeat the one before.
            key_of.clear();
            validity.reserve(rows);
            let shown_codes = codes.values().iter().enumerate().map(|(row, &c)| {
                let c = shown(row, c).map(|c| c as u32);
                validity.push(c.is_some());
                c
            });
            keys = first_seen_keys(shown_codes, key_of, |c| used.push(c));
            settle(&mut self.pages[i], rows, used.len())
        };
        if plain {
            let mut strings = MutableBinaryViewArray::<str>::with_capacity(rows);
            for (row, &c) in codes.values().iter().enumerate() {
                strings.push(shown(row, c).map(|c| values.value(c)));
            }
            let strings: Utf8ViewArray = strings.into();
            return Ok((strings.boxed(), Some(Encoding::Plain)));
        }
        let mut dict = MutableBinaryViewArray::<str>::with_capacity(used.len());
        for &c in &used {
            dict.push_value(values.value(c as usize));
        }
        let array = string_dictionary(keys, validity.into(), dict.into())?;
        Ok((array, Some(Encoding::RleDictionary)))
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
            settle(&mut self.pages[i], array.len(), distinct);
        }
        match self.pages[i] {
            Pages::Polars => (array, None),
            Pages::Plain => (array, Some(Encoding::Plain)),
            Pages::Dictionary => match array.dtype() {
                // Strings and binary: the dictionary built directly (polars would estimate
                // first). Numbers keep polars' path, whose first try is a cheap min/max.
                ArrowDataType::Utf8View | ArrowDataType::BinaryView => {
                    let d = match array.as_any().downcast_ref::<Utf8ViewArray>() {
                        Some(strings) => match first_seen_dictionary(strings) {
                            Ok(d) => d,
                            Err(_) => return (array, Some(Encoding::Plain)),
                        },
                        None => {
                            let dict = ArrowDataType::Dictionary(
                                IntegerType::UInt32,
                                Box::new(array.dtype().clone()),
                                false,
                            );
                            let Ok(d) = polars_compute::cast::cast(
                                array.as_ref(),
                                &dict,
                                Default::default(),
                            ) else {
                                return (array, Some(Encoding::Plain));
                            };
                            d
                        }
                    };
                    // The dictionary counts the distinct values exactly: a row group that
                    // proves the column mostly distinct (after, say, row groups of nulls)
                    // turns it plain for the rest of the file.
                    let distinct = d
                        .as_any()
                        .downcast_ref::<DictionaryArray<u32>>()
                        .map_or(0, |d| d.values().len());
                    if settle(&mut self.pages[i], array.len(), distinct) {
                        return (array, Some(Encoding::Plain));
                    }
                    (d, Some(Encoding::RleDictionary))
                }
                _ => (array, None),
            },
        }
    }
}

/// The key of each value of `values` in the dictionary of its distinct values in the order
/// first seen (0 for a missing value); `first_seen(v)` is called once for each value, in that
/// order. `key_of` maps the values seen to their keys (empty at first).
///
/// A value equal to the previous value's takes its key without a lookup: the tables' rows come
/// sorted by a key (`journeys` by person within a day), so a person's or a session's ids come
/// in runs, and comparing with the value before is much cheaper than hashing every value.
fn first_seen_keys<T: Copy + Eq + std::hash::Hash>(
    values: impl ExactSizeIterator<Item = Option<T>>,
    key_of: &mut PlHashMap<T, u32>,
    mut first_seen: impl FnMut(T),
) -> Vec<u32> {
    let mut keys: Vec<u32> = Vec::with_capacity(values.len());
    let mut last: Option<(T, u32)> = None;
    for v in values {
        let Some(v) = v else {
            keys.push(0);
            continue;
        };
        let k = match last {
            Some((lv, lk)) if lv == v => lk,
            _ => {
                let next = key_of.len() as u32;
                let k = *key_of.entry(v).or_insert(next);
                if k == next {
                    first_seen(v);
                }
                last = Some((v, k));
                k
            }
        };
        keys.push(k);
    }
    keys
}

/// A dictionary array of strings: `keys` (null where `validity` says) into `values`.
fn string_dictionary(
    keys: Vec<u32>,
    validity: Option<Bitmap>,
    values: Utf8ViewArray,
) -> Result<Box<dyn Array>> {
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity);
    let dtype = ArrowDataType::Dictionary(
        IntegerType::UInt32,
        Box::new(ArrowDataType::Utf8View),
        false,
    );
    Ok(DictionaryArray::<u32>::try_new(dtype, keys, values.boxed())?.boxed())
}

/// `strings` as a dictionary array: the distinct values in the order first seen, each row the
/// key of its value (null for null), as polars' cast to a dictionary builds it
/// ([`first_seen_keys`]: runs of a value take its key without a lookup).
fn first_seen_dictionary(strings: &Utf8ViewArray) -> Result<Box<dyn Array>> {
    let validity = strings.validity().filter(|v| v.unset_bits() > 0);
    let present = (strings.values_iter().enumerate())
        .map(|(row, v)| validity.is_none_or(|valid| valid.get_bit(row)).then_some(v));
    let mut key_of: PlHashMap<&str, u32> = PlHashMap::with_capacity(strings.len().min(1024));
    let mut values = MutableBinaryViewArray::<str>::new();
    let keys = first_seen_keys(present, &mut key_of, |v| values.push_value(v));
    string_dictionary(keys, validity.cloned(), values.into())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use polars_parquet::read::read_metadata;

    use super::*;

    /// `f` of each row group's chunk of `column` (and the footer it was decoded from).
    fn per_row_group<T>(
        file: &[u8],
        column: &str,
        f: impl Fn(&polars_parquet::parquet::metadata::ColumnChunkMetadata, &[u8]) -> T,
    ) -> Vec<T> {
        let meta = read_metadata(&mut Cursor::new(file)).unwrap();
        meta.row_groups
            .iter()
            .map(|rg| {
                let chunk = rg
                    .parquet_columns()
                    .iter()
                    .find(|c| c.descriptor().path_in_schema[0].as_str() == column)
                    .unwrap();
                f(chunk, &meta.footer_buf)
            })
            .collect()
    }

    /// Whether each row group's chunk of `column` has a dictionary page.
    fn dictionary_pages(file: &[u8], column: &str) -> Vec<bool> {
        per_row_group(file, column, |c, _| c.dictionary_page_offset().is_some())
    }

    /// Each row group's statistics of `column`, as text.
    fn statistics(file: &[u8], column: &str) -> Vec<String> {
        per_row_group(file, column, |c, footer| {
            format!("{:?}", c.statistics(footer).unwrap().unwrap())
        })
    }

    /// `df` as the run writes a table (`publish::encode_table`).
    fn encoded(df: &DataFrame, group_rows: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        crate::publish::encode_table(df, &[], group_rows, &mut buf).unwrap();
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
    fn text_columns_have_null_counts_but_no_min_max() {
        let n = 2 * 4096;
        let mut df = table(n);
        let json =
            |i: usize| (i % 3 != 0).then(|| format!("{{\"ts\":{i},\"utm_source\":\"x{i}\"}}"));
        df.with_column(Column::new(
            "first_touch".into(),
            (0..n).map(json).collect::<Vec<_>>(),
        ))
        .unwrap();
        let file = encoded(&df, 4096);
        let back = ParquetReader::new(Cursor::new(file.clone()))
            .finish()
            .unwrap();
        assert!(back.equals_missing(&df));
        let text = statistics(&file, "first_touch");
        assert_eq!(text.len(), 2);
        // Rows 0, 3, 6, ... are null: 1,366 in the first row group, 1,365 in the second.
        for (s, nulls) in text.iter().zip([1366, 1365]) {
            assert!(s.contains(&format!("null_count: Some({nulls})")), "{s}");
            assert!(
                s.contains("min_value: None") && s.contains("max_value: None"),
                "{s}"
            );
        }
        // The other columns keep theirs (what `explain` and DuckDB prune row groups by).
        assert!(statistics(&file, "event_id")
            .iter()
            .all(|s| s.contains("min_value: Some") && s.contains("max_value: Some")));
    }

    #[test]
    fn a_small_first_row_group_does_not_decide_and_empty_files_have_the_schema() {
        // 500 rows (too few to decide) then full groups: the column is decided by the second.
        let df = table(500 + 2 * 4096);
        let mut buf = Vec::new();
        let mut enc = TableEncoder::new(&mut buf, df.schema(), &[]).unwrap();
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

    /// Coded columns are written as the strings their codes point to: null codes, codes past
    /// the end and codes of null values are nulls; each row group's dictionary-or-plain choice
    /// is what polars picks for the strings; the footer's schema says String.
    #[test]
    fn coded_columns_are_written_as_their_strings_with_polars_own_choice() {
        let n = 4 * 4096;
        let persons = Series::new(
            "p".into(),
            (0..20_000)
                .map(|i| (i % 7 != 3).then(|| format!("person-{i:06}")))
                .collect::<Vec<_>>(),
        );
        // Runs of one person (a dictionary), then a mostly distinct stretch (plain), with
        // null codes and a code past the end.
        let code = |i: usize| -> Option<u32> {
            match i {
                _ if i % 97 == 5 => None,
                _ if i % 101 == 7 => Some(99_999),
                _ if i < 2 * 4096 => Some((i / 9) as u32),
                _ => Some(i as u32),
            }
        };
        let codes: Vec<Option<u32>> = (0..n).map(code).collect();
        let df = df! {
            "person_id" => codes.clone(),
            "user_id" => codes.clone(),
            "step" => (0..n as i64).collect::<Vec<_>>(),
        }
        .unwrap();
        let coded = [
            Coded {
                name: "person_id",
                values: &persons,
            },
            Coded {
                name: "user_id",
                values: &persons,
            },
        ];
        let mut file = Vec::new();
        crate::publish::encode_table(&df, &coded, 4096, &mut file).unwrap();
        let strings = |name: &str| -> Column {
            let idx: IdxCa = codes
                .iter()
                .map(|c| c.filter(|&c| (c as usize) < persons.len()))
                .collect();
            persons
                .take(&idx)
                .unwrap()
                .with_name(name.into())
                .into_column()
        };
        let expected = DataFrame::new(
            n,
            vec![
                strings("person_id"),
                strings("user_id"),
                df.column("step").unwrap().clone(),
            ],
        )
        .unwrap();
        let back = ParquetReader::new(Cursor::new(file.clone()))
            .finish()
            .unwrap();
        assert_eq!(back.schema(), expected.schema());
        assert!(back.equals_missing(&expected));
        let theirs = polars_file(&expected, 4096);
        assert_eq!(
            dictionary_pages(&file, "person_id"),
            vec![true, true, false, false]
        );
        assert_eq!(
            dictionary_pages(&file, "person_id"),
            dictionary_pages(&theirs, "person_id")
        );
        // The same statistics in every row group (min, max, null count: what `explain` and
        // DuckDB prune row groups by).
        assert_eq!(
            statistics(&file, "person_id"),
            statistics(&theirs, "person_id")
        );
        assert_eq!(statistics(&file, "person_id").len(), 4);
        assert!(statistics(&file, "person_id")
            .iter()
            .all(|s| s.contains("min_value: Some") && s.contains("null_count: Some")));
        // An empty frame of codes still says String.
        let mut empty = Vec::new();
        crate::publish::encode_table(&df.clear(), &coded, 4096, &mut empty).unwrap();
        let back = ParquetReader::new(Cursor::new(empty)).finish().unwrap();
        assert_eq!(back.schema(), expected.schema());
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

    proptest::proptest! {
        /// The dictionary of a string row group, built with its runs taken without a lookup,
        /// is polars' cast to a dictionary: the same values in the same order, the same keys,
        /// the same nulls. Values come in runs (as sorted tables have them), with nulls inside
        /// runs, empty strings, and values longer than a view's inline twelve bytes that share
        /// their first bytes and length with others.
        #[test]
        fn first_seen_dictionary_is_polars_cast(
            runs in proptest::collection::vec((proptest::option::weighted(0.8, 0usize..6), 1usize..5), 0..60),
        ) {
            let value = |v: usize| match v {
                0 => String::new(),
                1 => "a".to_string(),
                v => format!("a-long-shared-prefix-{v}"),
            };
            let rows: Vec<Option<String>> = runs
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v.map(value), n))
                .collect();
            let array = Utf8ViewArray::from_slice(&rows);
            let ours = first_seen_dictionary(&array).unwrap();
            let dtype = ArrowDataType::Dictionary(
                IntegerType::UInt32,
                Box::new(ArrowDataType::Utf8View),
                false,
            );
            let theirs =
                polars_compute::cast::cast(&array, &dtype, Default::default()).unwrap();
            let (ours, theirs) = (
                ours.as_any().downcast_ref::<DictionaryArray<u32>>().unwrap(),
                theirs.as_any().downcast_ref::<DictionaryArray<u32>>().unwrap(),
            );
            proptest::prop_assert_eq!(ours.values().as_ref(), theirs.values().as_ref());
            proptest::prop_assert_eq!(ours.keys(), theirs.keys());
        }
    }
}
