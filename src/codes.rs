//! Dense integer codes for string columns: a sorted dictionary of the distinct values, and
//! each value's index in it. The read stage holds the events' ids and names this way, and the
//! identity stage numbers cookies and users with them.

use std::hash::BuildHasher;

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
    let order = arg_sort_strings(first_seen.str()?.iter());
    let mut renumber = vec![0u32; first_seen.len()];
    for (new, &old) in order.iter().enumerate() {
        renumber[old as usize] = new as u32;
    }
    renumber_codes(&mut codes, &renumber);
    let dict = first_seen.take(&IdxCa::from_vec("id".into(), order))?;
    Ok((dict, codes))
}

/// The rows of `values` in sorted order (bytewise, as polars sorts strings), nulls first and
/// equal values in row order: polars' stable `arg_sort` of a string column, with less work per
/// comparison.
///
/// Rows are sorted as (key, row) pairs side by side in memory: the key is the 8 bytes of the
/// value that follow the prefix all values share (ids such as `a_…` or `u_…` share one),
/// zero-padded, so a comparison of keys mostly decides without reading the strings. Only
/// equal keys compare the whole values, then the rows. Polars' parallel merge sort compared
/// the strings themselves at every step (about 3 % of a 10M run's CPU samples).
pub fn arg_sort_strings<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Vec<IdxSize> {
    use rayon::prelude::*;
    let values: Vec<Option<&[u8]>> = (values.into_iter()).map(|v| v.map(str::as_bytes)).collect();
    let mut shared: Option<&[u8]> = None;
    for v in values.iter().flatten() {
        shared = Some(match shared {
            None => v,
            Some(p) => &p[..p.iter().zip(*v).take_while(|(a, b)| a == b).count()],
        });
    }
    let skip = shared.map_or(0, <[u8]>::len);
    let key = |v: &[u8]| {
        let mut k = [0u8; 8];
        let rest = &v[skip..];
        let n = rest.len().min(8);
        k[..n].copy_from_slice(&rest[..n]);
        u64::from_be_bytes(k)
    };
    let mut out: Vec<IdxSize> = Vec::with_capacity(values.len());
    let mut keyed: Vec<(u64, IdxSize)> = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        match v {
            None => out.push(i as IdxSize),
            Some(v) => keyed.push((key(v), i as IdxSize)),
        }
    }
    let full = |i: IdxSize| values[i as usize].map(|v| &v[skip..]);
    keyed.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| full(a.1).cmp(&full(b.1)))
            .then(a.1.cmp(&b.1))
    });
    out.extend(keyed.into_iter().map(|(_, i)| i));
    out
}

/// Every code of `codes` (but [`NONE`]) replaced by its entry in `renumber`.
fn renumber_codes(codes: &mut [Vec<u32>], renumber: &[u32]) {
    for c in codes {
        renumber_in_place(c, renumber);
    }
}

/// Every code of `codes` (but [`NONE`]) replaced by its entry in `renumber`.
pub fn renumber_in_place(codes: &mut [u32], renumber: &[u32]) {
    for v in codes.iter_mut().filter(|v| **v != NONE) {
        *v = renumber[*v as usize];
    }
}

/// The distinct non-null values of `columns` in the order first seen, and the index of each
/// value in them ([`NONE`] for null): one hash pass, no sort, the hash table made for
/// `capacity` values at first. Numbering parts of a column apart, then merging their
/// dictionaries ([`merge_dictionaries`]), gives the codes of [`encode_columns`] over the whole.
pub fn number_columns(columns: &[StringChunked], capacity: usize) -> (Series, Vec<Vec<u32>>) {
    let mut seen: PlHashMap<&str, u32> = PlHashMap::with_capacity(capacity);
    let mut distinct: Vec<&str> = Vec::with_capacity(capacity);
    let codes = number_into(&mut seen, &mut distinct, columns);
    drop(seen);
    (Series::new("id".into(), distinct), codes)
}

