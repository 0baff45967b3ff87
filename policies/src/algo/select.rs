//! Which groups an update learns from: DAPO's dynamic sampling (Yu et al. 2025).
//!
//! A group whose rewards are all equal gets zero advantages from GRPO: it cost a rollout and
//! teaches nothing, and as a policy gets better more of its groups are all right. With
//! `dynamic_sampling` on, [`select_groups`] drops such groups and has the caller roll out more
//! tasks in their place, up to `max_resample` extra rounds, so that an update sees as many groups
//! with signal as the iteration drew tasks.
//!
//! The caller does the rollouts: which tasks a round draws and with which seeds belong to the
//! experiment's task streams, and the time they take to its metrics.

use super::TrainConfig;
use rlvr_engine::Group;
use std::collections::BTreeMap;

/// A group whose scored rewards differ: the only kind GRPO learns from.
pub fn has_signal(group: &Group) -> bool {
    let r: Vec<f64> = group.samples.iter().filter_map(|s| s.reward()).collect();
    r.iter().any(|x| (x - r[0]).abs() >= 1e-12)
}

/// The groups an iteration's update learns from, out of its rollout's `groups`, and the metrics
/// of the choice.
///
/// Without `config.dynamic_sampling`: `groups` as they are, and no metrics. With it: the groups
/// with [signal](has_signal); while there are fewer than `wanted` and fewer than
/// `config.max_resample` extra rounds were taken, `refill(round)` (rounds count from 1) rolls out
/// more groups, and those with signal join. Of those, the first `wanted` are kept. The metrics
/// are `train/resample_rounds` (the extra rounds taken) and `train/groups` (the groups kept).
pub fn select_groups<E>(
    config: &TrainConfig,
    mut groups: Vec<Group>,
    wanted: usize,
    mut refill: impl FnMut(u32) -> Result<Vec<Group>, E>,
) -> Result<(Vec<Group>, BTreeMap<String, f64>), E> {
    let mut metrics = BTreeMap::new();
    if !config.dynamic_sampling {
        return Ok((groups, metrics));
    }
    groups.retain(has_signal);
    let mut round = 0;
    while groups.len() < wanted && round < config.max_resample {
        round += 1;
        groups.extend(refill(round)?.into_iter().filter(has_signal));
    }
    groups.truncate(wanted);
    metrics.insert("train/resample_rounds".into(), f64::from(round));
    metrics.insert("train/groups".into(), groups.len() as f64);
    Ok((groups, metrics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvr_engine::{Outcome, Rubric, Sample, Task, Trajectory};
    use std::sync::Arc;

    /// A group of one sample per reward, its task index `index`.
    fn group(index: u64, rewards: &[f64]) -> Group {
        let task = Arc::new(Task::new("t", serde_json::json!({})));
        let samples = rewards
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                let rubric = Rubric::new().term("r", 1.0, move |_: &Task, _: &Trajectory| Ok(r.into()));
                let trajectory = Trajectory::default();
                let outcome = Outcome::Scored(rubric.score(&task, &trajectory));
                Sample { sample_index: i as u32, seed: 0, trajectory, outcome }
            })
            .collect();
        Group { task_index: index, task, samples }
    }

    fn indices(groups: &[Group]) -> Vec<u64> {
        groups.iter().map(|g| g.task_index).collect()
    }

    #[test]
    fn signal_is_a_reward_spread() {
        assert!(has_signal(&group(0, &[1.0, 0.0])));
        assert!(!has_signal(&group(0, &[0.5, 0.5, 0.5])));
        assert!(!has_signal(&group(0, &[1.0])));
        assert!(!has_signal(&group(0, &[])));
    }

    #[test]
    fn off_keeps_every_group_and_reports_nothing() {
        let config = TrainConfig::default();
        let groups = vec![group(0, &[1.0, 1.0]), group(1, &[0.0, 1.0])];
        let (kept, m) = select_groups(&config, groups, 2, |_| -> Result<_, ()> { panic!("no refill") }).unwrap();
        assert_eq!((indices(&kept), m.len()), (vec![0, 1], 0));
    }

    #[test]
    fn flat_groups_are_replaced_until_enough_or_out_of_rounds() {
        let config = TrainConfig { dynamic_sampling: true, max_resample: 3, ..TrainConfig::default() };
        // Round 1 brings one group with signal and a flat one, round 2 two with signal: three
        // with signal are wanted, four are there after round 2, the first three are kept.
        let start = vec![group(0, &[1.0, 1.0]), group(1, &[0.0, 1.0]), group(2, &[0.0, 0.0])];
        let mut rounds = Vec::new();
        let (kept, m) = select_groups(&config, start, 3, |round| {
            rounds.push(round);
            Ok::<_, ()>(match round {
                1 => vec![group(10, &[1.0, 0.0]), group(11, &[1.0, 1.0])],
                _ => vec![group(20, &[0.0, 1.0]), group(21, &[0.5, 1.0])],
            })
        })
        .unwrap();
        assert_eq!(rounds, [1, 2]);
        assert_eq!(indices(&kept), [1, 10, 20]);
        assert_eq!((m["train/resample_rounds"], m["train/groups"]), (2.0, 3.0));
        // Nothing but flat groups: every round is spent, nothing is kept.
        let (kept, m) =
            select_groups(&config, vec![group(0, &[0.0, 0.0])], 2, |_| Ok::<_, ()>(vec![group(1, &[1.0])])).unwrap();
        assert!(kept.is_empty());
        assert_eq!((m["train/resample_rounds"], m["train/groups"]), (3.0, 0.0));
        // A refill's error ends the selection.
        assert_eq!(select_groups(&config, vec![], 1, |_| Err("down")).unwrap_err(), "down");
    }
}
