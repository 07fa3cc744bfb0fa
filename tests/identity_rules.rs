//! One test per identity rule of contract §3.

use crate::common::*;

const D: &str = "2026-11-10";

#[test]
fn rule_3_1_signup_links_cookie_to_user() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev(
                "e1",
                "page_viewed",
                "2026-11-10T10:00:00Z",
                Some("a1"),
                None,
            ),
            ev(
                "e2",
                "signup_completed",
                "2026-11-10T10:05:00Z",
                Some("a1"),
                Some("u1"),
            ),
        ],
    );
    let run = lake.run(D);
    let map = run.rows("identity_map", "anon_id", "a1");
    assert_eq!(map.height(), 1);
    assert_eq!(strings(&map, "user_id"), vec![Some("u1".into())]);
    assert_eq!(strings(&map, "person_id"), vec![Some("u1".into())]);
    assert_eq!(strings(&map, "link_kind"), vec![Some("signup".into())]);
    assert_eq!(strings(&map, "link_event_id"), vec![Some("e2".into())]);
    assert_eq!(
        micros(&map, "linked_at"),
        vec![Some(us("2026-11-10T10:05:00Z"))]
    );
}

#[test]
fn rule_3_1_signin_on_a_second_device_merges_it_into_the_person() {
    let mut lake = TestLake::new();
    lake.touches(
        D,
        &[touch("phone", "2026-11-01T09:00:00Z")
            .gclid("G1")
            .utm("google", "cpc", "brand")],
    );
    lake.events(
        D,
        &[
            ev(
                "p1",
                "page_viewed",
                "2026-11-01T09:00:01Z",
                Some("phone"),
                None,
            ),
            ev(
                "l1",
                "signup_completed",
                "2026-11-05T10:00:00Z",
                Some("laptop"),
                Some("ava"),
            ),
            ev(
                "p2",
                "signed_in",
                "2026-11-08T10:00:00Z",
                Some("phone"),
                Some("ava"),
            ),
        ],
    );
    let run = lake.run(D);
    assert_eq!(run.journey_of("p1"), ("ava".into(), Some("ava".into())));
    let kinds = strings(&run.rows("identity_map", "anon_id", "phone"), "link_kind");
    assert_eq!(kinds, vec![Some("signin".into())]);
    let ua = run.rows("user_attribution", "user_id", "ava");
    assert_eq!(u32s(&ua, "anon_count"), vec![Some(2)]);
    let ft = strings(&ua, "first_touch")[0]
        .clone()
        .expect("a first touch");
    assert!(ft.contains("\"gclid\":\"G1\""), "{ft}");
}

#[test]
fn rule_3_1_alias_joins_two_cookies_of_one_browser() {
    let mut lake = TestLake::new();
    lake.touches(D, &[touch("srv", "2026-11-01T09:00:00Z").fbclid("F1")]);
    lake.events(
        D,
        &[
            ev(
                "s1",
                "page_viewed",
                "2026-11-01T09:00:01Z",
                Some("srv"),
                None,
            ),
            ev(
                "al",
                "$create_alias",
                "2026-11-01T09:00:02Z",
                Some("sdk"),
                None,
            )
            .prev("srv"),
            ev(
                "k1",
                "signup_completed",
                "2026-11-02T09:00:00Z",
                Some("sdk"),
                Some("fay"),
            ),
        ],
    );
    let run = lake.run(D);
    assert_eq!(run.journey_of("s1").0, "fay");
    let ft = run
        .str_of("user_attribution", "user_id", "fay", "first_touch")
        .unwrap();
    assert!(ft.contains("F1"), "{ft}");
}

