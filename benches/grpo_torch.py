"""Side by side: one GRPO iteration's model work in rlvr (burn, flex CPU) and in PyTorch.

How to run (from the repository root; CPU only; both sides get the same thread count):
    python3 -m pip install torch==2.15.0 transformers==5.25.0   # the pins of python/requirements-test.txt
    python3 benches/grpo_torch.py                    # threads = all cores
    python3 benches/grpo_torch.py --threads 2 --rounds 2

It builds and runs `benches/grpo.rs` (`cargo bench --no-default-features --bench grpo`) and
does the same work with `transformers` and `torch`, for the `micro` (hidden 128, 2 layers, MLP
384) and `tiny` (hidden 256, 4 layers, MLP 768) presets' shapes (Llama, 4 query heads on 2 kv
heads, vocab 260, tied embeddings, random N(0, 0.02) weights, fp32):

  generate: 16 prompts x 8 samples = 128 rows of the same 33-token prompt, up to 24 new tokens
    each, KV cache, sampling at temperature 1 from the full distribution, stopping a row at
    either of our byte tokenizer's stop tokens (`<|endoftext|>` 256, `<|im_end|>` 258).
    Theirs is one `model.generate` call over the 128 rows (finished rows stay in the batch, as
    transformers does); ours drops finished rows. Both count the tokens actually sampled.
  update (ours: `Trainer::update` with the quickstart's settings; theirs: the same steps written
    out, as in policies/src/algo/mod.rs):
    1. rewards alternate within each group (1, 0, 1, 0, ...); GRPO advantages
       (r - mean) / (sample std + 1e-6), the same for every token of a sample;
    2. one forward with grad over the 128 right-padded rows (one minibatch, one epoch: our
       defaults), with the per-token entropy our forward also returns; one step over the whole
       batch, so the "old" log-probs are that forward's own, detached (no separate pass);
    3. the clipped surrogate max(-A r, -A clip(r, 1 - 0.2, 1 + 0.28)) with
       r = exp(logp - old), token-mean over the sampled tokens; KL coefficient 0 (our default),
       so no reference model; the metrics we log (policy loss, clip fraction, entropy, k3 KL to
       the old policy);
    4. backward, global-norm gradient clipping at 1.0, AdamW (lr 1e-4, betas 0.9/0.999,
       eps 1e-8, weight decay 0).
Each part is the best of three (the update's three runs are three real steps, as ours). With
`--rounds` the two sides alternate that many times (each side and preset in its own process)
and the best of each is kept. Prints each part's ours / theirs in tokens/s (above 1: faster),
and the whole iteration in sampled tokens/s.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from torch_peer import build_bench, peak_rss_mib, run_torch_part

PRESETS = {
    "micro": {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2},
    "tiny": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4},
}
PROMPT = [40 + i % 20 for i in range(33)]
GROUPS, GROUP_SIZE, MAX_NEW = 16, 8, 24
STOP = (256, 258)
PAD = 259
CLIP_LOW, CLIP_HIGH, LR, GRAD_CLIP, STD_EPS = 0.2, 0.28, 1e-4, 1.0, 1e-6


def advantages(rewards):
    """GRPO's group-relative advantages as policies/src/algo/grpo.rs computes them."""
    n = len(rewards)
    mean = sum(rewards) / n
    std = (sum((r - mean) ** 2 for r in rewards) / (n - 1)) ** 0.5
    return [(r - mean) / (std + STD_EPS) for r in rewards]