/// The values of `columns` numbered: a value in `seen` keeps its number, a new one gets the
/// next (its place in `distinct`, where it is added). [`NONE`] for null.
///
/// A value equal to the column's previous non-null value takes its code without a lookup:
/// raw event files hold a device's events together (an SDK sends them in batches, sessions
/// are written as they end), so most ids repeat the one before (three in four `anon_id`s and
/// `user_id`s in the generated lake), and comparing with the previous value, which is in the
/// cache, is much cheaper than hashing the value and probing a table of a million ids.
///
/// In an array whose values share places in its buffers (as a column read from a
/// dictionary-encoded Parquet page does: each row's view points at its value in the page's
/// dictionary), a value is looked up once per place: the rows' 16-byte views are compared and
/// hashed instead of their text.
fn number_into<'a>(
    seen: &mut PlHashMap<&'a str, u32>,
    distinct: &mut Vec<&'a str>,
    columns: &'a [StringChunked],
) -> Vec<Vec<u32>> {
    let mut codes: Vec<Vec<u32>> = Vec::with_capacity(columns.len());
    let mut number = |v: &'a str| -> u32 {
        *seen.entry(v).or_insert_with(|| {
            distinct.push(v);
            (distinct.len() - 1) as u32
        })
    };
    for c in columns {
        let mut out = Vec::with_capacity(c.len());
        for arr in c.downcast_iter() {
            if shares_places(arr) {
                number_by_place(arr, &mut number, &mut out);
                continue;
            }
            let mut previous: Option<(&'a str, u32)> = None;
            for v in arr.iter() {
                out.push(match (v, previous) {
                    (None, _) => NONE,
                    (Some(v), Some((p, code))) if p == v => code,
                    (Some(v), _) => {
                        let code = number(v);
                        previous = Some((v, code));
                        code
                    }
                });
            }
        }
        codes.push(out);
    }
    codes
}

/// Whether the values of `arr` share places in its buffers: the buffers hold a quarter of the
/// values' bytes or less. (Otherwise a table of places would cost more than it saves.)
fn shares_places(arr: &polars_arrow::array::Utf8ViewArray) -> bool {
    arr.total_buffer_len() * 4 < arr.total_bytes_len()
}

/// [`number_into`] of one array whose values share places ([`shares_places`]): `number` is
/// called once per distinct view (a place, or the bytes of a value kept in its view), and a
/// view equal to the row before's takes its code without a lookup. Two equal views hold the
/// same value; two equal values at different places are told apart only by `number`.
fn number_by_place<'a>(
    arr: &'a polars_arrow::array::Utf8ViewArray,
    number: &mut impl FnMut(&'a str) -> u32,
    out: &mut Vec<u32>,
) {
    use polars_arrow::array::Array;
    let mut by_view: PlHashMap<u128, u32> = PlHashMap::default();
    let mut previous: Option<(u128, u32)> = None;
    let valid = arr.validity().filter(|b| b.unset_bits() > 0);
    for (i, view) in arr.views().iter().enumerate() {
        if valid.is_some_and(|b| !b.get_bit(i)) {
            out.push(NONE);
            continue;
        }
        let key = view.as_u128();
        let code = match previous {
            Some((k, code)) if k == key => code,
            _ => {
                // SAFETY: `i` is a row of `arr`.
                let code = *by_view
                    .entry(key)
                    .or_insert_with(|| number(unsafe { arr.value_unchecked(i) }));
                previous = Some((key, code));
                code
            }
        };
        out.push(code);
    }
}

