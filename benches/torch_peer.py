"""Pieces the PyTorch side-by-side scripts share: peak memory read as the Rust side reads it, and
building one of our bench executables."""

import json
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
