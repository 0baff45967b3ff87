"""Pieces the PyTorch side-by-side scripts share: peak memory read as the Rust side reads it,
building one of our bench executables, and running the PyTorch side in a process of its own."""

import json
import os
import subprocess
import sys


def peak_rss_mib():
    """This process's peak resident set size in MiB (Linux `VmHWM`), as the Rust side reads it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    return 0.0


def build_bench(name):
    """Builds the Rust bench `name` (release, no default features) and returns its executable."""
    out = subprocess.run(
        ["cargo", "bench", "--no-default-features", "--bench", name, "--no-run",
         "--message-format=json"],
        check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == name \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit(f"cargo did not report the {name} bench executable")


def run_torch_part(script, flag, value, threads, extra=()):
    """Runs `script FLAG VALUE --threads N EXTRA...` in a fresh Python process limited to `threads`
    threads (so each part's peak memory is its own) and returns the JSON object on its last line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    text = subprocess.run(
        [sys.executable, script, flag, value, "--threads", str(threads), *extra],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(text.strip().splitlines()[-1])
