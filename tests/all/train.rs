//! Training runs end to end: SFT then GRPO (and PPO) on a micro model, resumed exactly from a
//! checkpoint; `rlvr merge`; and the errors a user meets first.

use rlvr::error::Error;
use rlvr::experiment::{self, Experiment};
use std::path::Path;

const EXP: &str = r#"
[run]
name = "train"
seed = 3
iterations = 4
tasks_per_iteration = 4
checkpoint_every = 2
eval_every = 2
eval_tasks = 6
eval_pass_k = 2
[env]
id = "arith/arith-v0"
[env.config]
max_digits = 1
ops = ["+"]
system_prompt = false
[rollout]
group_size = 4
max_new_tokens = 8
[policy]
id = "lm/llama-v0"
[policy.config]
preset = "micro"
[sft]
steps = 3
batch_size = 8
lr = 3e-3
[train]
lr = 1e-3
kl_coef = 0.05             # keeps zero-advantage rows (a model this fresh rarely scores)
"#;

fn metrics(dir: &Path) -> Vec<(i64, String, f64)> {
    let db = rusqlite::Connection::open(dir.join("run.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT iteration, name, value FROM metrics WHERE name NOT LIKE 'time/%' AND name NOT LIKE '%tokens_per_s' ORDER BY iteration, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn tokens(dir: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(dir.join("run.db")).unwrap();
    let mut stmt =
        db.prepare("SELECT trajectory FROM samples ORDER BY iteration, split, task_index, sample_index").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn sft_then_grpo_runs_logs_and_resumes_to_the_same_run() {
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    let exp = Experiment::parse(EXP, "exp.toml", &[]).unwrap();
    experiment::run(&registry, &exp, &whole, false, &mut ()).unwrap();
    let m = metrics(&whole);
    let names: Vec<&str> = m.iter().map(|x| x.1.as_str()).collect();
    for name in [
        "sft/loss_first",
        "sft/eval_accuracy_before",
        "sft/eval_accuracy",
        "loss/policy",
        "loss/kl",
        "train/clip_frac",
        "train/entropy",
        "train/grad_norm",
        "eval/accuracy",
        "eval/pass@2",
        "eval/sampled_accuracy",
        "sft/eval_pass@2",
        "sft/eval_sampled_accuracy",
        "reward/mean",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // A task solved by one of its k samples counts in pass@k: the share of right samples can
    // never exceed the share of tasks solved.
    let at = |n: &str| m.iter().filter(|x| x.1 == n).map(|x| (x.0, x.2)).collect::<Vec<_>>();
    let (sampled, pass) = (at("eval/sampled_accuracy"), at("eval/pass@2"));
    assert_eq!(sampled.len(), pass.len());
    for ((i, s), (j, p)) in sampled.iter().zip(&pass) {
        assert!(i == j && (0.0..=*p).contains(s), "iteration {i}: sampled {s}, pass@2 {p}");
    }
    let first = |n: &str| m.iter().find(|x| x.1 == n).unwrap().2;
    assert!(first("sft/loss_last") < first("sft/loss_first"), "SFT lowered its loss");
    let ckpt = whole.join("checkpoints");
    assert!(std::fs::read_dir(&ckpt).unwrap().count() >= 2);

    // Stop after two iterations, then resume to four: the policy, the optimiser's moments and
    // every random stream continue, so the run is the uninterrupted one.
    let short = Experiment::parse(EXP, "exp.toml", &["run.iterations=2".into()]).unwrap();
    experiment::run(&registry, &short, &split, false, &mut ()).unwrap();
    let s = experiment::run(&registry, &exp, &split, true, &mut ()).unwrap();
    assert_eq!(s.iterations_run, 2);
    let (tw, ts) = (tokens(&whole), tokens(&split));
    assert_eq!(tw.len(), ts.len());
    if let Some(i) = (0..tw.len()).find(|&i| tw[i] != ts[i]) {
        panic!("sample row {i} of {} differs after the resume:\n{}\n{}", tw.len(), tw[i], ts[i]);
    }
    let (a, b) = (metrics(&whole), metrics(&split));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.0, &x.1), (y.0, &y.1));
        assert!((x.2 - y.2).abs() <= 1e-6 * x.2.abs().max(1.0) || (x.2.is_nan() && y.2.is_nan()), "{x:?} vs {y:?}");
    }
}

/// Without a warm start, a run evaluates the model as loaded before its first update, so the
/// run says what RL added; the figure is the untrained model's, the same as the SFT run's
/// evaluation before SFT (same seed, same initial weights, same held-out episodes).
#[test]
fn a_run_without_a_warm_start_evaluates_before_training() {
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    let sft_block = "[sft]\nsteps = 3\nbatch_size = 8\nlr = 3e-3\n";
    assert!(EXP.contains(sft_block));
    let (rl, warm) = (tmp.path().join("rl"), tmp.path().join("warm"));
    let exp = Experiment::parse(&EXP.replace(sft_block, ""), "exp.toml", &["run.iterations=2".into()]).unwrap();
    experiment::run(&registry, &exp, &rl, false, &mut ()).unwrap();
    let m = metrics(&rl);
    let at0 = |n: &str| m.iter().find(|x| x.0 == 0 && x.1 == n).map(|x| x.2);
    let (before, sampled) = (at0("start/eval_accuracy"), at0("start/eval_sampled_accuracy"));
    assert!(before.is_some() && sampled.is_some(), "{m:?}");
    let exp = Experiment::parse(EXP, "exp.toml", &["run.iterations=1".into()]).unwrap();
    experiment::run(&registry, &exp, &warm, false, &mut ()).unwrap();
    let w = metrics(&warm);
    assert!(!w.iter().any(|x| x.1.starts_with("start/")), "a warm-started run reports sft/eval_accuracy_before");
    let sft_before = w.iter().find(|x| x.1 == "sft/eval_accuracy_before").map(|x| x.2);
    assert_eq!(before, sft_before);
}

/// Prefix-RFT in a run: the first samples of each group continue a prefix of the gold answer
/// whose share falls on a cosine to `end`, where the rollouts are unguided; the stored
/// trajectories mark the forced tokens, and the run reports the policy's reward alone.
#[test]
fn prefix_rft_guides_the_first_samples_with_an_annealed_gold_prefix() {
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    // "<answer>12</answer>" and the end of turn fit in 24 tokens; in the 8 of EXP a prefix of
    // 0.9 of it leaves nothing to continue and fails its rollout.
    let sets = [
        "train.prefix.samples=2",
        "train.prefix.start=0.9",
        "train.prefix.end=0.0",
        "run.iterations=3",
        "rollout.max_new_tokens=24",
    ];
    let exp = Experiment::parse(EXP, "exp.toml", &sets.map(String::from)).unwrap();
    experiment::run(&registry, &exp, tmp.path(), false, &mut ()).unwrap();
    let m = metrics(tmp.path());
    let at = |it: i64, n: &str| m.iter().find(|x| x.0 == it && x.1 == n).map(|x| x.2);
    assert_eq!(at(0, "train/prefix_share"), Some(0.9));
    assert!((at(1, "train/prefix_share").unwrap() - 0.45).abs() < 1e-12);
    assert_eq!(at(2, "train/prefix_share"), Some(0.0));
    // 4 tasks x 2 guided samples, then none once the share reaches 0.
    assert_eq!(at(0, "rollout/guided"), Some(8.0));
    assert!(at(0, "rollout/forced_tokens").unwrap() >= 8.0 * "<answer>".len() as f64);
    assert!(at(0, "reward/mean_unguided").is_some());
    assert_eq!(at(2, "rollout/guided"), None);
    // A guided sample's first answer starts with the gold answer's opening, its tokens forced.
    let db = rusqlite::Connection::open(tmp.path().join("run.db")).unwrap();
    let trajectories: Vec<String> = db
        .prepare("SELECT trajectory FROM samples WHERE iteration = 0 AND split = 'train' AND sample_index = 0")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!trajectories.is_empty());
    for t in trajectories {
        let tr: rlvr::engine::Trajectory = serde_json::from_str(&t).unwrap();
        assert!(tr.forced_tokens() >= "<answer>".len(), "{t}");
        assert!(tr.assistant_messages().next().unwrap().content.starts_with("<answer>"), "{t}");
    }
}

