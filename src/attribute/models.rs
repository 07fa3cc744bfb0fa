//! The five attribution models, as pure functions over one conversion and the person's path
//! of counting touches (contract §4).
//!
//! A touch takes part when it is at or before the conversion and no older than the lookback
//! window: `converted_at - lookback <= touch_at <= converted_at` (a touch logged in the same
//! microsecond as the purchase, e.g. a landing straight on checkout, counts). With no such
//! touch the conversion gets one `Direct` credit of 1 (no touch). Otherwise, over the eligible
//! touches `e[0..n]` in time order:
//!
//! - `first_touch`: `e[0]` gets 1.
//! - `last_non_direct`: the latest touch whose channel is not `Direct` gets 1 (every counting
//!   touch is non-direct by construction; if all were direct, the latest one gets 1).
//! - `linear`: each gets `1/n`.
//! - `position_based`: 40 % to the first, 40 % to the last, 20 % shared by the ones between;
//!   one touch gets 1, two touches 0.5 each.
//! - `time_decay`: weight `2^(-(converted_at - touch_at) / half_life)`, normalised to sum 1
//!   (computed relative to the latest eligible touch, which gives the same shares and cannot
//!   underflow to 0/0).
//!
//! The credits of one conversion under one model add up to 1 (up to floating-point rounding).

use super::channel::DIRECT;

/// Microseconds in a day.
pub const DAY_US: i64 = 86_400_000_000;

/// An attribution model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    /// All credit to the first eligible touch.
    FirstTouch,
    /// All credit to the latest eligible non-direct touch.
    LastNonDirect,
    /// Equal credit to every eligible touch.
    Linear,
    /// 40 / 20 / 40: first, the ones between, last.
    PositionBased,
    /// Exponential decay towards the conversion.
    TimeDecay,
}

impl Model {
    /// Every model, in the order of their names (the `attribution` table's sort order).
    pub const ALL: [Model; 5] = [
        Model::FirstTouch,
        Model::LastNonDirect,
        Model::Linear,
        Model::PositionBased,
        Model::TimeDecay,
    ];

    /// The model's name in the `attribution` table.
    pub fn name(self) -> &'static str {
        match self {
            Model::FirstTouch => "first_touch",
            Model::LastNonDirect => "last_non_direct",
            Model::Linear => "linear",
            Model::PositionBased => "position_based",
            Model::TimeDecay => "time_decay",
        }
    }
}

/// One counting touch of a person's path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathTouch<'a> {
    /// Touch time, microseconds since the epoch (UTC).
    pub at: i64,
    /// Its channel (see [`super::channel`]).
    pub channel: &'a str,
}

/// The share of one conversion a touch gets under one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Credit {
    /// Index into the path; `None` for the `Direct` credit of a conversion with no eligible
    /// touch.
    pub touch: Option<usize>,
    /// In `[0, 1]` (a time-decay share can round to 0 with a very short half-life).
    pub credit: f64,
}

/// The lookback window and the time-decay half-life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Oldest touch that counts, in microseconds before the conversion.
    pub lookback_us: i64,
    /// Time-decay half-life in microseconds (> 0).
    pub half_life_us: f64,
}

impl Window {
    /// A window from days (the job file's units).
    pub fn from_days(lookback_days: u32, half_life_days: f64) -> Window {
        Window {
            lookback_us: i64::from(lookback_days) * DAY_US,
            half_life_us: half_life_days * DAY_US as f64,
        }
    }
}

impl Default for Window {
    /// 90 days of lookback, a 7-day half-life.
    fn default() -> Self {
        Window::from_days(90, 7.0)
    }
}

