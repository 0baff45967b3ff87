"""Side by side: one GRPO iteration in rlvr (burn over libtorch) and in TRL's `GRPOTrainer`, on
the same checkpoint, device and settings. `scripts/gpu-check.sh` runs it on an NVIDIA GPU;
`--device cpu` runs the same comparison on the CPU (small, to check the script itself).

    python3 benches/grpo_trl.py --exe PATH --work DIR [--device cuda] [--rounds N]

`--exe` is the `grpo` bench executable (`benches/grpo.rs`, built with `--features tch` for a
libtorch device; `--ours-device` sets `RLVR_BENCH_DEVICE`, default `tch` on cuda, `tch-cpu` on
cpu). Two checkpoints, both written under `--work` and loaded by both sides:

  smollm2   SmolLM2-135M-Instruct, the GGUF file dequantized to f32 and exported by our loader
            (`grpo --model GGUF --export DIR`), so both sides hold the same weights;
  qwen-0.5b Qwen2.5-0.5B's layers (hidden 896, 24 layers, MLP 4864, 14 query heads on 2 kv heads,
            QKV bias) with SmolLM2's 49,152-token vocabulary so both sides share one tokenizer,
            tied embeddings: 0.40B parameters, random N(0, 0.02) weights made by transformers
            (seed 0).

The iteration, on both sides: `--rows` rows (default 128) in groups of 8 samples of one prompt
(`--prompt`, tokenized by the checkpoint's tokenizer, no chat template), up to `--new` new tokens
(default 128) at temperature 1 with no top-k/top-p, stopping at the end-of-turn token; rewards
alternate within each group (1, 0, 1, 0, ...); GRPO advantages (r - mean) / (std + eps); one
optimiser step over the whole batch, whose log-probs are their own old ones (TRL with one
iteration and one step per generation skips the extra pass, as we do); clipped surrogate with
eps 0.2 / 0.28, token mean over the batch (TRL's `loss_type="dapo"`), no KL term (beta 0), no
reference model, global gradient clipping at 1.0, AdamW lr 1e-4 at a constant rate.

Timing: one warm-up iteration then two timed ones, the best of the two (the first pays for kernel
selection and the caching allocator's growth). Ours times `generate` and `Trainer::update`
separately; for TRL the generate time is its own profiling timer around `model.generate`, and
the update is the rest of the step (`on_step_begin` to `on_step_end`), which also holds its
reward call and advantage arithmetic (microseconds here). Tokens: new tokens sampled, counted to
the first end token on both sides. Memory on a GPU: the process's peak GPU memory in
`nvidia-smi` (CUDA context included on both sides), polled every 0.1 s; on the CPU the peak
resident set.

Precision: ours is f32 (burn has no autocast: a device-wide bf16 would hold the weights and
AdamW's moments in bf16 too). TRL runs twice, in f32 and with `bf16=True` (autocast over f32
master weights, as its users run it); the table has both ratios.

`--rounds` alternates the two sides that many times, each in a fresh process, and keeps each
side's best rates. Prints one Markdown table and writes it with the raw runs to `--out`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

from torch_peer import peak_rss_mib

QWEN_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
}
GROUP = 8


def make_qwen(out, tokenizer_dir):
    """Writes a random Qwen2.5-0.5B-layered model with SmolLM2's tokenizer into `out`."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        max_position_embeddings=4096,
        initializer_range=0.02,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.eos_token_id,
        **QWEN_05B,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).float()
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(out, name))
    n = sum(p.numel() for p in model.parameters())
    print(f"grpo_trl: wrote {out} ({n / 1e9:.2f}B parameters)", file=sys.stderr)