/// The sorted [`dictionary`] `dict` extended with the values of `columns` it lacks: the
/// merged dictionary (sorted, distinct), each code of `dict` renumbered into it, and the codes
/// of the columns' values ([`NONE`] for null). The same as [`encode_columns`] over `dict` and
/// `columns`, but only the values `dict` lacks are sorted (then merged with it in one pass),
/// and the values it has are only looked up.
pub fn extend_dictionary(
    dict: &StringChunked,
    columns: &[StringChunked],
) -> Result<(Series, Vec<u32>, Vec<Vec<u32>>)> {
    use rayon::slice::ParallelSliceMut;
    // `dict`'s values keep their codes; a value it lacks is numbered after them, as first seen.
    let old: Vec<&str> = dict.iter().map(|v| v.unwrap_or_default()).collect();
    let n_old = old.len();
    let index = Lookup::new(&old);
    let mut added: Vec<&str> = Vec::new();
    let mut added_index: PlHashMap<&str, u32> = PlHashMap::new();
    let mut codes: Vec<Vec<u32>> = Vec::with_capacity(columns.len());
    for c in columns {
        let mut out = index.find_all(c);
        // The values `dict` lacks (few: at 10M events, a few hundred of the touches' 3M
        // cookies), numbered as first seen.
        for (code, v) in out.iter_mut().zip(c.iter()) {
            if let (MISSING, Some(v)) = (*code, v) {
                *code = *added_index.entry(v).or_insert_with(|| {
                    added.push(v);
                    (n_old + added.len() - 1) as u32
                });
            }
        }
        codes.push(out);
    }
    drop((index, added_index));
    let mut order: Vec<u32> = (0..added.len() as u32).collect();
    order.par_sort_unstable_by(|&a, &b| added[a as usize].cmp(added[b as usize]));
    // The two sorted lists merged; `renumber` maps every first-seen number to its place.
    let mut merged: Vec<&str> = Vec::with_capacity(n_old + added.len());
    let mut renumber = vec![0u32; n_old + added.len()];
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < order.len() {
        let from_old = j == order.len() || (i < old.len() && old[i] < added[order[j] as usize]);
        if from_old {
            renumber[i] = merged.len() as u32;
            merged.push(old[i]);
            i += 1;
        } else {
            let k = order[j] as usize;
            renumber[old.len() + k] = merged.len() as u32;
            merged.push(added[k]);
            j += 1;
        }
    }
    renumber_codes(&mut codes, &renumber);
    renumber.truncate(old.len());
    Ok((Series::new("id".into(), merged), renumber, codes))
}

/// A value [`Lookup::find_all`] did not find.
const MISSING: u32 = NONE - 1;

/// The codes of a fixed list of distinct strings (their indexes), found by open addressing
/// (linear probing, at most half full), many values at a time.
///
/// Looking up the touches' 3M cookies among the events' 1.4M one by one (a hash map) took
/// about 500 ns each at 10M events (2.2 CPU-seconds on identity's critical path): each lookup
/// waits for up to three cache misses in turn (the table, the value's place in the list, the
/// value's bytes). [`Lookup::find_all`] takes [`Lookup::BATCH`] values at a time through each
/// of those steps, so that their misses overlap.
struct Lookup<'a> {
    values: &'a [&'a str],
    /// 0 for an empty slot, else the high 32 bits of the value's hash, then its code plus 1.
    slots: Vec<u64>,
    mask: usize,
    hasher: PlRandomState,
}

impl<'a> Lookup<'a> {
    /// Values looked up together by [`Lookup::find_all`].
    const BATCH: usize = 16;

