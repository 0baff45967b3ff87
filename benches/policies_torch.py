"""Side-by-side: rlvr's burn policy (flex CPU) vs PyTorch `transformers` on the same model shape.

How to run (from the repository root; CPU only, same thread count for both):
    python3 -m pip install torch==2.9.0 transformers==4.57.1
    python3 benches/policies_torch.py            # builds and runs `cargo bench --bench policies`
    RLVR_BENCH_THREADS=2 python3 benches/policies_torch.py

It measures, for the `tiny` preset shape (Llama, hidden 256, 4 layers, 4 heads / 2 kv heads,
MLP 768, vocab 260, tied embeddings, random weights):
  - generation tokens/s at batch 1 and 16, 128 new tokens, sampling at temperature 1, KV cache
    (`model.generate(do_sample=True, use_cache=True)`, no early stop);
  - forward+backward tokens/s of the summed token log-probs of 4 x 256 tokens;
and prints ours / theirs for each.
"""

import os
import re
import subprocess
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

THREADS = int(os.environ.get("RLVR_BENCH_THREADS", os.cpu_count() or 1))
torch.set_num_threads(THREADS)


def torch_numbers():
    cfg = LlamaConfig(
        vocab_size=260, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
        max_position_embeddings=4096, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    prompt = list(b"Question: what is 17 + 25? Answer:")
    out = {}
    for batch in (1, 16):
        ids = torch.tensor([prompt] * batch)
        with torch.no_grad():
            model.generate(ids[:1], max_new_tokens=8, min_new_tokens=8, do_sample=True)
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                res = model.generate(ids, max_new_tokens=128, min_new_tokens=128, do_sample=True,
                                     temperature=1.0, top_k=0, top_p=1.0, use_cache=True,
                                     pad_token_id=0)
                best = min(best, time.perf_counter() - t)
        n = (res.shape[1] - ids.shape[1]) * batch
        out[f"generate batch={batch}"] = n / best
    model.train()
    seqs = torch.tensor([[(i * 7 + r * 13) % 256 for i in range(256)] for r in range(4)])
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        logits = model(seqs).logits[:, :-1]
        lp = torch.log_softmax(logits, -1).gather(2, seqs[:, 1:, None]).squeeze(2)
        (-lp.sum()).backward()
        model.zero_grad()
        best = min(best, time.perf_counter() - t)
    out["forward+backward"] = seqs.numel() / best
    return out


def our_numbers():
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    text = subprocess.run(["cargo", "bench", "--bench", "policies"], env=env, check=True,
                          capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        m = re.match(r"generate tiny batch=\s*(\d+).*?([\d.]+) tokens/s", line)
        if m:
            out[f"generate batch={m.group(1)}"] = float(m.group(2))
        m = re.match(r"forward\+backward tiny .*?([\d.]+) tokens/s", line)
        if m:
            out["forward+backward"] = float(m.group(1))
    return out


if __name__ == "__main__":
    ours, theirs = our_numbers(), torch_numbers()
    print(f"threads: {THREADS}, torch {torch.__version__}")
    for key in theirs:
        print(f"{key:>20}: rlvr {ours.get(key, float('nan')):>9.1f} tok/s   "
              f"torch {theirs[key]:>9.1f} tok/s   ratio {ours.get(key, float('nan')) / theirs[key]:.2f}")