/// The eligible part of a path sorted by time: touches with
/// `converted_at - lookback <= at <= converted_at`.
pub fn eligible(
    converted_at: i64,
    path: &[PathTouch<'_>],
    lookback_us: i64,
) -> std::ops::Range<usize> {
    let oldest = converted_at.saturating_sub(lookback_us);
    let start = path.partition_point(|t| t.at < oldest);
    let end = path.partition_point(|t| t.at <= converted_at);
    start..end.max(start)
}

/// The credits of one conversion under `model`. `path` is the person's counting touches
/// sorted by time; the returned indices point into it.
pub fn credits(
    model: Model,
    converted_at: i64,
    path: &[PathTouch<'_>],
    window: &Window,
) -> Vec<Credit> {
    let range = eligible(converted_at, path, window.lookback_us);
    let n = range.len();
    if n == 0 {
        return vec![Credit {
            touch: None,
            credit: 1.0,
        }];
    }
    let (first, last) = (range.start, range.end - 1);
    let one = |i: usize| {
        vec![Credit {
            touch: Some(i),
            credit: 1.0,
        }]
    };
    match model {
        Model::FirstTouch => one(first),
        Model::LastNonDirect => one(range
            .clone()
            .rev()
            .find(|&i| path[i].channel != DIRECT)
            .unwrap_or(last)),
        Model::Linear => range
            .map(|i| Credit {
                touch: Some(i),
                credit: 1.0 / n as f64,
            })
            .collect(),
        Model::PositionBased => match n {
            1 => one(first),
            2 => vec![
                Credit {
                    touch: Some(first),
                    credit: 0.5,
                },
                Credit {
                    touch: Some(last),
                    credit: 0.5,
                },
            ],
            _ => range
                .map(|i| Credit {
                    touch: Some(i),
                    credit: if i == first || i == last {
                        0.4
                    } else {
                        0.2 / (n - 2) as f64
                    },
                })
                .collect(),
        },
        Model::TimeDecay => {
            let latest = path[last].at;
            let weights: Vec<f64> = range
                .clone()
                .map(|i| (-((latest - path[i].at) as f64) / window.half_life_us).exp2())
                .collect();
            let total: f64 = weights.iter().sum();
            range
                .zip(weights)
                .map(|(i, w)| Credit {
                    touch: Some(i),
                    credit: w / total,
                })
                .collect()
        }
    }
}

/// The credits of one conversion under every model, in [`Model::ALL`] order.
pub fn all_models(
    converted_at: i64,
    path: &[PathTouch<'_>],
    window: &Window,
) -> [(Model, Vec<Credit>); 5] {
    Model::ALL.map(|m| (m, credits(m, converted_at, path, window)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONV: i64 = 1_800_000_000_000_000;

    fn path(ats: &[i64]) -> Vec<PathTouch<'static>> {
        ats.iter()
            .map(|&at| PathTouch {
                at,
                channel: "Paid Search",
            })
            .collect()
    }

    fn pairs(c: &[Credit]) -> Vec<(Option<usize>, f64)> {
        c.iter().map(|c| (c.touch, c.credit)).collect()
    }

    fn assert_credits(got: &[Credit], want: &[(Option<usize>, f64)]) {
        assert_eq!(got.len(), want.len(), "{:?} vs {want:?}", pairs(got));
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.touch, w.0, "{:?} vs {want:?}", pairs(got));
            assert!(
                (g.credit - w.1).abs() < 1e-12,
                "{:?} vs {want:?}",
                pairs(got)
            );
        }
    }

    fn days(d: f64) -> i64 {
        (d * DAY_US as f64) as i64
    }

    #[test]
    fn names_are_sorted_and_match_the_contract() {
        let names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "first_touch",
                "last_non_direct",
                "linear",
                "position_based",
                "time_decay"
            ]
        );
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn no_touch_is_one_direct_credit() {
        let w = Window::default();
        for m in Model::ALL {
            assert_credits(&credits(m, CONV, &[], &w), &[(None, 1.0)]);
        }
    }

    #[test]
    fn one_touch_gets_everything() {
        let w = Window::default();
        let p = path(&[CONV - days(3.0)]);
        for m in Model::ALL {
            assert_credits(&credits(m, CONV, &p, &w), &[(Some(0), 1.0)]);
        }
    }

    #[test]
    fn two_touches() {
        let w = Window::default();
        // 14 days and 7 days before the conversion: time-decay weights 1/4 and 1/2.
        let p = path(&[CONV - days(14.0), CONV - days(7.0)]);
        assert_credits(&credits(Model::FirstTouch, CONV, &p, &w), &[(Some(0), 1.0)]);
        assert_credits(
            &credits(Model::LastNonDirect, CONV, &p, &w),
            &[(Some(1), 1.0)],
        );
        assert_credits(
            &credits(Model::Linear, CONV, &p, &w),
            &[(Some(0), 0.5), (Some(1), 0.5)],
        );
        assert_credits(
            &credits(Model::PositionBased, CONV, &p, &w),
            &[(Some(0), 0.5), (Some(1), 0.5)],
        );
        assert_credits(
            &credits(Model::TimeDecay, CONV, &p, &w),
            &[(Some(0), 1.0 / 3.0), (Some(1), 2.0 / 3.0)],
        );
    }

    #[test]
    fn many_touches() {
        let w = Window::default();
        // 21, 14, 7 and 0 days before: time-decay weights 1/8, 1/4, 1/2, 1 (sum 15/8).
        let p = path(&[CONV - days(21.0), CONV - days(14.0), CONV - days(7.0), CONV]);
        assert_credits(&credits(Model::FirstTouch, CONV, &p, &w), &[(Some(0), 1.0)]);
        assert_credits(
            &credits(Model::LastNonDirect, CONV, &p, &w),
            &[(Some(3), 1.0)],
        );
        assert_credits(
            &credits(Model::Linear, CONV, &p, &w),
            &[
                (Some(0), 0.25),
                (Some(1), 0.25),
                (Some(2), 0.25),
                (Some(3), 0.25),
            ],
        );
        assert_credits(
            &credits(Model::PositionBased, CONV, &p, &w),
            &[
                (Some(0), 0.4),
                (Some(1), 0.1),
                (Some(2), 0.1),
                (Some(3), 0.4),
            ],
        );
        assert_credits(
            &credits(Model::TimeDecay, CONV, &p, &w),
            &[
                (Some(0), 1.0 / 15.0),
                (Some(1), 2.0 / 15.0),
                (Some(2), 4.0 / 15.0),
                (Some(3), 8.0 / 15.0),
            ],
        );
        // Three touches: the middle one gets all of the 20 %.
        let p3 = path(&[CONV - days(3.0), CONV - days(2.0), CONV - days(1.0)]);
        assert_credits(
            &credits(Model::PositionBased, CONV, &p3, &w),
            &[(Some(0), 0.4), (Some(1), 0.2), (Some(2), 0.4)],
        );
    }

    #[test]
    fn half_life_is_configurable() {
        // Half-life 1 day, touches 2 days and 1 day before: weights 1/4 and 1/2.
        let w = Window::from_days(90, 1.0);
        let p = path(&[CONV - days(2.0), CONV - days(1.0)]);
        assert_credits(
            &credits(Model::TimeDecay, CONV, &p, &w),
            &[(Some(0), 1.0 / 3.0), (Some(1), 2.0 / 3.0)],
        );
        // A tiny half-life: weights underflow relative to the conversion, not to each other.
        let w = Window {
            lookback_us: 90 * DAY_US,
            half_life_us: 1.0,
        };
        let got = credits(Model::TimeDecay, CONV, &p, &w);
        assert_credits(&got, &[(Some(0), 0.0), (Some(1), 1.0)]);
    }

    #[test]
    fn lookback_window_edges() {
        let w = Window::default();
        let edge = CONV - 90 * DAY_US;
        // Exactly 90 days before: inside. One microsecond earlier: outside.
        let p = path(&[edge - 1, edge, CONV - days(1.0)]);
        assert_eq!(eligible(CONV, &p, w.lookback_us), 1..3);
        assert_credits(&credits(Model::FirstTouch, CONV, &p, &w), &[(Some(1), 1.0)]);
        assert_credits(
            &credits(Model::Linear, CONV, &p, &w),
            &[(Some(1), 0.5), (Some(2), 0.5)],
        );
        // Only a touch just outside: Direct.
        let p = path(&[edge - 1]);
        for m in Model::ALL {
            assert_credits(&credits(m, CONV, &p, &w), &[(None, 1.0)]);
        }
        // A shorter lookback.
        let w7 = Window::from_days(7, 7.0);
        let p = path(&[CONV - days(8.0), CONV - days(6.0)]);
        assert_credits(
            &credits(Model::FirstTouch, CONV, &p, &w7),
            &[(Some(1), 1.0)],
        );
    }

    #[test]
    fn touches_after_the_conversion_do_not_count() {
        let w = Window::default();
        let p = path(&[CONV - days(2.0), CONV, CONV + 1, CONV + days(1.0)]);
        assert_eq!(eligible(CONV, &p, w.lookback_us), 0..2);
        assert_credits(
            &credits(Model::LastNonDirect, CONV, &p, &w),
            &[(Some(1), 1.0)],
        );
        assert_credits(
            &credits(Model::Linear, CONV, &p, &w),
            &[(Some(0), 0.5), (Some(1), 0.5)],
        );
        // Only touches after: Direct.
        let p = path(&[CONV + 1]);
        for m in Model::ALL {
            assert_credits(&credits(m, CONV, &p, &w), &[(None, 1.0)]);
        }
    }

    #[test]
    fn last_non_direct_skips_direct_touches() {
        let w = Window::default();
        let p = vec![
            PathTouch {
                at: CONV - days(3.0),
                channel: "Organic Search",
            },
            PathTouch {
                at: CONV - days(2.0),
                channel: "Email",
            },
            PathTouch {
                at: CONV - days(1.0),
                channel: DIRECT,
            },
        ];
        assert_credits(
            &credits(Model::LastNonDirect, CONV, &p, &w),
            &[(Some(1), 1.0)],
        );
        // Nothing but direct touches: the latest one.
        let p: Vec<PathTouch<'_>> = p
            .iter()
            .map(|t| PathTouch {
                channel: DIRECT,
                ..*t
            })
            .collect();
        assert_credits(
            &credits(Model::LastNonDirect, CONV, &p, &w),
            &[(Some(2), 1.0)],
        );
    }

    #[test]
    fn all_models_in_order() {
        let w = Window::default();
        let p = path(&[CONV - days(1.0)]);
        let all = all_models(CONV, &p, &w);
        let order: Vec<Model> = all.iter().map(|(m, _)| *m).collect();
        assert_eq!(order, Model::ALL);
    }

    proptest! {
        #[test]
        fn credits_sum_to_one(
            mut offsets in proptest::collection::vec(-10 * DAY_US..200 * DAY_US, 0..40),
            lookback_days in 1u32..120,
            half_life_days in 0.01f64..30.0,
        ) {
            // Offsets before the conversion (negative: after it).
            offsets.sort_unstable_by(|a, b| b.cmp(a));
            let p = path(&offsets.iter().map(|o| CONV - o).collect::<Vec<_>>());
            let w = Window::from_days(lookback_days, half_life_days);
            let range = eligible(CONV, &p, w.lookback_us);
            for (m, cs) in all_models(CONV, &p, &w) {
                let sum: f64 = cs.iter().map(|c| c.credit).sum();
                prop_assert!((sum - 1.0).abs() < 1e-9, "{m:?}: {sum}");
                for c in &cs {
                    prop_assert!(c.credit >= 0.0 && c.credit <= 1.0 + 1e-12);
                    match c.touch {
                        Some(i) => prop_assert!(range.contains(&i)),
                        None => prop_assert!(range.is_empty() && cs.len() == 1),
                    }
                }
                if matches!(m, Model::Linear | Model::TimeDecay) {
                    prop_assert_eq!(cs.len(), range.len().max(1));
                }
            }
        }
    }
}