    fn new(values: &'a [&'a str]) -> Self {
        let size = (values.len() * 2).next_power_of_two().max(16);
        let mut index = Lookup {
            values,
            slots: vec![0; size],
            mask: size - 1,
            hasher: PlRandomState::default(),
        };
        for (code, v) in values.iter().enumerate() {
            let h = index.hasher.hash_one(v);
            let mut i = h as usize & index.mask;
            while index.slots[i] != 0 {
                i = (i + 1) & index.mask;
            }
            index.slots[i] = (h >> 32) << 32 | (code as u64 + 1);
        }
        index
    }

    /// The code of `v`, whose hash is `h`, by probing from its first slot.
    fn find(&self, v: &str, h: u64) -> Option<u32> {
        let mut i = h as usize & self.mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if slot >> 32 == h >> 32 {
                let code = (slot as u32) - 1;
                if self.values[code as usize] == v {
                    return Some(code);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The code of each value of `c`: [`NONE`] for null, [`MISSING`] for a value not in the
    /// list.
    fn find_all(&self, c: &StringChunked) -> Vec<u32> {
        const B: usize = Lookup::BATCH;
        let mut out = Vec::with_capacity(c.len());
        let mut values = c.iter();
        let mut batch: [Option<&str>; B] = [None; B];
        loop {
            let mut n = 0;
            for (slot, v) in batch.iter_mut().zip(values.by_ref()) {
                *slot = v;
                n += 1;
            }
            if n == 0 {
                break;
            }
            // Each step over the whole batch: the hashes and first slots, then the values
            // those slots name, then their first bytes (read, so that the comparisons below
            // find them in the cache), then the comparisons.
            let mut hashes = [0u64; B];
            let mut first = [0u64; B];
            for k in 0..n {
                if let Some(v) = batch[k] {
                    hashes[k] = self.hasher.hash_one(v);
                    first[k] = self.slots[hashes[k] as usize & self.mask];
                }
            }
            let mut candidates: [&str; B] = [""; B];
            for k in 0..n {
                if first[k] != 0 && first[k] >> 32 == hashes[k] >> 32 {
                    candidates[k] = self.values[(first[k] as u32 - 1) as usize];
                }
            }
            let mut touched = 0u8;
            for c in &candidates[..n] {
                touched ^= c.as_bytes().first().copied().unwrap_or(0);
            }
            std::hint::black_box(touched);
            for k in 0..n {
                out.push(match batch[k] {
                    None => NONE,
                    Some(_) if first[k] == 0 => MISSING,
                    Some(v) if first[k] >> 32 == hashes[k] >> 32 && candidates[k] == v => {
                        (first[k] as u32) - 1
                    }
                    Some(v) => self.find(v, hashes[k]).unwrap_or(MISSING),
                });
            }
        }
        out
    }
}

/// The values of a number column as a vector, a null read as `null` ([`NONE`] for a code
/// column, as the run writes "no value" there): copied chunk by chunk as slices, not value by
/// value as options (such loops over every event's codes showed in profiles).
pub fn values_or<T: PolarsNumericType>(ca: &ChunkedArray<T>, null: T::Native) -> Vec<T::Native> {
    if ca.null_count() > 0 {
        return ca.iter().map(|v| v.unwrap_or(null)).collect();
    }
    let mut out = Vec::with_capacity(ca.len());
    for a in ca.downcast_iter() {
        out.extend_from_slice(a.values());
    }
    out
}

/// The values of a number column as one slice: the column's own values when it is one chunk
/// without nulls (as the read stage leaves its columns), else a copy by [`values_or`].
pub fn values_slice<T: PolarsNumericType>(
    ca: &ChunkedArray<T>,
    null: T::Native,
) -> std::borrow::Cow<'_, [T::Native]> {
    match ca.cont_slice() {
        Ok(values) => std::borrow::Cow::Borrowed(values),
        Err(_) => std::borrow::Cow::Owned(values_or(ca, null)),
    }
}

/// Row numbers grouped by key, each key's rows in row order (a counting sort): the offset of
/// each key's first row in the rows (`n_keys + 1` offsets, so key `k`'s rows are
/// `rows[offsets[k]..offsets[k + 1]]`), and the rows. A row is left out when `keep(row)` is
/// false or its key is not below `n_keys` ([`NONE`] included).
pub fn rows_by_key(
    keys: &[u32],
    n_keys: usize,
    keep: impl Fn(usize) -> bool,
) -> (Vec<u32>, Vec<u32>) {
    let kept = |row: usize, k: u32| (k as usize) < n_keys && keep(row);
    let mut offsets = vec![0u32; n_keys + 1];
    for (row, &k) in keys.iter().enumerate() {
        if kept(row, k) {
            offsets[k as usize + 1] += 1;
        }
    }
    for k in 0..n_keys {
        offsets[k + 1] += offsets[k];
    }
    let mut fill = offsets.clone();
    let mut rows = vec![0u32; offsets[n_keys] as usize];
    for (row, &k) in keys.iter().enumerate() {
        if kept(row, k) {
            rows[fill[k as usize] as usize] = row as u32;
            fill[k as usize] += 1;
        }
    }
    (offsets, rows)
}

/// `f` of every code of a code column in row order, a null read as [`NONE`], over its
/// chunks as slices (no copy).
pub fn for_each_code(codes: &UInt32Chunked, mut f: impl FnMut(u32)) {
    if codes.null_count() > 0 {
        codes.iter().for_each(|c| f(c.unwrap_or(NONE)));
        return;
    }
    for a in codes.downcast_iter() {
        a.values().iter().for_each(|&c| f(c));
    }
}

/// `s[idx]` with [`NONE`] → null: the values of codes in their dictionary.
pub fn gather(s: &Series, idx: &[u32], name: &str) -> Result<Series> {
    let idx: IdxCa = idx
        .iter()
        .map(|&i| (i != NONE).then_some(i as IdxSize))
        .collect();
    Ok(s.take(&idx)?.with_name(name.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What [`number_columns`] must give, by a linear search per value: each column's codes
    /// (the value's place among the distinct values as first seen, [`NONE`] for null) and the
    /// distinct values in that order.
    fn numbered_by_value(columns: &[StringChunked]) -> (Vec<Vec<u32>>, Vec<Option<&str>>) {
        let mut first_seen: Vec<&str> = Vec::new();
        let codes = (columns.iter())
            .map(|c| {
                (c.iter())
                    .map(|v| match v {
                        None => NONE,
                        Some(v) => match first_seen.iter().position(|&s| s == v) {
                            Some(i) => i as u32,
                            None => {
                                first_seen.push(v);
                                (first_seen.len() - 1) as u32
                            }
                        },
                    })
                    .collect()
            })
            .collect();
        (codes, first_seen.into_iter().map(Some).collect())
    }

    /// A column gathered from a few values (as one read from a dictionary-encoded page) is
    /// numbered by place, and its codes are those of numbering by value.
    #[test]
    fn a_gathered_column_is_numbered_by_place() {
        // Two long values of one length (told apart by place, not length), a short one, nulls.
        let dict = StringChunked::new(
            "d".into(),
            &["a value past twelve", "b value past twelve", "c"],
        );
        let idx: IdxCa = (0..40).map(|i| (i % 4 != 3).then_some(i % 3)).collect();
        let column = dict.take(&idx).unwrap();
        assert!(column.downcast_iter().all(shares_places));
        let (dict, codes) = number_columns(std::slice::from_ref(&column), 0);
        let (want, want_dict) = numbered_by_value(std::slice::from_ref(&column));
        assert_eq!(codes, want);
        assert_eq!(dict.str().unwrap().iter().collect::<Vec<_>>(), want_dict);
    }

    #[test]
    fn rows_by_key_groups_rows_in_row_order_and_leaves_out_what_it_must() {
        // Keys of rows 0..8; key 3 is out of range, NONE has none, row 6 is not kept.
        let keys = [1, 0, 1, NONE, 2, 0, 1, 3, 1];
        let (offsets, rows) = rows_by_key(&keys, 3, |row| row != 6);
        assert_eq!(offsets, vec![0, 2, 5, 6]);
        assert_eq!(rows, vec![1, 5, 0, 2, 8, 4]);
        let (offsets, rows) = rows_by_key(&[], 2, |_| true);
        assert_eq!((offsets, rows), (vec![0, 0, 0], vec![]));
    }

    /// A code column's values (copied or visited): chunk by chunk, and a null read as `NONE`.
    #[test]
    fn code_values_are_read_chunk_by_chunk_with_nulls_as_none() {
        let mut a = UInt32Chunked::from_slice("c".into(), &[3, 1]);
        a.append(&UInt32Chunked::from_slice("c".into(), &[NONE, 7]))
            .unwrap();
        assert_eq!(a.chunks().len(), 2);
        assert_eq!(values_or(&a, NONE), vec![3, 1, NONE, 7]);
        let b = UInt32Chunked::new("c".into(), &[Some(2), None, Some(0)]);
        assert_eq!(values_or(&b, NONE), vec![2, NONE, 0]);
        for (ca, want) in [(&a, values_or(&a, NONE)), (&b, values_or(&b, NONE))] {
            let mut seen = Vec::new();
            for_each_code(ca, |c| seen.push(c));
            assert_eq!(seen, want);
        }
    }

    proptest! {
        /// The string sort is polars' stable `arg_sort` with nulls first: shared prefixes,
        /// values longer and shorter than the key, equal values, nulls, multi-byte text.
        #[test]
        fn arg_sort_strings_is_polars_stable_sort(
            values in proptest::collection::vec(
                proptest::option::weighted(0.9, "id_[a\\x00é]{0,10}"),
                0..60,
            ),
        ) {
            let ca = StringChunked::new("v".into(), &values);
            let theirs: Vec<IdxSize> = ca
                .arg_sort(SortOptions::default().with_maintain_order(true))
                .into_no_null_iter()
                .collect();
            prop_assert_eq!(arg_sort_strings(ca.iter()), theirs);
        }

        /// Numbering gives each value its place among the distinct values as first seen,
        /// across columns, whether it repeats the value before it or not: runs of equal values,
        /// nulls inside runs, a column starting with the previous column's last value.
        #[test]
        fn number_columns_numbers_values_as_first_seen(
            columns in proptest::collection::vec(
                proptest::collection::vec(
                    (proptest::option::weighted(0.8, "[ab]{0,2}"), 1usize..4),
                    0..12,
                ),
                1..4,
            ),
        ) {
            let columns: Vec<StringChunked> = (columns.iter().enumerate())
                .map(|(i, runs)| {
                    let values: Vec<Option<&str>> = (runs.iter())
                        .flat_map(|(v, n)| std::iter::repeat_n(v.as_deref(), *n))
                        .collect();
                    StringChunked::new(format!("c{i}").into(), &values)
                })
                .collect();
            let (dict, codes) = number_columns(&columns, 0);
            let (want, want_dict) = numbered_by_value(&columns);
            prop_assert_eq!(codes, want);
            let dict: Vec<Option<&str>> = dict.str().unwrap().iter().collect();
            prop_assert_eq!(dict, want_dict);
        }

        /// Numbering by place (arrays whose rows point at a few values, as a column read from
        /// dictionary-encoded pages) gives the codes of numbering value by value: short values
        /// kept in their views, long ones in the buffers, nulls, and chunks whose dictionaries
        /// hold the same values at other places.
        #[test]
        fn numbering_by_place_equals_numbering_by_value(
            chunks in proptest::collection::vec(
                (
                    proptest::collection::vec("[ab]{0,2}(-past-twelve-bytes)?", 1..5),
                    proptest::collection::vec(proptest::option::weighted(0.8, 0u32..5), 0..40),
                ),
                1..4,
            ),
        ) {
            let mut column: Option<StringChunked> = None;
            for (dict, rows) in &chunks {
                let dict = StringChunked::new("d".into(), dict);
                let idx: IdxCa = (rows.iter())
                    .map(|r| r.map(|r| (r as usize % dict.len()) as IdxSize))
                    .collect();
                let chunk = dict.take(&idx).unwrap();
                match column.as_mut() {
                    Some(c) => c.append(&chunk).unwrap(),
                    None => column = Some(chunk),
                }
            }
            let columns = [column.unwrap()];
            let (dict, codes) = number_columns(&columns, 0);
            let (want, want_dict) = numbered_by_value(&columns);
            prop_assert_eq!(codes, want);
            let dict: Vec<Option<&str>> = dict.str().unwrap().iter().collect();
            prop_assert_eq!(dict, want_dict);
        }

        /// Extending the dictionary of `a` with `b` gives the dictionary and codes of encoding
        /// `a` and `b` together: values in both, in either alone, nulls, multi-byte text.
        #[test]
        fn extend_dictionary_equals_encoding_both_together(
            a in proptest::collection::vec(proptest::option::of("[a-dé]{0,3}"), 0..60),
            b in proptest::collection::vec(proptest::option::of("[b-eé]{0,3}"), 0..60),
        ) {
            let a = StringChunked::new("a".into(), &a);
            let b = StringChunked::new("b".into(), &b);
            let (dict, mut a_codes) = encode_columns(std::slice::from_ref(&a)).unwrap();
            let (merged, renumber, mut b_codes) =
                extend_dictionary(dict.str().unwrap(), std::slice::from_ref(&b)).unwrap();
            let (together, mut both) = encode_columns(&[a, b]).unwrap();
            prop_assert!(merged.equals_missing(&together), "{merged:?} != {together:?}");
            let b_together = both.pop().unwrap();
            let a_together = both.pop().unwrap();
            prop_assert_eq!(b_codes.pop().unwrap(), b_together);
            let a_renumbered: Vec<u32> = a_codes
                .pop()
                .unwrap()
                .into_iter()
                .map(|c| if c == NONE { NONE } else { renumber[c as usize] })
                .collect();
            prop_assert_eq!(a_renumbered, a_together);
        }
    }
}
