"""Side by side: rlvr's burn policy (flex CPU backend) vs PyTorch `transformers`, same model shape.

How to run (from the repository root; CPU only; both sides get the same thread count):
    python3 -m pip install torch==2.15.0 transformers==5.25.0   # the pins of python/requirements-test.txt
    python3 benches/policies_torch.py                 # threads = all cores
    python3 benches/policies_torch.py --threads 2 --rounds 2

It builds `benches/policies.rs` (`cargo bench --no-default-features --bench policies --no-run`)
and measures, for the `tiny` preset's shape (Llama, hidden 256, 4 layers, 4 query heads on 2 kv
heads, MLP 768, vocab 260, tied embeddings, random N(0, 0.02) weights, fp32):
  - generation tokens/s at batch 1 and 16: a 34-token prompt, 128 new tokens, KV cache, sampling
    at temperature 1 from the full distribution, no stop token (ours: `generate`; theirs:
    `model.generate(do_sample=True, use_cache=True)` with no end-of-sequence id, so every row
    runs to 128 tokens);
  - forward+backward tokens/s of the summed next-token log-probs of 4 x 256 tokens;
  - each part's peak resident memory (Linux `VmHWM`), every part of every side in its own
    process, so one part's allocations do not show in another's peak.
`--model DIR` (an HF directory, loaded by both sides: ours through our loader, theirs with
`AutoModelForCausalLM.from_pretrained` in fp32) measures that checkpoint instead of `tiny`'s
shape, with the same prompt and sequences as token ids; `--new N` sets the new tokens (default
128) and `--parts` picks parts. SmolLM2-135M-Instruct as an HF directory (the GGUF file
dequantized to f32, the weights our side decodes with):
    cargo bench --no-default-features --bench grpo -- --model preset:smollm2 --export DIR
Every measurement is the best of three after one warm-up run of the same shape. With `--rounds`
the two sides alternate that many times per part and the best of each side is kept, so a burst
of load from elsewhere hurts neither side alone. Prints ours / theirs (above 1: we are faster;
for memory, above 1: we use more).
"""

import argparse
import json
import os
import subprocess
import time

from torch_peer import build_bench, peak_rss_mib, run_torch_part

PROMPT = list(b"Question: what is 17 + 25? Answer:")
PARTS = ("generate1", "generate16", "train")


def torch_part(part, threads, model_dir, new):
    """Runs one part on the PyTorch side; prints one JSON line."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(threads)
    cfg = LlamaConfig(
        vocab_size=260, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=4096, tie_word_embeddings=True, initializer_range=0.02,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    torch.manual_seed(0)
    if model_dir:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    else:
        model = LlamaForCausalLM(cfg)
    if part.startswith("generate"):
        model.eval()
        batch = int(part[len("generate"):])
        ids = torch.tensor([PROMPT] * batch)
        attention = torch.ones_like(ids)

        def run():
            return model.generate(
                ids, attention_mask=attention, max_new_tokens=new, do_sample=True, temperature=1.0,
                top_k=0, top_p=1.0, use_cache=True, eos_token_id=None, pad_token_id=0,
            )

        with torch.no_grad():
            run()
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                res = run()
                best = min(best, time.perf_counter() - t)
        tokens = (res.shape[1] - ids.shape[1]) * batch
    else:
        model.train()
        seqs = torch.tensor([[(i * 7 + r * 13) % 256 for i in range(256)] for r in range(4)])
        best = float("inf")
        for i in range(4):
            t = time.perf_counter()
            logits = model(seqs).logits[:, :-1]
            lp = torch.log_softmax(logits, -1).gather(2, seqs[:, 1:, None]).squeeze(2)
            (-lp.sum()).backward()
            model.zero_grad(set_to_none=True)
            if i > 0:
                best = min(best, time.perf_counter() - t)
        tokens = seqs.numel()
    print(json.dumps({"tokens": tokens, "seconds": best, "tokens_per_s": tokens / best,
                      "peak_rss_mib": peak_rss_mib(), "torch": torch.__version__}))


def run_ours(exe, part, threads, extra):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    text = subprocess.run([exe, part, *extra], env=env, check=True, capture_output=True, text=True).stdout
    line = text.strip().splitlines()[-1]
    # "... 1234.5 tokens/s (2048 tokens in 1.234 s); peak rss 12.3 MiB"
    rate = float(line.split(" tokens/s")[0].split()[-1])
    peak = float(line.split("peak rss ")[1].split()[0])
    return {"tokens_per_s": rate, "peak_rss_mib": peak, "line": line}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--exe", help="our bench executable, already built (default: build it)")
    ap.add_argument("--rounds", type=int, default=1, help="alternations of the two sides per part")
    ap.add_argument("--model", help="an HF directory both sides load (default: tiny's shape)")
    ap.add_argument("--new", type=int, default=128, help="new tokens per generated row")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts")
    ap.add_argument("--torch-part", choices=PARTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_part:
        torch_part(args.torch_part, args.threads, args.model, args.new)
        return
    extra = ["--new", str(args.new)] + (["--model", args.model] if args.model else [])
    exe = args.exe or build_bench("policies")
    names = {"generate1": "generate batch=1", "generate16": "generate batch=16",
             "train": "forward+backward"}
    rows = []
    version = "?"
    for part in args.parts.split(","):
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(run_ours(exe, part, args.threads, extra))
            theirs.append(run_torch_part(__file__, "--torch-part", part, args.threads, extra))
        version = theirs[0]["torch"]
        o = max(ours, key=lambda r: r["tokens_per_s"])
        t = max(theirs, key=lambda r: r["tokens_per_s"])
        o_mem = min(r["peak_rss_mib"] for r in ours)
        t_mem = min(r["peak_rss_mib"] for r in theirs)
        rows.append((names[part], o["tokens_per_s"], t["tokens_per_s"], o_mem, t_mem))
    print(f"{args.model or 'tiny preset'}, {args.new} new tokens, {args.threads} threads, torch {version}, best of {args.rounds} round(s) "
          f"of best-of-3; load average {os.getloadavg()[0]:.2f}")
    print(f"{'':>18} | {'rlvr tok/s':>10} | {'torch tok/s':>11} | {'ratio':>5} | "
          f"{'rlvr peak MiB':>13} | {'torch peak MiB':>14} | {'ratio':>5}")
    for name, o, t, om, tm in rows:
        print(f"{name:>18} | {o:>10.1f} | {t:>11.1f} | {o / t:>5.2f} | "
              f"{om:>13.1f} | {tm:>14.1f} | {om / tm:>5.2f}")


if __name__ == "__main__":
    main()
