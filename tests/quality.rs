//! Stitching quality on a generated lake: the run is scored against the generator's truth.

use chrono::NaiveDate;
use lakestitch::config::JobConfig;
use lakestitch::gen::GenOptions;
use lakestitch::pipeline;
use lakestitch::progress::Progress;
use lakestitch::quality;

/// Thresholds, measured on this lake (seed 11, 300 random persons plus the stories, 20 days):
/// precision 1.0000, recall 0.8763, first-touch accuracy 0.8444 (255 of 302).
///
/// - Precision is about wrong merges, which the identity rules exist to prevent: no event of
///   this lake is put with another human's, and anything below 0.99 is a bug.
/// - Recall cannot reach 1 from the data: 119 of the 314 humans end up in more than one
///   person, and 141 of the 154 cookies split off never carry a user id or an alias (a device
///   that never signed in, a wiped cookie); the other 13 are the anonymous segments that follow a
///   logout, which the contract (§3.2) keeps apart. 0.85 leaves ~0.03 of room.
/// - First touch: every miss is a person whose first touch is *later* than the human's (or
///   missing), i.e. the human's first touch happened on one of those unlinkable devices; none
///   is earlier (which would mean a wrong merge). 0.80 leaves ~0.04 of room.
const MIN_PRECISION: f64 = 0.99;
const MIN_RECALL: f64 = 0.85;
const MIN_FIRST_TOUCH: f64 = 0.80;

#[test]
fn a_generated_lake_is_stitched_with_high_bcubed_precision_and_recall() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let out = tmp.path().join("out");
    let (lake, out) = (lake.to_str().unwrap(), out.to_str().unwrap());
    let end = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let opts = GenOptions {
        persons: 300,
        days: 20,
        seed: 11,
        end_date: end,
        stories: true,
        visits_scale: 1,
    };
    pipeline::generate(lake, &opts).unwrap();
    pipeline::run(&JobConfig::new(lake, out, end), &Progress::hidden()).unwrap();

    let q = quality::measure(lake, out, None).unwrap();
    println!(
        "measured: precision {:.4}, recall {:.4}, f1 {:.4}, first-touch accuracy {:.4} \
         ({} of {}), user first touch {:?}; {} events scored, {} missing, {} persons, {} humans",
        q.bcubed.precision,
        q.bcubed.recall,
        q.bcubed.f1,
        q.first_touch_accuracy,
        q.first_touch_correct,
        q.humans_with_first_touch,
        q.user_first_touch_accuracy,
        q.events_scored,
        q.events_missing,
        q.persons,
        q.humans,
    );
    assert_eq!(q.events_unknown, 0, "every published event is in the truth");
    assert_eq!(q.events_scored + q.events_missing, q.truth_events);
    assert!(q.events_scored > 3000, "{q:?}");
    assert!(q.bcubed.precision >= MIN_PRECISION, "{q:?}");
    assert!(q.bcubed.recall >= MIN_RECALL, "{q:?}");
    assert!(q.first_touch_accuracy >= MIN_FIRST_TOUCH, "{q:?}");
}