#[test]
fn ppo_trains_a_value_head_in_a_run() {
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    let exp =
        Experiment::parse(EXP, "exp.toml", &["train.algorithm=\"ppo\"".into(), "run.iterations=2".into()]).unwrap();
    experiment::run(&registry, &exp, tmp.path(), false, &mut ()).unwrap();
    let names: Vec<String> = metrics(tmp.path()).into_iter().map(|m| m.1).collect();
    assert!(names.iter().any(|n| n == "loss/value") && names.iter().any(|n| n == "loss/kl"), "{names:?}");
    let config = std::fs::read_to_string(tmp.path().join("checkpoints/it-000001/policy/config.json")).unwrap();
    assert!(config.contains("\"value_head\": true"), "{config}");
}

#[test]
fn training_a_policy_that_cannot_learn_is_bad_input() {
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    let exp =
        Experiment::parse(&EXP.replace("lm/llama-v0", "scripted/gold-v0").replace("preset = \"micro\"", ""), "e", &[]);
    let err = experiment::run(&registry, &exp.unwrap(), tmp.path(), false, &mut ()).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err:#}");
    assert!(format!("{err:#}").contains("trainable policy"), "{err:#}");
    let exp = Experiment::parse(EXP, "e", &["train.clip_low=1.5".into()]).unwrap();
    let err = experiment::run(&registry, &exp, &tmp.path().join("b"), false, &mut ()).unwrap_err();
    assert!(format!("{err:#}").contains("clip_low"), "{err:#}");
}