#[test]
fn rule_3_1_org_id_in_user_id_is_an_org_and_links_nothing() {
    let mut lake = TestLake::new();
    lake.orgs(&["acme"]);
    lake.events(
        D,
        &[
            ev(
                "g1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("gus_pc"),
                Some("gus"),
            ),
            ev(
                "h1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("hal_pc"),
                Some("hal"),
            ),
            ev(
                "g2",
                "project_created",
                "2026-11-01T10:00:00Z",
                Some("gus_pc"),
                Some("acme"),
            )
            .version(1),
            ev(
                "h2",
                "project_created",
                "2026-11-01T10:00:00Z",
                Some("hal_pc"),
                Some("acme"),
            ),
        ],
    );
    let run = lake.run(D);
    assert_eq!(run.journey_of("g2"), ("gus".into(), Some("gus".into())));
    assert_eq!(run.journey_of("h2"), ("hal".into(), Some("hal".into())));
    assert_eq!(
        run.str_of("journeys", "event_id", "g2", "org_id")
            .as_deref(),
        Some("acme")
    );
    assert_eq!(run.rows("persons", "person_id", "acme").height(), 0);
    assert_eq!(run.manifest()["inputs"]["events"]["org_ids_in_user_id"], 2);
}

#[test]
fn rule_3_1_actor_not_member_of_org_keeps_no_org() {
    let mut lake = TestLake::new();
    lake.orgs(&["acme"]).memberships(&[("gus", "acme")]);
    lake.events(
        D,
        &[
            ev(
                "g1",
                "invite_sent",
                "2026-11-01T09:00:00Z",
                Some("a"),
                Some("gus"),
            )
            .org("acme")
            .version(2),
            ev(
                "x1",
                "invite_sent",
                "2026-11-01T09:00:00Z",
                Some("b"),
                Some("eve"),
            )
            .org("acme")
            .version(2),
        ],
    );
    let run = lake.run(D);
    assert_eq!(
        run.str_of("journeys", "event_id", "g1", "org_id")
            .as_deref(),
        Some("acme")
    );
    assert_eq!(run.str_of("journeys", "event_id", "x1", "org_id"), None);
    assert_eq!(run.manifest()["inputs"]["events"]["org_not_member"], 1);
}

#[test]
fn rule_3_2_logout_starts_a_new_segment() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev(
                "d1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("family"),
                Some("dee"),
            ),
            ev(
                "d2",
                "signed_out",
                "2026-11-01T10:00:00Z",
                Some("family"),
                None,
            ),
            ev(
                "n1",
                "page_viewed",
                "2026-11-01T11:00:00Z",
                Some("family"),
                None,
            ),
            ev(
                "e1",
                "signed_in",
                "2026-11-01T12:00:00Z",
                Some("family"),
                Some("eli"),
            ),
        ],
    );
    let run = lake.run(D);
    let map = run.rows("identity_map", "anon_id", "family");
    assert_eq!(u32s(&map, "segment"), vec![Some(0), Some(1)]);
    assert_eq!(
        strings(&map, "user_id"),
        vec![Some("dee".into()), Some("eli".into())]
    );
    assert_eq!(
        micros(&map, "valid_to")[0],
        Some(us("2026-11-01T10:00:00Z"))
    );
    // The logout belongs to the segment it ends; the anonymous view after it to the next user.
    assert_eq!(run.journey_of("d2").0, "dee");
    assert_eq!(run.journey_of("n1").0, "eli");
    assert_ne!(run.journey_of("d1").0, run.journey_of("e1").0);
}

#[test]
fn rule_3_2_shared_device_without_logout_is_cut_and_flagged() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev(
                "b1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("shared"),
                Some("ben"),
            ),
            ev(
                "b2",
                "page_viewed",
                "2026-11-01T09:30:00Z",
                Some("shared"),
                None,
            ),
            ev(
                "c1",
                "signed_in",
                "2026-11-01T10:00:00Z",
                Some("shared"),
                Some("cy"),
            ),
            ev(
                "c2",
                "page_viewed",
                "2026-11-01T10:30:00Z",
                Some("shared"),
                None,
            ),
        ],
    );
    let run = lake.run(D);
    let map = run.rows("identity_map", "anon_id", "shared");
    assert_eq!(
        strings(&map, "user_id"),
        vec![Some("ben".into()), Some("cy".into())]
    );
    assert_eq!(bools(&map, "conflict"), vec![Some(true), Some(true)]);
    assert_eq!(run.journey_of("b2").0, "ben");
    assert_eq!(run.journey_of("c2").0, "cy");
    assert_eq!(run.rows("persons", "person_id", "ben").height(), 1);
    assert_eq!(
        u32s(&run.rows("persons", "person_id", "cy"), "conflict_count"),
        vec![Some(1)]
    );
}

