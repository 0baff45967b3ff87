//! The `rlvr` command line, as a library entry point so a user's crate can add its plugins and
//! get the whole CLI: `fn main() -> ExitCode { rlvr::cli::main_with(|r| { r.env(...); }) }`.

use crate::error::{Error, Result};
use crate::experiment::{self, Experiment, Progress};
use crate::{report, score, store};

mod served;
#[cfg(feature = "causal")]
use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rlvr_engine::Registry;
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rlvr",
    version,
    about = "Reinforcement learning with verifiable rewards: run experiments, score and inspect."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment file (or continue one with --resume).
    Run {
        /// The experiment file.
        experiment: PathBuf,
        /// Run directory [default: runs/<run.name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a config field: --set run.iterations=50 (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
        /// Continue the run in the output directory from its last checkpoint.
        #[arg(long)]
        resume: bool,
    },
    /// Evaluate an experiment's policy without training: every task of a split, one greedy
    /// episode each (and k sampled with --pass-k); writes run.db like a run (`rlvr report`
    /// draws it) and prints accuracy, pass@k, each reward term, failures, tokens and time.
    Eval {
        /// The experiment file ([train] and [sft] are ignored).
        experiment: PathBuf,
        /// The split: test (held-out) or train.
        #[arg(long, default_value = "test", value_parser = ["test", "train"])]
        split: String,
        /// Evaluate the first N tasks [default: all of the split, or run.eval_tasks for a
        /// generator without end].
        #[arg(long)]
        n: Option<u64>,
        /// Also sample K episodes per task at the policy's temperature: pass@K and sampled
        /// accuracy.
        #[arg(long, default_value_t = 0)]
        pass_k: u32,
        /// Output directory [default: runs/<run.name>-eval-<split>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a config field: --set policy.config.base_url=... (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
    },
    /// List every registered environment, reward and policy; with an id, that plugin and the
    /// config keys it takes, at their defaults.
    Envs {
        /// A plugin id (`arith/arith-v0`).
        id: Option<String>,
    },
    /// Score {task, completion} rows with a registered reward; one JSON result per line.
    Score {
        /// Reward id, e.g. answer/exact.
        #[arg(long)]
        reward: String,
        /// JSONL input: {"task": {...}, "completion": "..."} per line.
        #[arg(long)]
        input: PathBuf,
        /// Where to write results [default: stdout].
        #[arg(long)]
        output: Option<PathBuf>,
        /// Override a field of the reward's config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Worker threads; 0 for one per core.
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// Score on this many worker processes (one thread each) instead of threads: faster
        /// for rewards that run the code sandbox on more than one core (docs/environments/code.md).
        #[arg(long, default_value_t = 0, conflicts_with = "workers")]
        processes: usize,
    },
    /// The worker process of `score --processes` (reads numbered lines on stdin).
    #[command(hide = true)]
    ScoreWorker {
        /// Reward id.
        #[arg(long)]
        reward: String,
        /// Override a field of the reward's config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Summarise a run and plot its curves into <run-dir>/report/.
    Report {
        /// The run directory.
        run_dir: PathBuf,
    },
    /// Speed and agreement with gold labels of reward verifiers, on a labelled JSONL set.
    BenchRewards {
        /// {task, completion, label} JSONL [default: the built-in set named by --set].
        #[arg(long, conflicts_with = "set")]
        input: Option<PathBuf>,
        /// A built-in labelled set: `bundled` (hand-checked rows of the math and answer
        /// verifiers) or `math-verify` (math-verify's own test suite, for math/equivalence).
        #[arg(long, default_value = "bundled", value_parser = ["bundled", "math-verify"])]
        set: String,
        /// Reward ids (repeatable) [default: math/equivalence answer/numeric answer/exact answer/choice].
        #[arg(long = "reward")]
        rewards: Vec<String>,
        /// Threads for the all-cores figure; 0 for one per core.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Least milliseconds per timing loop.
        #[arg(long, default_value_t = 500)]
        min_time_ms: u64,
        /// Disagreement examples kept per kind.
        #[arg(long, default_value_t = 3)]
        examples: usize,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Write a PNG chart of throughput and agreement here.
        #[arg(long)]
        chart: Option<PathBuf>,
    },
    /// Write generated tasks of an environment family as JSON lines.
    #[command(subcommand)]
    Tasks(Tasks),
    /// Continue a prompt with a language model (an HF directory, a GGUF file, or a preset).
    Generate {
        /// An HF checkpoint directory (ours included), a `.gguf` file, `preset:tiny` for random
        /// tiny weights, or `preset:smollm2` for SmolLM2-135M-Instruct (fetched at first use).
        #[arg(long)]
        model: String,
        /// The prompt.
        #[arg(long)]
        prompt: String,
        /// Render the prompt as a user message with the model's chat template.
        #[arg(long)]
        chat: bool,
        /// At most this many new tokens.
        #[arg(long, default_value_t = 128)]
        max_new_tokens: usize,
        /// Sampling temperature; 0 is greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// Sampling seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print {"text", "tokens", "tokens_per_s"} as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Average checkpoints (a model soup) or add and subtract task vectors; writes a checkpoint.
    ///
    /// Without --base: the weighted average Σ wᵢ·mᵢ (weights default to 1/n). With --base B:
    /// B + Σ wᵢ·(mᵢ - B), so a model with weight -1 has its task vector subtracted; --method
    /// dare or ties combines the task vectors by DARE or TIES instead of summing them. With
    /// --adapter A --base B: B with the LoRA adapter A (ours or PEFT's) merged into it.
    Merge {
        /// Checkpoint directories, each optionally with a weight: DIR or DIR:WEIGHT.
        #[arg(required_unless_present = "adapter", conflicts_with = "adapter", value_name = "DIR[:WEIGHT]")]
        models: Vec<String>,
        /// A LoRA adapter directory (`adapter_config.json`, `adapter_model.safetensors`) to
        /// merge into --base; a LoRA run's checkpoint keeps its own in `policy/adapter`, beside
        /// its base in `policy/base`.
        #[arg(long, requires = "base")]
        adapter: Option<PathBuf>,
        /// The base model of task arithmetic.
        #[arg(long)]
        base: Option<PathBuf>,
        /// How task vectors combine (with --base): task-arithmetic (their weighted sum), dare
        /// (random drop with rescaling, then the sum) or ties (trim, elect sign, disjoint mean).
        #[arg(long, default_value = "task-arithmetic", value_parser = ["task-arithmetic", "dare", "ties"], requires = "base")]
        method: String,
        /// DARE's drop probability, in [0, 1).
        #[arg(long, default_value_t = 0.9)]
        drop: f64,
        /// TIES's share of each task vector's largest entries kept, in (0, 1].
        #[arg(long, default_value_t = 0.2)]
        density: f64,
        /// Seed of DARE's masks.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output checkpoint directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run Python in the wasmtime sandbox of the code environment.
    #[cfg(feature = "code")]
    #[command(subcommand)]
    Sandbox(Sandbox),
    /// Serve environments, verifiers and the code sandbox over HTTP and WebSocket: OpenEnv's
    /// protocol, SandboxFusion's /run_code, /score; see docs/serve.md.
    Serve {
        /// Address to listen on; 0.0.0.0 exposes it to the network (set --token then).
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Port to listen on (0 picks a free one, printed at start).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Serve only this environment at the root paths, as an OpenEnv server does
        /// [default: every environment under /envs/<id>/].
        #[arg(long)]
        env: Option<String>,
        /// Override a field of the environment's config (repeatable; needs --env).
        #[arg(long = "set", value_name = "KEY=VALUE", requires = "env")]
        set: Vec<String>,
        /// WebSocket sessions open at once; past it a connection gets OpenEnv's CAPACITY_REACHED.
        #[arg(long, default_value_t = 32)]
        max_sessions: usize,
        /// Seconds a session may go without a message before it is closed and its environment freed.
        #[arg(long, default_value_t = 300)]
        idle_timeout_s: u64,
        /// Seconds each request may take, waiting for a worker included (504 past it).
        #[arg(long, default_value_t = 120)]
        request_timeout_s: u64,
        /// Largest request body and WebSocket message, in bytes.
        #[arg(long, default_value_t = 16 << 20)]
        max_body_bytes: usize,
        /// Blocking jobs (environment steps, sandbox runs, scoring) at once; 0 for one per core.
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// Memory cap in MiB of a /run_code program that asks for none.
        #[arg(long, default_value_t = 1024)]
        run_code_memory_mb: u64,
        /// Require `Authorization: Bearer <token>` on every request but /health
        /// [default: $RLVR_SERVE_TOKEN when set].
        #[arg(long)]
        token: Option<String>,
        /// Also serve this model behind OpenAI's API (/v1/models, /v1/chat/completions,
        /// /v1/completions): an HF directory, a .gguf file, or preset:NAME (tiny, micro, smollm2).
        #[arg(long)]
        model: Option<String>,
        /// The model's id in /v1/models and in requests [default: --model as given].
        #[arg(long, requires = "model")]
        served_model_name: Option<String>,
        /// Most sequences in one batched generate call.
        #[arg(long, default_value_t = 32, requires = "model")]
        max_batch: usize,
    },
}

#[cfg(feature = "code")]
#[derive(Subcommand)]
enum Sandbox {
    /// Run one snippet in a fresh, isolated interpreter and show what it did and what stopped it.
    /// Exits 0 whenever the snippet ran, whatever it did (its exit code and the limit that
    /// stopped it are in the output); 2 for bad input, 1 when the sandbox failed.
    Run {
        /// The code to run.
        #[arg(short = 'c', conflicts_with = "file", required_unless_present = "file")]
        code: Option<String>,
        /// A file holding the code.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print one JSON object (stdout, stderr, exit_code, limit, fuel_used, elapsed_ms, truncated).
        #[arg(long)]
        json: bool,
        /// Wall-clock deadline in milliseconds, sleeps included.
        #[arg(long)]
        deadline_ms: Option<u64>,
        /// Fuel (about one unit per wasm instruction).
        #[arg(long)]
        fuel: Option<u64>,
        /// Linear memory cap in MiB.
        #[arg(long)]
        memory_mb: Option<u64>,
        /// Bytes kept per output stream.
        #[arg(long)]
        output_bytes: Option<usize>,
    },
}

#[derive(Subcommand)]
enum Tasks {
    /// Causal-query tasks: network, query, difficulty, prompt and exact answer per line.
    #[cfg(feature = "causal")]
    Causal {
        /// Only this query level: associational, interventional or counterfactual [default: all].
        #[arg(long)]
        level: Option<rlvr_envs::causal::query::Level>,
        /// How many tasks (each on a distinct graph shape).
        #[arg(long, default_value_t = 1000)]
        n: u64,
        /// Generator seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Which split; train and test never share a graph shape.
        #[arg(long, default_value = "train", value_parser = ["train", "test"])]
        split: String,
        /// A TOML file of generator settings (the [env.config] of causal/query-v0).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output JSONL file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the CLI with the built-in plugins.
pub fn main() -> ExitCode {
    main_with(|_| {})
}

/// Runs the CLI with the built-in plugins plus those `extend` registers.
pub fn main_with(extend: impl FnOnce(&mut Registry)) -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let mut registry = crate::builtin_registry();
    extend(&mut registry);
    match dispatch(cli.command, &std::sync::Arc::new(registry)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            e.exit_code()
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
    // A plugin's panic is caught and recorded with its rollout; say so in one log line rather
    // than a backtrace on the terminal.
    std::panic::set_hook(Box::new(|info| tracing::warn!("panic: {info}")));
}

fn dispatch(command: Command, registry: &std::sync::Arc<Registry>) -> Result<()> {
    match command {
        Command::Serve {
            host,
            port,
            env,
            set,
            max_sessions,
            idle_timeout_s,
            request_timeout_s,
            max_body_bytes,
            workers,
            run_code_memory_mb,
            token,
            model,
            served_model_name,
            max_batch,
        } => {
            let env = match env {
                Some(id) => {
                    let mut config = rlvr_engine::Config::new();
                    for s in &set {
                        experiment::apply_override(&mut config, s)
                            .map_err(|e| Error::BadInput(format!("--set {s}: {e}")))?;
                    }
                    Some((id, config))
                }
                None => None,
            };
            let token = token.or_else(|| std::env::var("RLVR_SERVE_TOKEN").ok()).filter(|t| !t.is_empty());
            if !host.is_loopback() && token.is_none() {
                tracing::warn!(
                    "listening on {host} without --token: anyone who can reach it can run code on this machine"
                );
            }
            let options = rlvr_server::Options {
                env,
                max_sessions,
                idle_timeout: std::time::Duration::from_secs(idle_timeout_s),
                request_timeout: std::time::Duration::from_secs(request_timeout_s),
                max_body_bytes,
                token,
                workers: if workers == 0 { rlvr_engine::pool::available_cores() } else { workers },
                run_code_memory_mb,
                model: match model {
                    Some(m) => {
                        let id = served_model_name.unwrap_or_else(|| m.clone());
                        tracing::info!("loading the model {m}");
                        let factory: rlvr_server::ModelFactory =
                            Box::new(move || Ok(Box::new(served::Served(served::load(&m)?)) as _));
                        Some(rlvr_server::ModelServer::start(id, factory, max_batch).map_err(Error::BadInput)?)
                    }
                    None => None,
                },
            };
            rlvr_server::run(registry.clone(), options, std::net::SocketAddr::new(host, port)).map_err(|e| match e {
                rlvr_server::ServeError::Config(m) => Error::BadInput(m),
                rlvr_server::ServeError::Io(e) => Error::Failed(anyhow::Error::from(e).context("serving")),
            })
        }
        Command::Run { experiment, out, set, resume } => {
            let exp = Experiment::load(&experiment, &set)?;
            let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(&exp.run.name));
            let mut bar = Bar::new();
            let summary =
                experiment::run(registry, &exp, &dir, resume, &mut bar).map_err(|e| e.context(experiment.display()))?;
            bar.finish();
            let shown: Vec<String> = summary
                .last_metrics
                .iter()
                .filter(|(k, _)| k.starts_with("reward/mean") || k.starts_with("eval/"))
                .map(|(k, v)| format!("{k}={v:.4}"))
                .collect();
            println!("{}: {} iterations run; last: {}", summary.dir.display(), summary.iterations_run, shown.join(" "));
            // Say the result: accuracy before, after SFT and at the end, the best iteration, time.
            if let Ok(db) = store::RunStore::open_read_only(&summary.dir)
                && let Ok(metrics) = store::read_metrics(&db)
            {
                for line in report::headline(&metrics) {
                    println!("{line}");
                }
            }
            Ok(())
        }
        Command::Eval { experiment, split, n, pass_k, out, set } => {
            let exp = Experiment::load(&experiment, &set)?;
            let split = if split == "train" { rlvr_engine::Split::Train } else { rlvr_engine::Split::Test };
            let name = if split == rlvr_engine::Split::Train { "train" } else { "test" };
            let dir = out.unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-eval-{name}", exp.run.name)));
            let options = experiment::EvalOptions { split, n, pass_k };
            let what = format!("evaluating {} on the {name} split of {}", exp.policy.id, exp.env.id);
            let spinner = std::io::stderr().is_terminal().then(|| {
                let b = ProgressBar::new_spinner().with_message(what.clone());
                b.enable_steady_tick(std::time::Duration::from_millis(200));
                b
            });
            if spinner.is_none() {
                tracing::info!("{what}");
            }
            let summary = experiment::eval(registry, &exp, &dir, &options);
            if let Some(b) = spinner {
                b.finish_and_clear();
            }
            let summary = summary.map_err(|e| e.context(experiment.display()))?;
            print!("{}", eval_text(&summary, pass_k));
            Ok(())
        }
        Command::Merge { adapter: Some(adapter), base: Some(base), out, .. } => merge_adapter(&adapter, &base, &out),
        Command::Merge { models, base, method, drop, density, seed, out, .. } => {
            use rlvr_policies::weights::MergeMethod;
            let method = match method.as_str() {
                "dare" if (0.0..1.0).contains(&drop) => MergeMethod::Dare { drop, seed },
                "dare" => return Err(Error::BadInput(format!("--drop must lie in [0, 1), got {drop}"))),
                "ties" if density > 0.0 && density <= 1.0 => MergeMethod::Ties { density },
                "ties" => return Err(Error::BadInput(format!("--density must lie in (0, 1], got {density}"))),
                _ => MergeMethod::TaskArithmetic,
            };
            merge(&models, base.as_deref(), method, &out)
        }
        Command::Envs { id: None } => {
            for (kind, id, description) in registry.list() {
                println!("{:<12} {id:<28} {description}", kind.to_string());
            }
            Ok(())
        }
        Command::Envs { id: Some(wanted) } => {
            let found: Vec<_> = registry.list().into_iter().filter(|(_, id, _)| *id == wanted).collect();
            if found.is_empty() {
                return Err(Error::BadInput(format!("no plugin `{wanted}`; `rlvr envs` lists them")));
            }
            for (kind, id, description) in found {
                println!("{kind} {id}: {description}");
                let section = match kind {
                    rlvr_engine::Kind::Env => "env",
                    rlvr_engine::Kind::Reward => "reward",
                    rlvr_engine::Kind::Policy => "policy",
                };
                match registry.config_defaults(kind, id) {
                    Some(defaults) => {
                        println!("\n[{section}.config] keys, at their defaults:");
                        print!("{}", toml::to_string(defaults).map_err(anyhow::Error::from)?);
                    }
                    None => println!("(its config keys are in its docs page; no defaults recorded)"),
                }
            }
            Ok(())
        }
        Command::ScoreWorker { reward, set } => {
            let mut config = rlvr_engine::Config::new();
            for s in &set {
                experiment::apply_override(&mut config, s).map_err(|e| Error::BadInput(format!("--set {s}: {e}")))?;
            }
            let rubric = registry.make_reward(&reward, &config).map_err(|e| Error::BadInput(e.to_string()))?;
            score::score_worker(&rubric, std::io::stdin().lock(), std::io::stdout().lock())?;
            Ok(())
        }
        Command::Score { reward, input, output, set, workers, processes } => {
            let mut config = rlvr_engine::Config::new();
            for s in &set {
                experiment::apply_override(&mut config, s).map_err(|e| Error::BadInput(format!("--set {s}: {e}")))?;
            }
            let rubric = registry.make_reward(&reward, &config).map_err(|e| Error::BadInput(e.to_string()))?;
            let file = std::fs::File::open(&input)
                .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", input.display())))?;
            let workers = if workers == 0 { rlvr_engine::pool::available_cores() } else { workers };
            // The reward is built here first, so a bad id or config is refused before any worker starts.
            let mut worker_args = vec!["--reward".to_string(), reward.clone()];
            for s in &set {
                worker_args.extend(["--set".to_string(), s.clone()]);
            }
            let run = |out: &mut dyn std::io::Write| -> Result<score::ScoreCounts> {
                let input = BufReader::new(file);
                Ok(if processes > 0 {
                    score::score_jsonl_processes(&worker_args, input, out, processes)?
                } else {
                    score::score_jsonl(&rubric, input, out, workers)?
                })
            };
            let counts = match output {
                Some(path) => {
                    // An output path that cannot be written is the caller's mistake, like a bad input.
                    let f = std::fs::File::create(&path)
                        .map_err(|e| Error::BadInput(format!("cannot write {}: {e}", path.display())))?;
                    run(&mut BufWriter::new(f))?
                }
                None => run(&mut std::io::stdout().lock())?,
            };
            tracing::info!(lines = counts.lines, errors = counts.errors, "scored");
            Ok(())
        }
        Command::Tasks(tasks) => write_tasks(tasks),
        Command::BenchRewards { input, set, rewards, threads, min_time_ms, examples, json, chart } => {
            use rlvr_rewards::bench;
            let text = match &input {
                Some(p) => std::fs::read_to_string(p)
                    .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", p.display())))?,
                None if set == "math-verify" => bench::MATH_VERIFY.to_string(),
                None => bench::BUNDLED.to_string(),
            };
            let origin = input.as_ref().map_or(format!("the {set} set"), |p| p.display().to_string());
            let rows = bench::load_rows(&text).map_err(|e| Error::BadInput(format!("{origin}: {e}")))?;
            let ids = if !rewards.is_empty() {
                rewards
            } else if input.is_none() && set == "math-verify" {
                vec!["math/equivalence".to_string()]
            } else {
                ["math/equivalence", "answer/numeric", "answer/exact", "answer/choice"].map(String::from).to_vec()
            };
            let opts =
                bench::BenchOptions { threads, min_time: std::time::Duration::from_millis(min_time_ms), examples };
            let report = bench::run(registry, &ids, &rows, &opts).map_err(|e| Error::BadInput(e.to_string()))?;
            if json {
                println!("{}", bench::to_json(&report));
            } else {
                print!("{}", bench::render_table(&report));
            }
            if let Some(path) = chart {
                report::bench_chart(&path, &report)?;
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
        #[cfg(feature = "code")]
        Command::Sandbox(Sandbox::Run { code, file, json, deadline_ms, fuel, memory_mb, output_bytes }) => {
            use rlvr_envs::code::run;
            let req = run::RunRequest { code, file, deadline_ms, fuel, memory_mb, output_bytes };
            let e = run::run(&req).map_err(|e| match e {
                run::RunError::Sandbox(e) => Error::Failed(e.into()),
                other => Error::BadInput(other.to_string()),
            })?;
            if json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println!("{}", run::human(&e));
            }
            Ok(())
        }
        Command::Generate { model, prompt, chat, max_new_tokens, temperature, seed, json } => {
            use rlvr_policies::lm::{GenerateArgs, LmError, generate_cli};
            let args = GenerateArgs { model, prompt, chat, max_new_tokens, temperature, seed };
            let out = generate_cli(&args).map_err(|e| match e {
                // A checkpoint that is missing or malformed, or bad settings, are the user's input.
                LmError::Weights(_) | LmError::Config(_) => Error::BadInput(e.to_string()),
                other => Error::Failed(other.into()),
            })?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("{}", out.text);
                tracing::info!("{} tokens, {:.1} tokens/s", out.tokens.len(), out.tokens_per_s);
            }
            Ok(())
        }
        Command::Report { run_dir } => {
            let r = report::report(&run_dir)?;
            print!("{}", r.table);
            for p in &r.plots {
                println!("wrote {}", p.display());
            }
            Ok(())
        }
    }
}

fn write_tasks(tasks: Tasks) -> Result<()> {
    match tasks {
        #[cfg(feature = "causal")]
        Tasks::Causal { level, n, seed, split, config, out } => {
            use rlvr_engine::Split;
            let cfg: rlvr_envs::causal::CausalConfig = match &config {
                None => Default::default(),
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
                    let table: rlvr_engine::Config =
                        toml::from_str(&text).map_err(|e| Error::BadInput(format!("{}: {e}", path.display())))?;
                    rlvr_engine::parse_config(&table)
                        .map_err(|e| Error::BadInput(format!("{}: {e}", path.display())))?
                }
            };
            let split = if split == "test" { Split::Test } else { Split::Train };
            // Write to a temporary name and rename, so a killed export leaves no half file.
            let tmp = out.with_extension("jsonl.tmp");
            let file = std::fs::File::create(&tmp)
                .map_err(|e| Error::BadInput(format!("cannot write {}: {e}", tmp.display())))?;
            let mut w = BufWriter::new(file);
            let summary = rlvr_envs::causal::export::export(cfg, seed, split, level, n, &mut w)
                .map_err(|e| Error::BadInput(e.to_string()))?;
            drop(w);
            std::fs::rename(&tmp, &out).with_context(|| format!("writing {}", out.display()))?;
            eprint!("{}", summary.table());
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
    }
}

/// A progress bar on a terminal; a log line per iteration elsewhere (CI logs, pipes).
/// What `rlvr eval` prints: the headline figures, each reward term, failures, tokens, time.
fn eval_text(summary: &experiment::EvalSummary, pass_k: u32) -> String {
    let m = &summary.metrics;
    let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    let mut out =
        format!("{}: {} tasks\naccuracy (greedy)  {:.4}\n", summary.dir.display(), summary.tasks, get("eval/accuracy"));
    if pass_k > 1 {
        out.push_str(&format!(
            "pass@{pass_k}             {:.4}\nsampled accuracy   {:.4}\n",
            get(&format!("eval/pass@{pass_k}")),
            get("eval/sampled_accuracy")
        ));
    }
    out.push_str(&format!("reward mean        {:.4}\n", get("eval/reward_mean")));
    for (k, v) in m {
        if let Some(term) = k.strip_prefix("eval/reward/")
            && term != "mean"
            && term != "std"
        {
            out.push_str(&format!("  {term:<17} {v:.4}\n"));
        }
    }
    out.push_str(&format!(
        "failed rollouts    {}{}\nverifier errors    {}\ntruncated          {}\npolicy tokens      {}\ntime               {:.1} s\n",
        get("eval/failed"),
        if pass_k > 1 { format!(" (+{} sampled)", get("eval/sampled_failed")) } else { String::new() },
        get("eval/rollout/verifier_errors"),
        get("eval/rollout/truncated"),
        get("eval/rollout/policy_tokens"),
        get("time/eval_s"),
    ));
    out
}

struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    fn new() -> Self {
        Self { bar: None }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn start(&mut self, first: u64, total: u64) {
        if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total).with_position(first);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} iterations  {msg}  [{elapsed_precise} < {eta}]")
                    .expect("valid template"),
            );
            self.bar = Some(b);
        }
    }

    fn iteration(&mut self, iteration: u64, metrics: &BTreeMap<String, f64>) {
        let get = |k: &str| metrics.get(k).copied().unwrap_or(f64::NAN);
        let mut msg = format!("reward {:.3}", get("reward/mean"));
        if let Some(acc) = metrics.get("eval/accuracy") {
            msg.push_str(&format!("  eval acc {acc:.3}"));
        }
        match &self.bar {
            Some(b) => {
                b.set_message(msg);
                b.inc(1);
            }
            None => tracing::info!("iteration {iteration}: {msg}  failed {}", get("rollout/failed")),
        }
    }

    fn sft_step(&mut self, step: u64, total: u64, loss: f64) {
        let msg = format!("SFT warm start: step {}/{total}, loss {loss:.4}", step + 1);
        match &self.bar {
            Some(b) => b.set_message(msg),
            None if (step + 1).is_multiple_of(10) || step + 1 == total => tracing::info!("{msg}"),
            None => {}
        }
    }
}

