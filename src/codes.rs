//! Dense integer codes for string columns: a sorted dictionary of the distinct values, and
//! each value's index in it. The read stage holds the events' ids and names this way, and the
//! identity stage numbers cookies and users with them.

use polars::prelude::*;

use crate::error::Result;

/// "No value" for dense ids and codes.
pub const NONE: u32 = u32::MAX;

/// Sorted distinct non-null values of string columns: the dictionary of a dense id, where a
/// value's id is its index (so the smallest value gets the smallest id).
pub fn dictionary(columns: &[&Series]) -> Result<Series> {
    let columns = columns
        .iter()
        .map(|c| Ok(c.str()?.clone()))
        .collect::<Result<Vec<_>>>()?;
    Ok(encode_columns(&columns)?.0)
}

/// Dense ids of `values` in `dict`, a sorted [`dictionary`]; [`NONE`] for null or for a value
/// not in `dict`.
pub fn encode(values: &Series, dict: &Series) -> Result<Vec<u32>> {
    let dict = dict.str()?;
    let mut index: PlHashMap<&str, u32> = PlHashMap::with_capacity(dict.len());
    for (i, v) in dict.iter().enumerate() {
        if let Some(v) = v {
            index.insert(v, i as u32);
        }
    }
    Ok(values
        .str()?
        .iter()
        .map(|v| v.and_then(|v| index.get(v).copied()).unwrap_or(NONE))
        .collect())
}

/// The [`dictionary`] of `columns` and the dense id of each of their values in it ([`NONE`]
/// for null), in one hash pass: values are numbered as first seen ([`number_columns`]), then
/// renumbered in sorted order.
pub fn encode_columns(columns: &[StringChunked]) -> Result<(Series, Vec<Vec<u32>>)> {
    sorted(number_columns(columns, 0))
}

/// [`encode_columns`] over dictionaries of distinct values each (such as those of
/// [`number_columns`] over parts of a column): the dictionary of all their values, and for
/// each the map from its indexes to the merged dictionary's. Their lengths bound the number of
/// distinct values, so the hash table is made that big at once.
pub fn merge_dictionaries(dicts: &[StringChunked]) -> Result<(Series, Vec<Vec<u32>>)> {
    let bound = dicts.iter().map(|d| d.len()).sum();
    sorted(number_columns(dicts, bound))
}

/// Values numbered as first seen, and codes into them, renumbered in sorted order.
fn sorted((first_seen, mut codes): (Series, Vec<Vec<u32>>)) -> Result<(Series, Vec<Vec<u32>>)> {
    let order = first_seen.arg_sort(SortOptions::default());
    let mut renumber = vec![0u32; first_seen.len()];
    for (new, old) in order.into_no_null_iter().enumerate() {
        renumber[old as usize] = new as u32;
    }
    for c in &mut codes {
        for v in c.iter_mut().filter(|v| **v != NONE) {
            *v = renumber[*v as usize];
        }
    }
    let dict = first_seen.take(&order)?;
    Ok((dict, codes))
}

/// The distinct non-null values of `columns` in the order first seen, and the index of each
/// value in them ([`NONE`] for null): one hash pass, no sort, the hash table made for
/// `capacity` values at first. Numbering parts of a column apart, then merging their
/// dictionaries ([`merge_dictionaries`]), gives the codes of [`encode_columns`] over the whole.
pub fn number_columns(columns: &[StringChunked], capacity: usize) -> (Series, Vec<Vec<u32>>) {
    let mut seen: PlHashMap<&str, u32> = PlHashMap::with_capacity(capacity);
    let mut distinct: Vec<&str> = Vec::with_capacity(capacity);
    let mut codes: Vec<Vec<u32>> = Vec::with_capacity(columns.len());
    for c in columns {
        let mut out = Vec::with_capacity(c.len());
        for v in c.iter() {
            out.push(match v {
                None => NONE,
                Some(v) => *seen.entry(v).or_insert_with(|| {
                    distinct.push(v);
                    (distinct.len() - 1) as u32
                }),
            });
        }
        codes.push(out);
    }
    drop(seen);
    (Series::new("id".into(), distinct), codes)
}

/// `s[idx]` with [`NONE`] → null: the values of codes in their dictionary.
pub fn gather(s: &Series, idx: &[u32], name: &str) -> Result<Series> {
    let idx: IdxCa = idx
        .iter()
        .map(|&i| (i != NONE).then_some(i as IdxSize))
        .collect();
    Ok(s.take(&idx)?.with_name(name.into()))
}