def trl_part(args):
    """Runs TRL's side in this process; prints one JSON line."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.extras import profiling

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    timers = {}
    original = profiling.ProfilingContext._log_metrics

    def record(self, duration):
        timers.setdefault(self.name, []).append(duration)
        original(self, duration)

    profiling.ProfilingContext._log_metrics = record

    steps, lengths = [], []

    class Clock(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.t = time.perf_counter()

        def on_step_end(self, *_, **__):
            steps.append(time.perf_counter() - self.t)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    tok = AutoTokenizer.from_pretrained(args.trl_part)
    model = AutoModelForCausalLM.from_pretrained(args.trl_part, dtype=torch.float32)
    prompts = args.rows // GROUP
    data = Dataset.from_dict({"prompt": [args.prompt] * (prompts * 3)})

    def alternate(completions, **_):
        return [1.0 if i % 2 == 0 else 0.0 for i in range(len(completions))]

    config = GRPOConfig(
        output_dir=os.path.join(args.work, "trl-out"),
        report_to=[],
        save_strategy="no",
        per_device_train_batch_size=args.rows,
        gradient_accumulation_steps=1,
        num_generations=GROUP,
        steps_per_generation=1,
        max_completion_length=args.new,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        beta=0.0,
        num_iterations=1,
        epsilon=0.2,
        epsilon_high=0.28,
        loss_type="dapo",
        scale_rewards="group",
        mask_truncated_completions=False,
        max_steps=3,
        logging_steps=1,
        bf16=args.dtype == "bf16",
        use_cpu=args.device == "cpu",
        shuffle_dataset=False,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        gradient_checkpointing=False,
    )
    trainer = GRPOTrainer(
        model=model, reward_funcs=alternate, args=config, train_dataset=data, processing_class=tok, callbacks=[Clock()]
    )
    trainer.train()
    gens = timers.get("GRPOTrainer.transformers.generate", [])
    if len(steps) != 3 or len(gens) != 3 or len(lengths) != 3:
        sys.exit(
            f"grpo_trl: expected 3 steps, generations and logs; got {len(steps)} steps, "
            f"{len(gens)} generations, {len(lengths)} length logs"
        )
    prompt_tokens = len(tok(args.prompt)["input_ids"])
    best = {}
    for step, gen, mean in list(zip(steps, gens, lengths))[1:]:
        sampled = round(mean * args.rows)
        update_s = step - gen
        tokens = args.rows * prompt_tokens + sampled
        if not best or sampled / gen > best["new_tokens"] / best["generate_s"]:
            best.update(new_tokens=sampled, generate_s=gen)
        if "update_s" not in best or tokens / update_s > best["update_tokens"] / best["update_s"]:
            best.update(update_tokens=tokens, update_s=update_s)
        if "iteration_s" not in best or sampled / step > best["iteration_tokens"] / best["iteration_s"]:
            best.update(iteration_tokens=sampled, iteration_s=step)
    best.update(peak_rss_mib=peak_rss_mib(), torch=torch.__version__, prompt_tokens=prompt_tokens)
    if args.device == "cuda":
        best["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(best))


def run(cmd, env, gpu):
    """Runs `cmd`, returns (its last stdout line as JSON, its peak GPU MiB or None)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    peak = [0.0]
    done = threading.Event()

    def poll():
        while not done.wait(0.1):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                    check=False,
                    capture_output=True,
                    text=True,
                ).stdout
            except OSError:
                return
            for line in out.splitlines():
                pid, _, mib = line.partition(",")
                if pid.strip() == str(proc.pid) and mib.strip().isdigit():
                    peak[0] = max(peak[0], float(mib))

    poller = threading.Thread(target=poll, daemon=True)
    if gpu:
        poller.start()
    stdout, _ = proc.communicate()
    done.set()
    if proc.returncode != 0:
        sys.exit(f"grpo_trl: {' '.join(cmd[:3])} ... failed with status {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result, (peak[0] if gpu else None)


def rates(r):
    return (
        r["new_tokens"] / r["generate_s"],
        r["update_tokens"] / r["update_s"],
        r["iteration_tokens"] / r["iteration_s"],
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exe", help="the grpo bench executable")
    p.add_argument(
        "--smollm2", default="preset:smollm2", help="SmolLM2-135M-Instruct's GGUF file (default: the one rlvr fetches)"
    )
    p.add_argument("--work", required=True, help="directory for the checkpoints and TRL's output")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--ours-device", help="RLVR_BENCH_DEVICE for ours (default tch / tch-cpu)")
    p.add_argument("--models", default="smollm2,qwen-0.5b")
    p.add_argument("--rows", type=int, default=128)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--prompt", default="Once upon a time")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", help="write the table and the raw runs here (JSON)")
    p.add_argument("--trl-part", help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="f32", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.trl_part:
        return trl_part(args)
    if not args.exe:
        p.error("--exe is needed")
    gpu = args.device == "cuda"
    os.makedirs(args.work, exist_ok=True)
    env = dict(
        os.environ,
        RAYON_NUM_THREADS=str(args.threads),
        OMP_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
        RLVR_BENCH_DEVICE=args.ours_device or ("tch" if gpu else "tch-cpu"),
    )
    smol = os.path.join(args.work, "smollm2")
    if not os.path.exists(os.path.join(smol, "model.safetensors")):
        subprocess.run(
            [args.exe, "--model", args.smollm2, "--export", smol], env=dict(env, RLVR_BENCH_DEVICE="flex"), check=True
        )
    dirs = {"smollm2": smol, "qwen-0.5b": os.path.join(args.work, "qwen-0.5b")}
    models = args.models.split(",")
    if "qwen-0.5b" in models and not os.path.exists(os.path.join(dirs["qwen-0.5b"], "config.json")):
        make_qwen(dirs["qwen-0.5b"], smol)
    sizes = ["--rows", str(args.rows), "--new", str(args.new), "--prompt", args.prompt]
    me = os.path.abspath(__file__)
    sides = [("rlvr", None), ("TRL f32", "f32")] + ([("TRL bf16", "bf16")] if gpu else [])
    runs = {m: {s: [] for s, _ in sides} for m in models}
    load = os.getloadavg()
    for rnd in range(args.rounds):
        for m in models:
            for side, dtype in sides if rnd % 2 == 0 else sides[::-1]:
                if dtype is None:
                    cmd = [args.exe, "--model", dirs[m], *sizes]
                else:
                    cmd = [
                        sys.executable,
                        me,
                        "--trl-part",
                        dirs[m],
                        "--work",
                        args.work,
                        "--device",
                        args.device,
                        "--dtype",
                        dtype,
                        "--threads",
                        str(args.threads),
                        *sizes,
                    ]
                result, gpu_mib = run(cmd, env, gpu)
                result["peak_mib"] = gpu_mib if gpu else result["peak_rss_mib"]
                runs[m][side].append(result)
                g, u, i = rates(result)
                print(
                    f"grpo_trl: round {rnd + 1} {m} {side}: generate {g:.0f} tok/s, update "
                    f"{u:.0f} tok/s, iteration {i:.0f} sampled tok/s, peak {result['peak_mib']:.0f}"
                    " MiB",
                    file=sys.stderr,
                )
    what = "GPU MiB" if gpu else "RSS MiB"
    header = (
        f"| model | side | generate tok/s | update tok/s | iteration sampled tok/s | peak {what} "
        "| rlvr / side (generate, update, iteration; memory) |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---|"]
    for m in models:
        best = {}
        for side, _ in sides:
            rs = runs[m][side]
            best[side] = ([max(rates(r)[k] for r in rs) for k in range(3)], min(r["peak_mib"] for r in rs))
        ours, ours_mem = best["rlvr"]
        for side, _ in sides:
            (g, u, i), mem = best[side]
            ratio = (
                ""
                if side == "rlvr"
                else (
                    f"{ours[0] / g:.2f}x, {ours[1] / u:.2f}x, {ours[2] / i:.2f}x; "
                    # nvidia-smi reports no per-process memory in some containers ("[N/A]").
                    + (f"{ours_mem / mem:.2f}x" if ours_mem and mem else "memory n/a")
                )
            )
            lines.append(f"| {m} | {side} | {g:.0f} | {u:.0f} | {i:.0f} | {mem:.0f} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    print(
        f"(load average before: {load[0]:.2f}; after: {os.getloadavg()[0]:.2f}; rows {args.rows}, "
        f"up to {args.new} new tokens, {args.rounds} round(s), device {args.device})"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {"table": table, "runs": runs, "load_before": load, "load_after": os.getloadavg(), "args": vars(args)},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