#[test]
fn rule_3_2_events_before_the_first_link_are_backfilled() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev("v1", "page_viewed", "2026-11-01T09:00:00Z", Some("a"), None),
            ev(
                "v2",
                "page_viewed",
                "2026-11-01T09:01:00Z",
                Some("a"),
                Some("undefined"),
            ),
            ev(
                "s1",
                "signup_completed",
                "2026-11-03T09:00:00Z",
                Some("a"),
                Some("u"),
            ),
        ],
    );
    let run = lake.run(D);
    let j = run
        .table("journeys")
        .sort(["step"], Default::default())
        .unwrap();
    assert_eq!(strings(&j, "user_id"), vec![Some("u".into()); 3]);
    assert_eq!(
        bools(&j, "backfilled"),
        vec![Some(true), Some(true), Some(false)]
    );
    assert_eq!(strings(&j, "raw_user_id")[1].as_deref(), Some("undefined"));
}

#[test]
fn rule_3_3_a_union_of_two_users_is_refused_and_counted() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev(
                "a1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("ca"),
                Some("alice"),
            ),
            ev(
                "b1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("cb"),
                Some("bob"),
            ),
            ev(
                "x",
                "$create_alias",
                "2026-11-01T10:00:00Z",
                Some("cb"),
                None,
            )
            .prev("ca"),
        ],
    );
    let run = lake.run(D);
    assert_eq!(run.journey_of("a1").0, "alice");
    assert_eq!(run.journey_of("b1").0, "bob");
    assert_eq!(run.manifest()["identity"]["refused_unions"], 1);
    for p in ["alice", "bob"] {
        assert_eq!(
            u32s(&run.rows("persons", "person_id", p), "conflict_count"),
            vec![Some(1)]
        );
    }
    assert_eq!(
        bools(&run.rows("identity_map", "anon_id", "ca"), "conflict"),
        vec![Some(true)]
    );
}

#[test]
fn rule_3_3_unions_apply_in_event_time_order_with_seq_breaking_ties() {
    // In one millisecond, anonymous cookie x is aliased first (seq 1) with alice's cookie, then
    // (seq 2) with bob's. Applied in seq order x joins alice and the second union is refused;
    // event_id order (or row order) would join bob instead.
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev(
                "a_second",
                "$create_alias",
                "2026-11-01T09:00:00Z",
                Some("x"),
                None,
            )
            .prev("cb")
            .seq(2),
            ev(
                "z_first",
                "$create_alias",
                "2026-11-01T09:00:00Z",
                Some("x"),
                None,
            )
            .prev("ca")
            .seq(1),
            ev(
                "a",
                "signed_in",
                "2026-11-01T08:00:00Z",
                Some("ca"),
                Some("alice"),
            ),
            ev(
                "b",
                "signed_in",
                "2026-11-01T08:00:00Z",
                Some("cb"),
                Some("bob"),
            ),
        ],
    );
    let run = lake.run(D);
    let x = run.rows("identity_map", "anon_id", "x");
    assert_eq!(strings(&x, "person_id"), vec![Some("alice".into())]);
    assert_eq!(bools(&x, "conflict"), vec![Some(true)]);
    assert_eq!(run.manifest()["identity"]["refused_unions"], 1);
}

#[test]
fn rule_3_3_anonymous_person_id_is_the_smallest_anon_id() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[ev(
            "x",
            "$create_alias",
            "2026-11-01T09:00:00Z",
            Some("zeta"),
            None,
        )
        .prev("beta")],
    );
    let run = lake.run(D);
    assert_eq!(
        strings(&run.table("persons"), "person_id"),
        vec![Some("beta".into())]
    );
}