def torch_preset(name, threads):
    """Runs one preset's iteration on the PyTorch side; prints one JSON line."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(threads)
    cfg = LlamaConfig(
        vocab_size=260, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
        rope_theta=10000.0, max_position_embeddings=4096, tie_word_embeddings=True,
        initializer_range=0.02, bos_token_id=None, eos_token_id=list(STOP), pad_token_id=PAD,
        **PRESETS[name],
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    rows = GROUPS * GROUP_SIZE
    ids = torch.tensor([PROMPT] * rows)
    attention = torch.ones_like(ids)

    def generate():
        model.eval()
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=attention, max_new_tokens=MAX_NEW, do_sample=True,
                temperature=1.0, top_k=0, top_p=1.0, use_cache=True, eos_token_id=list(STOP),
                pad_token_id=PAD,
            )
        samples = []
        for row in out[:, len(PROMPT):].tolist():
            toks = []
            for t in row:
                toks.append(t)
                if t in STOP:
                    break
            samples.append(toks)
        return samples

    def forward(seqs, width):
        """Per predicted token: log-prob at temperature 1 and the (detached) entropy, as
        policies/src/generate.rs `forward`; `seqs` right-padded to `width` tokens."""
        logits = model(seqs).logits[:, : width - 1]
        logp_all = torch.log_softmax(logits, -1)
        logp = logp_all.gather(2, seqs[:, 1:, None]).squeeze(2)
        d = logp_all.detach()
        entropy = -(d.exp() * d).sum(-1)
        return logp, entropy

    def update(samples):
        rewards = [1.0 if i % 2 == 0 else 0.0 for i in range(GROUP_SIZE)] * GROUPS
        adv_rows = []
        for g in range(GROUPS):
            adv_rows += advantages(rewards[g * GROUP_SIZE:(g + 1) * GROUP_SIZE])
        seqs = [PROMPT + s for s in samples]
        width = max(len(s) for s in seqs)
        tokens = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
        mask = torch.zeros(rows, width - 1)
        for i, s in enumerate(seqs):
            mask[i, len(PROMPT) - 1:len(s) - 1] = 1.0
        adv = mask * torch.tensor(adv_rows)[:, None]
        # One step over the whole batch: the old log-probs (the ratio's denominator) are this
        # forward's own, detached, as ours (and TRL's GRPO with one iteration) take them.
        model.train()
        logp, entropy = forward(tokens, width)
        old = logp.detach()
        ratio = (logp - old).exp()
        unclipped = -adv * ratio
        clipped = -adv * ratio.clamp(1.0 - CLIP_LOW, 1.0 + CLIP_HIGH)
        per_token = torch.maximum(unclipped, clipped)
        n = mask.sum().clamp_min(1.0)
        loss = (per_token * mask).sum() / n
        metrics = {
            "loss/policy": ((per_token.detach() * mask).sum() / n).item(),
            "train/clip_frac": (((clipped > unclipped).float() * mask).sum() / n).item(),
            "train/entropy": ((entropy * mask).sum() / n).item(),
        }
        d = old - logp.detach()
        metrics["train/approx_kl_old"] = (((d.exp() - d - 1.0) * mask).sum() / n).item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        metrics["train/grad_norm"] = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                                    GRAD_CLIP).item()
        opt.step()
        return rows * len(PROMPT) + sum(len(s) for s in samples), metrics

    best_gen, samples = float("inf"), None
    for _ in range(3):
        t = time.perf_counter()
        samples = generate()
        best_gen = min(best_gen, time.perf_counter() - t)
    best_update = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        tokens, metrics = update(samples)
        best_update = min(best_update, time.perf_counter() - t)
    new_tokens = sum(len(s) for s in samples)
    print(json.dumps({
        "new_tokens": new_tokens, "generate_s": best_gen, "update_tokens": tokens,
        "update_s": best_update, "metrics": metrics, "peak_rss_mib": peak_rss_mib(),
        "torch": torch.__version__,
    }))


def run_ours(exe, name, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    line = subprocess.run([exe, name], env=env, check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    # "grpo micro: generate N tokens in X s (...); update on R rows (T tokens) in Y s (...); ..."
    after = lambda key: line.split(key, 1)[1].split()
    return {
        "new_tokens": int(after("generate ")[0]),
        "generate_s": float(after(" tokens in ")[0]),
        "update_tokens": int(after(" rows (")[0]),
        "update_s": float(line.split(" tokens) in ", 1)[1].split()[0]),
        "peak_rss_mib": float(after("peak rss ")[0]),
        "line": line,
    }


def rates(r):
    gen = r["new_tokens"] / r["generate_s"]
    upd = r["update_tokens"] / r["update_s"]
    it = r["new_tokens"] / (r["generate_s"] + r["update_s"])
    return gen, upd, it


def best(runs):
    """The fastest generate and the fastest update over rounds (rates, so token counts that
    differ between runs compare fairly), and the lowest peak memory."""
    gen = max(runs, key=lambda r: r["new_tokens"] / r["generate_s"])
    upd = max(runs, key=lambda r: r["update_tokens"] / r["update_s"])
    return {"new_tokens": gen["new_tokens"], "generate_s": gen["generate_s"],
            "update_tokens": upd["update_tokens"], "update_s": upd["update_s"],
            "peak_rss_mib": min(r["peak_rss_mib"] for r in runs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--exe", help="our bench executable, already built (default: build it)")
    ap.add_argument("--rounds", type=int, default=1, help="alternations of the two sides")
    ap.add_argument("--presets", default="micro,tiny")
    ap.add_argument("--torch-preset", choices=list(PRESETS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_preset:
        torch_preset(args.torch_preset, args.threads)
        return
    exe = args.exe or build_bench("grpo")
    table = []
    version = "?"
    for name in args.presets.split(","):
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(run_ours(exe, name, args.threads))
            theirs.append(run_torch_part(__file__, "--torch-preset", name, args.threads))
            print(f"  {name}: {ours[-1]['line']}", file=sys.stderr)
            print(f"  {name}: torch {json.dumps(theirs[-1])}", file=sys.stderr)
        version = theirs[0]["torch"]
        table.append((name, best(ours), best(theirs)))
    print(f"GRPO iteration (16 prompts x 8 samples, 33 + up to 24 tokens), {args.threads} threads, "
          f"torch {version}, best of {args.rounds} round(s) of best-of-3; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'preset':>6} {'part':>9} | {'rlvr':>17} | {'torch':>17} | {'ratio':>5}")
    for name, o, t in table:
        og, ou, oi = rates(o)
        tg, tu, ti = rates(t)
        print(f"{name:>6} {'generate':>9} | {og:>8.0f} tok/s {o['generate_s']:>5.2f}s | "
              f"{tg:>8.0f} tok/s {t['generate_s']:>5.2f}s | {og / tg:>5.2f}")
        print(f"{name:>6} {'update':>9} | {ou:>8.0f} tok/s {o['update_s']:>5.2f}s | "
              f"{tu:>8.0f} tok/s {t['update_s']:>5.2f}s | {ou / tu:>5.2f}")
        print(f"{name:>6} {'iteration':>9} | {oi:>8.0f} tok/s {o['generate_s'] + o['update_s']:>5.2f}s | "
              f"{ti:>8.0f} tok/s {t['generate_s'] + t['update_s']:>5.2f}s | {oi / ti:>5.2f}")
        print(f"{name:>6} {'peak MiB':>9} | {o['peak_rss_mib']:>17.1f} | {t['peak_rss_mib']:>17.1f} | "
              f"{o['peak_rss_mib'] / t['peak_rss_mib']:>5.2f}")


if __name__ == "__main__":
    main()