/// `rlvr merge`: weight arithmetic over checkpoints of one architecture.
/// Cosine similarity of two models' weight matrices (1 for equal directions), over the
/// matrices they share: vectors (norm scales start at 1 in every model) would make unrelated
/// models look alike. 1 when they share none, so that shape errors are left to the merge.
fn similarity(a: &rlvr_policies::weights::Weights, b: &rlvr_policies::weights::Weights) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (name, x) in a.0.iter().filter(|(_, x)| x.shape.len() >= 2) {
        if let Some(y) = b.0.get(name).filter(|y| y.shape == x.shape) {
            for (p, q) in x.data.iter().zip(&y.data) {
                let (p, q) = (f64::from(*p), f64::from(*q));
                dot += p * q;
                na += p * p;
                nb += q * q;
            }
        }
    }
    if na == 0.0 || nb == 0.0 { 1.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

/// `rlvr merge --adapter A --base B --out O`: B with A merged in, written as a checkpoint.
fn merge_adapter(adapter: &std::path::Path, base: &std::path::Path, out: &std::path::Path) -> Result<()> {
    use rlvr_policies::lm::{device, load_checkpoint, save_checkpoint};
    use rlvr_policies::model::Model;
    let dev = device("flex").map_err(|e| anyhow::anyhow!(e))?;
    let (model, tokenizer, template) =
        load_checkpoint(base, &dev).map_err(|e| Error::BadInput(format!("{}: {e}", base.display())))?;
    let mut weights = model.to_weights()?;
    let n = rlvr_policies::algo::lora::merge_adapter(&mut weights, adapter)
        .map_err(|e| Error::BadInput(format!("{}: {e}", adapter.display())))?;
    let merged = Model::from_weights(model.config(), weights, &dev)?;
    save_checkpoint(out, &merged, &tokenizer, &template)?;
    eprintln!("merged the adapter into {n} projections of {}: {}", base.display(), out.display());
    Ok(())
}

fn merge(
    models: &[String],
    base: Option<&std::path::Path>,
    method: rlvr_policies::weights::MergeMethod,
    out: &std::path::Path,
) -> Result<()> {
    use rlvr_policies::lm::{device, load_checkpoint, save_checkpoint};
    use rlvr_policies::model::Model;
    use rlvr_policies::weights::Weights;
    let dev = device("flex").map_err(|e| anyhow::anyhow!(e))?;
    // A run's checkpoint folder (`checkpoints/it-000003`) holds the policy in `policy/`, beside
    // the trainer's state: either folder is accepted.
    let load = |p: &std::path::Path| {
        let policy = p.join("policy");
        let p = if !p.join("config.json").exists() && policy.is_dir() { policy.as_path() } else { p };
        load_checkpoint(p, &dev).map_err(|e| Error::BadInput(format!("{}: {e}", p.display())))
    };
    let n = models.len() as f64;
    let mut parts = Vec::new();
    let mut first = None;
    for spec in models {
        // DIR:WEIGHT when the part after the last ':' is a number; otherwise the whole is a path.
        let (path, weight) = match spec.rsplit_once(':').map(|(p, w)| (p, w.parse::<f64>())) {
            Some((p, Ok(w))) => (p, w),
            _ => (spec.as_str(), if base.is_some() { 1.0 } else { 1.0 / n }),
        };
        let (model, tokenizer, template) = load(std::path::Path::new(path))?;
        parts.push((model.to_weights()?, weight));
        first.get_or_insert((model.config().clone(), tokenizer, template));
    }
    let (config, tokenizer, template) = first.ok_or_else(|| Error::BadInput("no models to merge".into()))?;
    let base_weights = match base {
        Some(b) => Some(load(b)?.0.to_weights()?),
        None => None,
    };
    // Averaging models that do not share a base gives noise, not a soup: fine-tunes of one base
    // keep nearly parallel weights, independent models do not.
    let reference = base_weights.as_ref().or(parts.first().map(|p| &p.0));
    if let Some(r) = reference {
        for (spec, (w, _)) in models.iter().zip(&parts) {
            let sim = similarity(r, w);
            if sim < 0.5 {
                eprintln!(
                    "warning: {spec} looks unrelated to the {} (cosine similarity {sim:.2} of their weights): \
                     merging models that do not share a base gives noise",
                    if base.is_some() { "base" } else { "first model" }
                );
            }
        }
    }
    let merged = match &base_weights {
        Some(b) => Weights::merge_task_vectors(b, &parts, method),
        None => Weights::combine(None, &parts),
    }
    .map_err(|e| Error::BadInput(e.to_string()))?;
    let model = Model::from_weights(&config, merged, &dev).map_err(|e| Error::BadInput(e.to_string()))?;
    save_checkpoint(out, &model, &tokenizer, &template)?;
    println!(
        "{}: merged {} model(s){}",
        out.display(),
        parts.len(),
        if base.is_some() { " onto the base" } else { "" }
    );
    Ok(())
}