#[test]
fn bad_settings_are_refused_before_the_run_directory_exists() {
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    for (set, says) in [
        ("train.lr=nan", "lr"),
        ("sft.batch_size=0", "batch_size"),
        ("sft.lr=-1.0", "lr"),
        ("sft.asft_alpha=-1.0", "asft_alpha"),
        ("sft.data=\"no/such/file.jsonl\"", "no/such/file.jsonl"),
        ("train.clip_low=1.5", "clip_low"),
        ("rollout.group_size=0", "rollout.group_size must be at least 1, found 0"),
        ("run.tasks_per_iteration=0", "run.tasks_per_iteration must be at least 1"),
        ("rollout.max_new_tokens=0", "rollout.max_new_tokens must be at least 1"),
        ("run.eval_tasks=0", "run.eval_tasks = 0 evaluates nothing"),
        ("run.iterations=0", "run.iterations = 0 keeps nothing"),
        ("train.prefix.samples=4", "leave at least one sample unguided"),
        ("train.prefix.start=2.0", "prefix.start"),
    ] {
        let exp = Experiment::parse(EXP, "e", &[set.into()]).unwrap();
        let dir = tmp.path().join(set.replace(['.', '=', '"', '/'], "_"));
        let err = experiment::run(&registry, &exp, &dir, false, &mut ()).unwrap_err();
        assert!(matches!(err, Error::BadInput(_)), "{set}: {err:#}");
        assert!(format!("{err:#}").contains(says), "{set}: {err:#}");
        assert!(!dir.exists(), "{set}: nothing is written before the settings are checked");
    }
}