#[test]
fn rule_3_4_first_touch_is_earliest_in_time_not_in_merge_order() {
    // The laptop links first, with a later paid touch; the phone's earlier touch is merged
    // later by a sign-in: the phone's touch is the first touch.
    let mut lake = TestLake::new();
    lake.touches(
        D,
        &[
            touch("phone", "2026-11-01T09:00:00Z").utm("facebook", "paid_social", "early"),
            touch("laptop", "2026-11-03T09:00:00Z").gclid("LATE"),
            touch("laptop", "2026-11-04T09:00:00Z"), // direct: overwrites nothing
        ],
    );
    lake.events(
        D,
        &[
            ev(
                "s",
                "signup_completed",
                "2026-11-03T09:01:00Z",
                Some("laptop"),
                Some("u"),
            ),
            ev(
                "i",
                "signed_in",
                "2026-11-06T09:00:00Z",
                Some("phone"),
                Some("u"),
            ),
        ],
    );
    let run = lake.run(D);
    let ft = run
        .str_of("user_attribution", "user_id", "u", "first_touch")
        .unwrap();
    assert!(ft.contains("early"), "{ft}");
    let lt = run
        .str_of("user_attribution", "user_id", "u", "last_touch")
        .unwrap();
    assert!(lt.contains("LATE"), "{lt}");
    let ua = run.rows("user_attribution", "user_id", "u");
    assert_eq!(
        micros(&ua, "first_touch_at"),
        vec![Some(us("2026-11-01T09:00:00Z"))]
    );
}

#[test]
fn rule_3_4_which_touches_count() {
    let mut lake = TestLake::new();
    let land = "https://www.example.com/";
    lake.touches(
        D,
        &[
            touch("internal", "2026-11-01T09:00:00Z")
                .referrer("https://app.example.com/x")
                .landing(land),
            touch("external", "2026-11-01T09:00:00Z")
                .referrer("https://news.ycombinator.com/")
                .landing(land),
            touch("unknown_key", "2026-11-01T09:00:00Z").extra("partner_ref", "pr_1"),
            touch("blank_utm", "2026-11-01T09:00:00Z").utm(" ", "", ""),
            touch("suffix", "2026-11-01T09:00:00Z")
                .referrer("https://shop.example.co.uk/")
                .landing("https://www.example.co.uk/"),
        ],
    );
    let run = lake.run(D);
    let ft = |a: &str| run.str_of("anon_visitors", "anon_id", a, "first_touch");
    assert_eq!(ft("internal"), None);
    assert!(ft("external").unwrap().contains("news.ycombinator.com"));
    assert!(ft("unknown_key")
        .unwrap()
        .contains("\"partner_ref\":\"pr_1\""));
    assert_eq!(ft("blank_utm"), None);
    assert_eq!(ft("suffix"), None);
    assert_eq!(run.manifest()["stitch"]["counting_touches"], 2);
}

#[test]
fn rule_3_5_junk_ids_never_link_and_are_counted() {
    let mut lake = TestLake::new();
    lake.events(
        D,
        &[
            ev(
                "j1",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("c1"),
                Some("undefined"),
            ),
            ev(
                "j2",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("c2"),
                Some("\"NULL\""),
            ),
            ev(
                "j3",
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some("[object Object]"),
                Some("u"),
            ),
            ev(
                "j4",
                "page_viewed",
                "2026-11-01T09:00:00Z",
                Some(" 0 "),
                Some("none"),
            ),
        ],
    );
    let run = lake.run(D);
    assert_ne!(run.journey_of("j1").0, run.journey_of("j2").0);
    assert_eq!(
        run.rows("identity_map", "anon_id", "[object Object]")
            .height(),
        0
    );
    let m = run.manifest();
    assert_eq!(m["inputs"]["events"]["junk_ids"], 5);
    assert_eq!(
        m["inputs"]["events"]["quarantined_by_reason"]["no_identity"],
        1
    );
    let q = run.table("quarantine");
    assert_eq!(strings(&q, "row_key"), vec![Some("j4".into())]);
    assert_eq!(strings(&q, "reason"), vec![Some("no_identity".into())]);
}

