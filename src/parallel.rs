//! Independent pieces of work spread over the machine's cores, with results that do not depend
//! on which thread did what.
//!
//! polars parallelizes inside its own operations (decoding, encoding, sorts); much of a run is
//! our own sequential code or polars operations that run on one thread. These helpers run such
//! pieces side by side: the files of a source, the rows of a long loop split in parts, two
//! stages that read the same input.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use crate::error::Result;

/// The number of threads to use for work that wants up to `max`: the machine's cores, or
/// `POLARS_MAX_THREADS` when set (the one setting for the whole run), at most `max`, at least 1.
pub fn threads(max: usize) -> usize {
    let cores = std::env::var("POLARS_MAX_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cores.clamp(1, max.max(1))
}

/// `0..len` cut into at most `parts` consecutive ranges of about equal length, in order (none
/// when `len` is 0): the rows of a long loop split in parts.
pub fn slices(len: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let size = len.div_ceil(parts.max(1)).max(1);
    (0..len)
        .step_by(size)
        .map(|start| start..(start + size).min(len))
        .collect()
}

/// `f(i, &items[i])` for every item on up to `max_threads` threads, the results in the items'
/// order. Items are handed out in index order. On failure, the error of the first failing item
/// in that order, as a loop would return it: no new item is started once one failed, and every
/// item before a failing one was handed out before it.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    max_threads: usize,
    f: impl Fn(usize, &T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let order: Vec<usize> = (0..items.len()).collect();
    map_in(items, &order, max_threads, f)
}

/// [`map`], handing the items out in `order` (a permutation of their indexes, such as the
/// biggest first so that no thread is left alone with a big one at the end). Results are
/// still in the items' order; on failure, the error of the failing item with the lowest index
/// among those started.
pub fn map_in<T: Sync, R: Send>(
    items: &[T],
    order: &[usize],
    max_threads: usize,
    f: impl Fn(usize, &T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Relaxed) {
            let Some(&i) = order.get(next.fetch_add(1, Relaxed)) else {
                break;
            };
            let r = f(i, &items[i]);
            if r.is_err() {
                failed.store(true, Relaxed);
            }
            done.push((i, r));
        }
        done
    };
    let workers = threads(max_threads).min(items.len().max(1));
    let mut done: Vec<(usize, Result<R>)> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..workers).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in helpers {
            done.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        done
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// `a()` on a new thread and `b()` on this one, side by side; a panic in either is passed on.
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|s| {
        let a = s.spawn(a);
        let b = b();
        (a.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn slices_cover_every_index_once_in_order_in_at_most_the_parts_asked() {
        for (len, parts) in [(0, 8), (1, 8), (7, 8), (8, 8), (9, 8), (100, 3), (5, 0)] {
            let s = slices(len, parts);
            assert!(s.len() <= parts.max(1), "{len} in {parts}: {s:?}");
            let flat: Vec<usize> = s.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(flat, (0..len).collect::<Vec<_>>(), "{len} in {parts}");
            assert!(s.iter().all(|r| !r.is_empty()));
        }
        assert_eq!(slices(100, 3), vec![0..34, 34..68, 68..100]);
    }

    #[test]
    fn results_come_in_item_order_whatever_the_order_handed_out() {
        let items: Vec<u64> = (0..100).collect();
        let order: Vec<usize> = (0..100).rev().collect();
        let out = map_in(&items, &order, 4, |i, v| Ok(i as u64 * 1000 + v)).unwrap();
        assert_eq!(out, (0..100).map(|i| i * 1001).collect::<Vec<_>>());
        assert_eq!(map(&items, 3, |_, v| Ok(v * 2)).unwrap()[99], 198);
        assert!(map(&[] as &[u8], 4, |_, _| Ok(())).unwrap().is_empty());
    }

    #[test]
    fn the_first_failing_item_in_order_gives_the_error() {
        let items: Vec<usize> = (0..200).collect();
        for _ in 0..20 {
            let err = map(&items, 4, |i, _| {
                if i % 7 == 3 {
                    Err(Error::Internal(format!("item {i}")))
                } else {
                    Ok(i)
                }
            })
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                Error::Internal("item 3".into()).to_string()
            );
        }
    }

    #[test]
    fn join_runs_both_and_passes_a_panic_on() {
        assert_eq!(join(|| 1 + 1, || "b"), (2, "b"));
        let panicked = std::panic::catch_unwind(|| join(|| panic!("in a"), || 0));
        assert!(panicked.is_err());
    }
}