#[test]
fn merge_averages_checkpoints_and_applies_task_vectors() {
    use rlvr::policies::lm::{load_checkpoint, save_checkpoint};
    use rlvr::policies::model::{Model, ModelConfig};
    use rlvr::policies::tokenizer::ChatTemplate;
    let dev = rlvr::policies::burn::tensor::Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    for (name, seed) in [("a", 1), ("b", 2)] {
        save_checkpoint(
            &dir(name),
            &Model::random(&ModelConfig::micro(), seed, &dev).unwrap(),
            &rlvr::policies::tokenizer::Tokenizer::Bytes,
            &ChatTemplate::chatml(),
        )
        .unwrap();
    }
    let rlvr = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_rlvr")).args(args).output().unwrap();
    let p = |n: &str| dir(n).display().to_string();
    let out = rlvr(&["merge", &p("a"), &p("b"), "--out", &p("soup")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Two independently initialised models share no base: the merge says so.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("looks unrelated"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let same = rlvr(&["merge", &p("a"), &p("a"), "--out", &p("aa")]);
    assert!(!String::from_utf8_lossy(&same.stderr).contains("unrelated"), "{}", String::from_utf8_lossy(&same.stderr));
    let out = rlvr(&["merge", "--base", &p("a"), &format!("{}:-1", p("b")), "--out", &p("neg")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w = |n: &str| load_checkpoint(&dir(n), &dev).unwrap().0.to_weights().unwrap();
    let (a, b, soup, neg) = (w("a"), w("b"), w("soup"), w("neg"));
    let name = "model.layers.0.mlp.up_proj.weight";
    for j in [0, 17, 1000] {
        let (x, y) = (a.0[name].data[j], b.0[name].data[j]);
        assert!((soup.0[name].data[j] - (x + y) / 2.0).abs() < 1e-6);
        assert!((neg.0[name].data[j] - (2.0 * x - y)).abs() < 1e-6, "a - (b - a)");
    }
    // DARE with nothing dropped is task arithmetic; TIES with one model keeping every entry is
    // that model; both need a base, and their settings are checked.
    let out = rlvr(&["merge", "--base", &p("a"), &p("b"), "--method", "dare", "--drop", "0", "--out", &p("dare0")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ta = rlvr(&["merge", "--base", &p("a"), &p("b"), "--out", &p("ta")]);
    assert!(ta.status.success());
    assert_eq!(w("dare0").0[name].data, w("ta").0[name].data);
    let out = rlvr(&["merge", "--base", &p("a"), &p("b"), "--method", "ties", "--density", "1", "--out", &p("ties1")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for j in [0, 17, 1000] {
        assert!((w("ties1").0[name].data[j] - b.0[name].data[j]).abs() < 1e-6);
    }
    for bad in [
        vec!["merge", "--base", &p("a"), &p("b"), "--method", "dare", "--drop", "1", "--out", &p("x")],
        vec!["merge", "--base", &p("a"), &p("b"), "--method", "ties", "--density", "0", "--out", &p("x")],
    ] {
        let out = rlvr(&bad);
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = rlvr(&["merge", &p("b"), "--method", "ties", "--out", &p("x")]);
    assert!(!out.status.success(), "TIES without a base");
    let out = rlvr(&["merge", &p("a"), &p("missing"), "--out", &p("x")]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // A run's checkpoint folder, policy beside trainer state, is accepted as it is.
    std::fs::create_dir_all(dir("it-000001")).unwrap();
    std::fs::rename(dir("b"), dir("it-000001").join("policy")).unwrap();
    let out = rlvr(&["merge", &p("a"), &p("it-000001"), "--out", &p("soup2")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(w("soup2").0[name].data[17], soup.0[name].data[17]);
}

/// A LoRA run (SFT then GRPO on adapters only) resumes to the same run; its checkpoint holds the
/// merge, the PEFT adapter and the frozen base, and `rlvr merge --adapter` of the last two gives
/// the first.
#[test]
fn a_lora_run_resumes_and_its_adapter_merges_into_the_checkpoint() {
    use rlvr::policies::lm::load_checkpoint;
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    let lora = ["policy.config.lora.rank=4".to_string(), "policy.config.lora.targets=[\"q_proj\", \"up_proj\"]".into()];
    let exp = Experiment::parse(EXP, "exp.toml", &lora).unwrap();
    experiment::run(&registry, &exp, &whole, false, &mut ()).unwrap();
    let mut short_sets = lora.to_vec();
    short_sets.push("run.iterations=2".into());
    let short = Experiment::parse(EXP, "exp.toml", &short_sets).unwrap();
    experiment::run(&registry, &short, &split, false, &mut ()).unwrap();
    experiment::run(&registry, &exp, &split, true, &mut ()).unwrap();
    assert_eq!(tokens(&whole), tokens(&split), "the resumed LoRA run is the uninterrupted one");

    let policy = whole.join("checkpoints").join("it-000003").join("policy");
    let dev = rlvr::policies::burn::tensor::Device::flex();
    let w = |d: &Path| load_checkpoint(d, &dev).unwrap().0.to_weights().unwrap();
    let (merged, base) = (w(&policy), w(&policy.join("base")));
    let out = tmp.path().join("merged");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_rlvr"))
        .args(["merge", "--adapter"])
        .arg(policy.join("adapter"))
        .arg("--base")
        .arg(policy.join("base"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let host = w(&out);
    for (name, t) in &merged.0 {
        let moved = t.data.iter().zip(&base.0[name].data).any(|(x, y)| x != y);
        assert_eq!(moved, name.ends_with("q_proj.weight") || name.ends_with("up_proj.weight"), "{name}");
        let diff = t.data.iter().zip(&host.0[name].data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "{name}: the host merge differs by {diff}");
    }
    // Settings that describe no adapter are refused before anything is written.
    for (set, says) in [("policy.config.lora.rank=0", "rank"), ("policy.config.lora.targets=[\"lm_head\"]", "lm_head")]
    {
        let exp = Experiment::parse(EXP, "e", &[set.into()]).unwrap();
        let dir = tmp.path().join("bad");
        let err = experiment::run(&registry, &exp, &dir, false, &mut ()).unwrap_err();
        assert!(format!("{err:#}").contains(says), "{set}: {err:#}");
        assert!(!dir.exists(), "{set}");
    }
}

/// The quickstart file stays valid: it parses, and a shortened copy of it runs end to end.
#[test]
fn the_quickstart_runs_shortened() {
    let path = crate::repo("examples/quickstart.toml");
    let short =
        ["run.iterations=1", "sft.steps=2", "run.eval_tasks=4", "run.tasks_per_iteration=2", "run.eval_pass_k=2"];
    let exp = Experiment::load(Path::new(&path), &short.map(String::from)).unwrap();
    assert!(exp.sft.is_some() && exp.train.is_some(), "the quickstart trains");
    let tmp = tempfile::tempdir().unwrap();
    let s = experiment::run(&rlvr::builtin_registry(), &exp, tmp.path(), false, &mut ()).unwrap();
    assert_eq!(s.iterations_run, 1);
    assert!(s.last_metrics.contains_key("eval/accuracy") && s.last_metrics.contains_key("sft/eval_accuracy"));
}

/// The README's quickstart figures for the default seed are what the quickstart gives: the whole
/// run (SFT on scarce demonstrations, then 100 GRPO iterations), read against the seed-0 row of
/// the README's table, within two held-out problems (runs are deterministic on one machine;
/// the margin is for another CPU's float kernels). Also the claim the table makes: GRPO adds at
/// least 10 points over the post-SFT model.
#[test]
fn the_quickstart_gives_the_readme_figures() {
    let readme = std::fs::read_to_string(crate::repo("README.md")).unwrap();
    let section = readme.split("## Learning: the quickstart").nth(1).expect("the README's learning section");
    let rows: Vec<Vec<&str>> = section
        .lines()
        .skip_while(|l| !l.starts_with("| seed |"))
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let (header, seed0) = (&rows[0], rows.iter().find(|r| r[0] == "0").expect("a seed 0 row"));
    let documented = |column: &str| -> f64 {
        let i = header.iter().position(|h| *h == column).unwrap_or_else(|| panic!("no column {column:?}"));
        seed0[i].trim_matches('*').parse().unwrap_or_else(|e| panic!("{column}: {:?}: {e}", seed0[i]))
    };
    let path = crate::repo("examples/quickstart.toml");
    let exp = Experiment::load(Path::new(&path), &[]).unwrap();
    assert_eq!(exp.run.seed, 0, "the default seed is the documented one");
    let tmp = tempfile::tempdir().unwrap();
    experiment::run(&rlvr::builtin_registry(), &exp, tmp.path(), false, &mut ()).unwrap();
    let m = metrics(tmp.path());
    let last = |name: &str| m.iter().rev().find(|x| x.1 == name).unwrap_or_else(|| panic!("no {name}")).2;
    let (sft, rl) = (last("sft/eval_accuracy"), last("eval/accuracy"));
    for (name, got, want) in
        [("after SFT", sft, documented("after SFT, greedy")), ("after GRPO", rl, documented("after GRPO, greedy"))]
    {
        assert!(
            (got - want).abs() <= 2.0 / 128.0 + 1e-9,
            "{name}: the quickstart gives {got:.3}, the README says {want:.3}"
        );
    }
    assert!(rl - sft >= 0.10, "GRPO adds {:.3} over SFT's {sft:.3}", rl - sft);
}

/// Every algorithm, and DFT's warm start, runs from the quickstart file (shortened).
#[test]
fn every_algorithm_runs_from_the_quickstart_file() {
    let path = crate::repo("examples/quickstart.toml");
    for extra in [
        &["train.algorithm=\"gspo\"", "train.clip_low=3e-4", "train.clip_high=4e-4"][..],
        &["train.algorithm=\"cispo\"", "train.clip_low=0.99", "train.clip_high=0.28"],
        &["train.algorithm=\"reinforce++\"", "train.kl_coef=0.01"],
        &["train.algorithm=\"rft\"", "sft.loss=\"dft\""],
        &["train.algorithm=\"dpo\"", "train.minibatch=0"],
        &["train.algorithm=\"ipo\"", "train.minibatch=0", "train.preference.beta=0.5"],
        &["train.algorithm=\"orpo\"", "train.minibatch=0"],
    ] {
        let mut sets: Vec<String> =
            ["run.iterations=1", "sft.steps=2", "run.eval_tasks=4", "run.tasks_per_iteration=2", "run.eval_pass_k=0"]
                .map(String::from)
                .to_vec();
        sets.extend(extra.iter().map(|s| s.to_string()));
        let exp = Experiment::load(Path::new(&path), &sets).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let s = experiment::run(&rlvr::builtin_registry(), &exp, tmp.path(), false, &mut ())
            .unwrap_or_else(|e| panic!("{extra:?}: {e:#}"));
        assert!(s.last_metrics.contains_key("train/rows"), "{extra:?}: {:?}", s.last_metrics.keys());
    }
}

/// `[preference]` runs after `[sft]` and before the first iteration; a missing file is refused
/// before the run directory exists.
#[test]
fn an_offline_preference_warm_start_runs_from_the_quickstart_file() {
    let path = crate::repo("examples/quickstart.toml");
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.jsonl");
    std::fs::write(&pairs, "{\"prompt\": \"What is 1 + 2 + 3?\", \"chosen\": \"<answer>6</answer>\", \"rejected\": \"<answer>7</answer>\"}\n").unwrap();
    let sets = |data: &str| {
        ["run.iterations=1", "sft.steps=2", "run.eval_tasks=4", "run.tasks_per_iteration=2", "run.eval_pass_k=0"]
            .map(String::from)
            .into_iter()
            .chain([
                format!("preference.data={data:?}"),
                "preference.steps=3".into(),
                "preference.loss=\"orpo\"".into(),
            ])
            .collect::<Vec<_>>()
    };
    let exp = Experiment::load(Path::new(&path), &sets(pairs.to_str().unwrap())).unwrap();
    let s = experiment::run(&rlvr::builtin_registry(), &exp, &tmp.path().join("run"), false, &mut ()).unwrap();
    for k in ["preference/loss_first", "preference/accuracy_last", "preference/eval_accuracy", "sft/eval_accuracy"] {
        assert!(s.last_metrics.contains_key(k), "{k}: {:?}", s.last_metrics.keys());
    }
    let exp = Experiment::load(Path::new(&path), &sets("/nonexistent/pairs.jsonl")).unwrap();
    let e = experiment::run(&rlvr::builtin_registry(), &exp, &tmp.path().join("bad"), false, &mut ()).unwrap_err();
    assert!(e.to_string().contains("[preference] data"), "{e}");
    assert!(!tmp.path().join("bad").exists());
}

/// The preference example stays valid and runs, shortened.
#[test]
fn the_preference_example_runs_shortened() {
    let path = crate::repo("examples/preference/preference.toml");
    let sets = [
        "run.iterations=1",
        "sft.steps=2",
        "preference.steps=2",
        "run.eval_tasks=4",
        "run.tasks_per_iteration=2",
        &format!("preference.data={:?}", crate::repo("examples/preference/pairs.jsonl")),
    ];
    let exp = Experiment::load(Path::new(&path), &sets.map(String::from)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s = experiment::run(&rlvr::builtin_registry(), &exp, tmp.path(), false, &mut ()).unwrap();
    assert!(s.last_metrics.contains_key("train/pairs") && s.last_metrics.contains_key("preference/loss_last"));
}

/// The SmolLM2 examples stay valid: they parse, and their environments and rewards build (running
/// them needs the model's wheel; the opt-in SmolLM2 test in rlvr-policies covers loading it).
#[test]
fn the_smollm2_examples_parse_and_wire_up() {
    for file in ["smollm2.toml", "smollm2-lora.toml", "causal-levels-sft.toml", "causal-levels-grpo.toml"] {
        let path = Path::new(&crate::repo("examples")).join(file);
        let exp = Experiment::load(&path, &[]).unwrap();
        assert_eq!(exp.train.is_some(), file != "causal-levels-sft.toml", "{file}: only the SFT arm has no [train]");
        let registry = rlvr::builtin_registry();
        registry.make_env(&exp.env.id, &exp.env.config, 0).unwrap();
        let reward = exp.reward.as_ref().expect("the example names its reward");
        registry.make_reward(&reward.id, &reward.config).unwrap();
        let config: rlvr::policies::lm::LmConfig =
            rlvr::engine::parse_config(&exp.policy.config).expect("the policy's settings");
        if let Some(lora) = config.lora {
            lora.validate().unwrap();
        }
    }
}

/// The two arms of the causal-ladder comparison differ only where the comparison says: the SFT
/// arm takes twice the warm start's SFT steps where the GRPO arm runs RL after them, and with a
/// constant learning rate the GRPO arm's warm start is the SFT arm's first half.
#[test]
fn the_causal_ladder_arms_share_their_start() {
    let load = |f: &str| Experiment::load(&Path::new(&crate::repo("examples")).join(f), &[]).unwrap();
    let (sft, grpo) = (load("causal-levels-sft.toml"), load("causal-levels-grpo.toml"));
    assert_eq!((sft.env.id.as_str(), &sft.env.config), (grpo.env.id.as_str(), &grpo.env.config));
    assert_eq!(sft.policy.config, grpo.policy.config);
    assert_eq!(sft.rollout, grpo.rollout);
    assert_eq!(sft.reward, grpo.reward);
    let (a, b) = (sft.sft.unwrap(), grpo.sft.unwrap());
    assert!(!a.decay && !b.decay, "a decaying rate would make the first steps differ");
    assert_eq!(a.steps, 2 * b.steps);
    assert_eq!(rlvr::policies::algo::sft::SftConfig { steps: a.steps, ..b }, a);
    assert_eq!(
        (sft.run.seed, sft.run.eval_tasks, &sft.run.eval_by),
        (grpo.run.seed, grpo.run.eval_tasks, &grpo.run.eval_by)
    );
    assert_eq!(grpo.run.eval_by.as_deref(), Some("query.level"));
    // The methods' comparison starts from the ladder's warm start (a checkpoint, not the
    // preset), and its GRPO is the ladder's GRPO arm, iteration for iteration.
    let methods = load("causal-methods.toml");
    assert_eq!((methods.env.id.as_str(), &methods.env.config), (grpo.env.id.as_str(), &grpo.env.config));
    assert_eq!((&methods.rollout, &methods.reward, &methods.train), (&grpo.rollout, &grpo.reward, &grpo.train));
    assert_eq!(
        (methods.run.seed, methods.run.tasks_per_iteration, methods.run.eval_tasks, &methods.run.eval_by),
        (grpo.run.seed, grpo.run.tasks_per_iteration, grpo.run.eval_tasks, &grpo.run.eval_by)
    );
    assert!(methods.sft.is_none() && methods.run.iterations <= grpo.run.iterations);
}

/// Dynamic sampling: a fresh model's groups are all flat (every answer wrong), so each iteration
/// spends its extra rounds, trains on nothing, and says so in its metrics.
#[test]
fn dynamic_sampling_resamples_flat_groups_up_to_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let set = ["train.dynamic_sampling=true", "train.max_resample=2", "run.iterations=1", "train.kl_coef=0.0"];
    let exp = Experiment::parse(&EXP.replace("steps = 3", "steps = 1"), "e", &set.map(String::from)).unwrap();
    let s = experiment::run(&rlvr::builtin_registry(), &exp, tmp.path(), false, &mut ()).unwrap();
    let m = &s.last_metrics;
    assert_eq!(m["train/resample_rounds"], 2.0, "{m:?}");
    assert_eq!(m["train/groups"], 0.0);
    assert_eq!(m["train/rows"], 0.0);
}