#[test]
fn rule_3_5_oversized_persons_are_flagged_and_kept() {
    let mut lake = TestLake::new();
    let rows: Vec<Ev> = (0..4)
        .map(|i| {
            ev(
                &format!("e{i}"),
                "signed_in",
                "2026-11-01T09:00:00Z",
                Some(&format!("c{i}")),
                Some("bot"),
            )
        })
        .collect();
    lake.events(D, &rows);
    let mut cfg = lake.config(D);
    cfg.identity.max_cookies_per_user = 3;
    let run = lake.run_with(cfg);
    let p = run.rows("persons", "person_id", "bot");
    assert_eq!(bools(&p, "oversized"), vec![Some(true)]);
    assert_eq!(run.table("journeys").height(), 4);
}

#[test]
fn rule_3_6_same_millisecond_events_are_ordered_by_seq_then_event_id() {
    let mut lake = TestLake::new();
    let t = "2026-11-01T09:00:00.123Z";
    lake.events(
        D,
        &[
            ev("c", "third", t, Some("a"), None).seq(3),
            ev("b", "second", t, Some("a"), None).seq(2),
            ev("a", "first", t, Some("a"), None).seq(1),
            ev("z", "zero_null_seq", t, Some("a"), None),
        ],
    );
    let run = lake.run(D);
    let j = run
        .table("journeys")
        .sort(["step"], Default::default())
        .unwrap();
    assert_eq!(
        strings(&j, "event"),
        ["zero_null_seq", "first", "second", "third"]
            .map(|s| Some(s.to_string()))
            .to_vec()
    );
}

#[test]
fn rule_3_6_repeated_event_id_is_kept_once_from_the_earliest_partition() {
    let mut lake = TestLake::new();
    let base = ev(
        "p",
        "purchase_completed",
        "2026-11-01T09:00:00Z",
        Some("a"),
        None,
    )
    .purchase(10.0, None);
    lake.events("2026-11-02", &[base.clone().props("{\"v\":\"late\"}")]);
    lake.events(
        "2026-11-01",
        &[
            base.clone().props("{\"v\":\"early\"}"),
            base.clone().props("{\"v\":\"early\"}"),
        ],
    );
    let run = lake.run(D);
    assert_eq!(run.table("journeys").height(), 1);
    let m = run.manifest();
    assert_eq!(m["inputs"]["events"]["rows_deduplicated"], 2);
    assert_eq!(m["inputs"]["events"]["conflicting_duplicates"], 1);
    assert_eq!(m["inputs"]["events"]["rows_quarantined"], 0);
}

#[test]
fn rule_3_7_late_data_with_an_earlier_time_changes_first_touch_and_is_counted() {
    let mut lake = TestLake::new();
    lake.touches(
        "2026-11-05",
        &[touch("a", "2026-11-05T09:00:00Z").gclid("LATER")],
    );
    lake.events(
        "2026-11-05",
        &[
            ev(
                "s",
                "signup_completed",
                "2026-11-05T09:10:00Z",
                Some("a"),
                Some("u"),
            ),
            ev(
                "s2",
                "signup_completed",
                "2026-11-07T09:10:00Z",
                Some("b"),
                Some("u"),
            ),
        ],
    );
    let first = lake.run("2026-11-05");
    assert!(first
        .str_of("user_attribution", "user_id", "u", "first_touch")
        .unwrap()
        .contains("LATER"));
    // A partition that arrives on the 6th holds an older touch of the same cookie.
    lake.touches(
        "2026-11-06",
        &[touch("a", "2026-11-02T09:00:00Z").gclid("EARLIER")],
    );
    let second = lake.run("2026-11-06");
    assert!(second
        .str_of("user_attribution", "user_id", "u", "first_touch")
        .unwrap()
        .contains("EARLIER"));
    assert_eq!(second.manifest()["changes"]["first_touch_changed"], 1);
    // signup_at is the earliest signup by event time, whatever arrived later.
    let ua = second.rows("user_attribution", "user_id", "u");
    assert_eq!(
        micros(&ua, "signup_at"),
        vec![Some(us("2026-11-05T09:10:00Z"))]
    );
}
