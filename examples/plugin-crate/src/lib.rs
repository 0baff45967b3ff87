//! A plugin crate's plugins: one environment and one reward of its own, registered by
//! `register`; `main.rs` hands them to the whole `rlvr` CLI.

use rlvr_engine::*;
use serde_json::json;
use std::sync::Arc;

const WORDS: [&str; 8] =
    ["banana", "committee", "mississippi", "bookkeeper", "parallel", "success", "letter", "assess"];

/// Asks how often a letter occurs in a word; the episode ends with the first answer.
struct Letters;

impl Environment for Letters {
    fn reset(&mut self, task: &Task, _seed: u64) -> Result<Vec<Message>, EnvError> {
        let (word, letter) = (task.str_field("word")?, task.str_field("letter")?);
        Ok(vec![Message::user(format!(
            "How many times does '{letter}' occur in \"{word}\"? Answer with the number only."
        ))])
    }

    fn step(&mut self, _action: &Action) -> Result<Step, EnvError> {
        Ok(Step::terminated(serde_json::Value::Null))
    }
}

/// Task `i`: a word and one of its letters, chosen from `i` alone.
fn task(split: Split, i: u64) -> Task {
    let word = WORDS[(i as usize + 4 * split.index() as usize) % WORDS.len()];
    let letter = word.chars().nth((i / 8) as usize % word.len()).unwrap_or('a');
    let count = word.chars().filter(|&c| c == letter).count();
    Task::new(format!("{i}"), json!({ "word": word, "letter": letter.to_string(), "count": count }))
}

/// Adds this crate's plugins to `registry`.
pub fn register(registry: &mut Registry) {
    registry.env("letters/count-v0", "count a letter in a word", |_config, _seed| {
        let train = (0..64).map(|i| task(Split::Train, i)).collect();
        let test = (0..16).map(|i| task(Split::Test, i)).collect();
        Ok(EnvSpec::new(Arc::new(VecTasks { train, test }), || Ok(Letters), "letters/count-match")
            .with_gold(|task, _| Ok(task.data["count"].to_string())))
    });
    registry.reward("letters/count-match", "the answer is the letter's count", |_config| {
        Ok(Rubric::new().term("correct", 1.0, |task: &Task, tr: &Trajectory| {
            let want = task.data["count"].as_u64().ok_or_else(|| RewardError::new("task has no count"))?;
            Ok(Reward::from(tr.final_answer().trim().parse::<u64>().ok() == Some(want)))
        }))
    });
}
