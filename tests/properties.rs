//! Property tests over random link histories (contract §3).

use std::collections::{HashMap, HashSet};

use crate::common::*;
use polars::prelude::*;
use proptest::prelude::*;

const D: &str = "2026-11-10";
const KINDS: [&str; 5] = [
    "page_viewed",
    "signup_completed",
    "signed_in",
    "signed_out",
    "$create_alias",
];

/// (kind, cookie, user, previous cookie, minute, seq)
type Step = (usize, Option<u8>, Option<u8>, u8, u8, Option<u8>);

fn history() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0..KINDS.len(),
            prop::option::weighted(0.9, 0u8..6),
            prop::option::weighted(0.4, 0u8..4),
            0u8..6,
            0u8..20,
            prop::option::of(0u8..3),
        ),
        1..40,
    )
}

fn events(steps: &[Step]) -> Vec<Ev> {
    steps
        .iter()
        .enumerate()
        .map(|(i, &(kind, anon, user, prev, minute, seq))| {
            let anon = anon.map(|a| format!("c{a}"));
            // A row needs an id; the junk value exercises §3.5 on the way.
            let user = user
                .map(|u| format!("u{u}"))
                .or_else(|| anon.is_none().then(|| "undefined".to_string()));
            let ts = format!("2026-11-01T09:{minute:02}:00Z");
            let mut e = ev(
                &format!("e{i:03}"),
                KINDS[kind],
                &ts,
                anon.as_deref(),
                user.as_deref(),
            );
            if KINDS[kind] == "$create_alias" {
                e = e.prev(&format!("c{prev}"));
            }
            if let Some(s) = seq {
                e = e.seq(s as i64);
            }
            e
        })
        .collect()
}

fn sorted(df: DataFrame, by: &[&str]) -> DataFrame {
    df.sort(by.to_vec(), SortMultipleOptions::default())
        .unwrap()
}

fn snapshot(run: &Run) -> Vec<DataFrame> {
    vec![
        sorted(run.table("identity_map"), &["anon_id", "segment"]),
        sorted(run.table("persons"), &["person_id"]),
        sorted(run.table("anon_visitors"), &["anon_id"]),
        sorted(run.table("user_attribution"), &["user_id"]),
        sorted(run.table("journeys"), &["event_id"]),
        sorted(run.table("quarantine"), &["row_key"]),
    ]
}

fn same(a: &[DataFrame], b: &[DataFrame]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals_missing(y))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_person_holds_two_users_and_every_event_has_one_person(steps in history()) {
        let rows = events(&steps);
        let mut lake = TestLake::new();
        lake.events(D, &rows);
        let run = lake.run(D);

        // identity_map: one user at most per person.
        let map = run.table("identity_map");
        let mut users_of: HashMap<String, HashSet<String>> = HashMap::new();
        for (p, u) in strings(&map, "person_id").into_iter().zip(strings(&map, "user_id")) {
            if let (Some(p), Some(u)) = (p, u) {
                users_of.entry(p).or_default().insert(u);
            }
        }
        prop_assert!(users_of.values().all(|s| s.len() <= 1), "{users_of:?}");

        // journeys: each event once, with a person; the users it names agree with the person.
        let j = run.table("journeys");
        let ids: Vec<_> = strings(&j, "event_id");
        let distinct: HashSet<_> = ids.iter().collect();
        prop_assert_eq!(distinct.len(), ids.len());
        let m = run.manifest();
        prop_assert_eq!(ids.len() as u64, m["inputs"]["events"]["rows_used"].as_u64().unwrap());
        let persons = strings(&j, "person_id");
        prop_assert!(persons.iter().all(Option::is_some));
        let mut named: HashMap<String, HashSet<String>> = HashMap::new();
        for (p, u) in persons.into_iter().zip(strings(&j, "raw_user_id")) {
            if let (Some(p), Some(u)) = (p, u) {
                if u != "undefined" {
                    named.entry(p).or_default().insert(u);
                }
            }
        }
        prop_assert!(named.values().all(|s| s.len() <= 1), "{named:?}");
        let read = m["inputs"]["events"]["rows_read"].as_u64().unwrap();
        let accounted = m["inputs"]["events"]["rows_used"].as_u64().unwrap()
            + m["inputs"]["events"]["rows_deduplicated"].as_u64().unwrap()
            + m["inputs"]["events"]["rows_quarantined"].as_u64().unwrap();
        prop_assert_eq!(read, accounted);
    }

    #[test]
    fn output_does_not_depend_on_file_or_row_order_and_reruns_agree(
        steps in history(),
        split in 0usize..40,
        seed in any::<u64>(),
    ) {
        let rows = events(&steps);
        let mut one = TestLake::new();
        one.events(D, &rows);
        let a = one.run(D);
        let first = snapshot(&a);
        let again = snapshot(&one.run(D));
        prop_assert!(same(&first, &again), "a rerun changed the tables");

        // The same rows shuffled and split over two files.
        let mut shuffled = rows.clone();
        let n = shuffled.len();
        let mut state = seed | 1;
        for i in (1..n).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let cut = split.min(n);
        let mut two = TestLake::new();
        two.events(D, &shuffled[cut..]);
        if cut > 0 {
            two.events(D, &shuffled[..cut]);
        }
        let b = two.run(D);
        let second = snapshot(&b);
        // Quarantine names files; compare its reasons only.
        prop_assert!(same(&first[..5], &second[..5]), "file or row order changed the tables");
        prop_assert_eq!(
            strings(&first[5], "reason"),
            strings(&second[5], "reason")
        );
    }
}
