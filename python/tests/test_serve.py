"""`rlvr serve` driven by the peers' own clients: OpenEnv's `GenericEnvClient`, the
`sandbox-fusion` client, and verl's SandboxFusion reward, plus a bounded load test.

The server is the `rlvr` binary the Rust tests built (`RLVR_BIN`, set by scripts/test.sh),
listening on loopback on a free port; each test stops it with SIGTERM and checks that it shut
down cleanly.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sandbox_fusion
from conftest import REPO
from openenv.core import GenericEnvClient


def rlvr_bin() -> str:
    path = os.environ.get("RLVR_BIN") or str(REPO / "target" / "debug" / "rlvr")
    if not Path(path).is_file():
        raise RuntimeError(f"no rlvr binary at {path}: run scripts/test.sh, or set RLVR_BIN")
    return path


@contextmanager
def serve(*args: str) -> Iterator[str]:
    """Starts `rlvr serve --port 0 ARGS`; yields its base URL; stops it with SIGTERM."""
    proc = subprocess.Popen(
        [rlvr_bin(), "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    url = None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if m:
            url = m.group(1)
    if url is None:
        proc.kill()
        raise RuntimeError("rlvr serve did not start:\n" + "".join(lines))
    # Keep reading its log so the pipe never fills.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert code == 0, f"rlvr serve exited {code} on SIGTERM"


def metrics(url: str) -> dict[str, float]:
    out = {}
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def assert_nothing_live(url: str, warm: int = 0) -> None:
    m = metrics(url)
    assert (m["rlvr_sessions_live"], m["rlvr_envs_live"], m["rlvr_programs_live"]) == (0, 0, 0), m
    # A Python file environment's reward keeps one warm interpreter per thread that called it
    # (at most the server's blocking threads); nothing else may stay alive.
    assert m["rlvr_interpreters_live"] <= warm, m


def wait_until_nothing_live(url: str, warm: int = 0) -> None:
    # A client's close reaches the server a moment after the client returns.
    for _ in range(100):
        m = metrics(url)
        if m["rlvr_sessions_live"] == 0 and m["rlvr_envs_live"] == 0:
            break
        time.sleep(0.05)
    assert_nothing_live(url, warm)


# OpenEnv's client, over WebSocket sessions.


def test_openenv_client_plays_multi_turn_sql_episodes() -> None:
    with serve("--env", "sql/text2sql-v0", "--set", "turns=2") as url:
        with GenericEnvClient(base_url=url).sync() as env:
            for index in range(3):
                r = env.reset(index=index, episode_id=f"sql-{index}")
                assert not r.done and r.reward is None
                gold = r.observation["metadata"]["task"]["gold"]
                r = env.step({"message": "<explore>SELECT COUNT(*) FROM sqlite_master</explore>"})
                assert not r.done, r
                assert r.observation["messages"], "the exploratory query's result comes back"
                r = env.step({"message": f"```sql\n{gold}\n```"})
                assert r.done and r.reward == 1.0, r
                state = env.state()
                assert (state["episode_id"], state["step_count"]) == (f"sql-{index}", 2)
            # A wrong query scores 0, not an error.
            env.reset(index=0)
            env.step({"message": "<explore>SELECT 1</explore>"})
            r = env.step({"message": "```sql\nSELECT 1\n```"})
            assert r.done and r.reward == 0.0
        wait_until_nothing_live(url)


def test_openenv_client_plays_tool_episodes_from_the_plan() -> None:
    with serve() as url:
        with GenericEnvClient(base_url=f"{url}/envs/tools/exec-v0").sync() as env:
            import json

            turns = []
            for index in range(6):
                r = env.reset(index=index)
                task = r.observation["metadata"]["task"]
                for calls in task["plan"]:
                    message = "\n".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)
                    r = env.step({"message": message})
                    assert not r.done, r
                    assert r.observation["messages"][0]["role"] == "tool"
                r = env.step({"message": f"<answer>{task['answer']}</answer>"})
                assert r.done and r.reward == 1.0, r
                turns.append(len(task["plan"]) + 1)
            assert max(turns) >= 3, f"some episodes are multi-turn: {turns}"
        wait_until_nothing_live(url)


def test_openenv_client_plays_a_python_file_environment(letters_env: str) -> None:
    with serve("--env", "python/env-v0", "--set", f"path={letters_env}") as url:
        with GenericEnvClient(base_url=url).sync() as env:
            r = env.reset(index=1)
            count = r.observation["metadata"]["task"]["count"]
            r = env.step({"message": str(count + 1)})
            assert not r.done and r.observation["messages"][0]["content"] == "No, try again."
            r = env.step({"message": str(count)})
            assert r.done and r.reward == 1.0, r
        wait_until_nothing_live(url, warm=18)


def test_http_reset_and_one_shot_step() -> None:
    with serve() as url:
        base = f"{url}/envs/math/problems-v0"
        r = requests.post(f"{base}/reset", json={"seed": 7}, timeout=30).json()
        assert r["done"] is False and r["reward"] is None
        answer = r["metadata"]["task"]["answer"]
        s = requests.post(f"{base}/step", json={"seed": 7, "action": {"message": f"\\boxed{{{answer}}}"}}, timeout=30)
        assert s.status_code == 200, s.text
        assert s.json()["done"] is True and s.json()["reward"] == 1.0, s.json()
        bad = requests.post(f"{base}/step", json={"action": {"text": "x"}}, timeout=30)
        assert bad.status_code == 422 and "unknown action key" in bad.json()["detail"]
        assert requests.get(f"{base}/metadata", timeout=30).json()["name"] == "math/problems-v0"


# SandboxFusion's client and verl's reward, on /run_code.


def test_sandbox_fusion_client_gets_sandbox_fusions_statuses() -> None:
    from sandbox_fusion import RunCodeRequest, RunStatus, run_code

    with serve() as url:

        def run(code: str, **kw: object) -> sandbox_fusion.RunCodeResponse:
            return run_code(RunCodeRequest(code=code, language="python", **kw), endpoint=url, max_attempts=1)

        ok = run("print(1 + 1)")
        assert ok.status == RunStatus.Success and ok.run_result.stdout == "2\n"
        assert ok.run_result.return_code == 0 and ok.run_result.execution_time > 0

        failed = run("raise ValueError('boom')")
        assert failed.status == RunStatus.Failed
        assert failed.run_result.status == "Finished" and failed.run_result.return_code == 1
        assert "ValueError: boom" in failed.run_result.stderr

        loop = run("while True:\n    pass", run_timeout=1)
        assert loop.status == RunStatus.Failed and loop.run_result.status == "TimeLimitExceeded"
        assert loop.run_result.return_code is None

        # The client sends no memory limit: the server's default (1 GiB) applies.
        hog = run("x = bytearray(1536 << 20)\nprint(len(x))")
        assert hog.status == RunStatus.Failed and hog.run_result.return_code not in (0, None)
        assert "memory limit" in hog.run_result.stderr

        flood = run("import sys\nfor _ in range(10**6):\n    sys.stdout.write('x' * 100)")
        assert flood.status == RunStatus.Success and len(flood.run_result.stdout) == 1 << 20

        stdin = run("print(int(input()) * 2)", stdin="21\n")
        assert stdin.run_result.stdout == "42\n"

        import base64

        files = run(
            "data = open('in.txt').read()\nopen('out.txt', 'w').write(data.upper())",
            files={"in.txt": base64.b64encode(b"hello").decode()},
            fetch_files=["out.txt"],
        )
        assert base64.b64decode(files.files["out.txt"]) == b"HELLO"

        other = requests.post(f"{url}/run_code", json={"code": "int main(){}", "language": "cpp"}, timeout=30).json()
        assert other["status"] == "SandboxError" and "Python only" in other["message"]
        assert_nothing_live(url)


def verl_sandbox_fusion():
    """verl's SandboxFusion reward, loaded from its file so that verl's package root (which
    imports torch and ray) is not needed."""
    root = Path(importlib.util.find_spec("verl").origin).parent  # type: ignore[arg-type,union-attr]
    d = root / "utils" / "reward_score" / "sandbox_fusion"
    spec = importlib.util.spec_from_file_location(
        "verl_sandbox_fusion", d / "__init__.py", submodule_search_locations=[str(d)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verl_sandbox_fusion"] = module
    spec.loader.exec_module(module)
    return module


def test_verl_sandbox_fusion_reward_scores_against_our_server() -> None:
    sf = verl_sandbox_fusion()
    with serve() as url:
        run_code = f"{url}/run_code"
        sem = threading.Semaphore(8)
        add = {"inputs": ["1 2\n", "3 4\n", "10 -3\n"], "outputs": ["3\n", "7\n", "7\n"]}
        right = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
        wrong = "```python\na, b = map(int, input().split())\nprint(a + b if a < 5 else 0)\n```"
        loops = "```python\nwhile True:\n    pass\n```"
        score, _ = sf.compute_score(run_code, sem, 1024, right, add, timeout=5)
        assert score == 1.0
        score, meta = sf.compute_score(run_code, sem, 1024, wrong, add, timeout=5)
        assert score == pytest.approx(2 / 3), meta
        score, meta = sf.compute_score(run_code, sem, 1024, loops, {"inputs": ["1\n"], "outputs": ["1\n"]}, timeout=1)
        assert score == 0.0 and meta[0]["status"] == "timeout", meta
        # A call-based (LeetCode-style) problem: verl wraps the function and feeds JSON lines.
        fn = {"fn_name": "twice", "inputs": ["4", "[1, 2]"], "outputs": ["8", "[1, 2, 1, 2]"]}
        score, meta = sf.compute_score(
            run_code, sem, 1024, "```python\ndef twice(x):\n    return x * 2\n```", fn, timeout=5
        )
        assert score == 1.0, meta
        assert_nothing_live(url)


# Bounded load: every request answered, nothing left live.


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def test_load_200_concurrent_run_code_and_64_concurrent_sessions() -> None:
    from sandbox_fusion import RunCodeRequest, RunStatus, run_code

    with serve("--max-sessions", "64", "--request-timeout-s", "60") as url:
        run_code(RunCodeRequest(code="print(1)", language="python"), endpoint=url)  # the sandbox is loaded

        def one(_: int) -> float:
            t = time.perf_counter()
            r = run_code(
                RunCodeRequest(code="print(1)", language="python"), endpoint=url, max_attempts=1, client_timeout=60
            )
            assert r.status == RunStatus.Success and r.run_result.stdout == "1\n"
            return time.perf_counter() - t

        t0 = time.perf_counter()
        with ThreadPoolExecutor(200) as pool:
            latencies = list(pool.map(one, range(200)))
        wall = time.perf_counter() - t0
        assert len(latencies) == 200
        print(
            f"\nrun_code x200 concurrent: {200 / wall:.0f} req/s, "
            f"p50 {percentile(latencies, 0.5) * 1e3:.0f} ms, p99 {percentile(latencies, 0.99) * 1e3:.0f} ms"
        )

        async def episode(k: int) -> float:
            async with GenericEnvClient(base_url=f"{url}/envs/arith/arith-v0", message_timeout_s=60) as env:
                r = await env.reset(index=k)
                answer = r.observation["metadata"]["task"]["answer"]
                r = await env.step({"message": f"<answer>{answer}</answer>"})
                assert r.done and r.reward == 1.0
                return 1.0

        async def sessions() -> list[float]:
            return await asyncio.gather(*(episode(k) for k in range(64)))

        t0 = time.perf_counter()
        done = asyncio.run(asyncio.wait_for(sessions(), timeout=120))
        print(f"64 concurrent episodes: {len(done)} finished in {time.perf_counter() - t0:.2f} s")
        assert sum(done) == 64
        wait_until_nothing_live(url)
        m = metrics(url)
        assert m['rlvr_requests_total{route="/run_code",status="200"}'] == 201
        assert m["rlvr_sessions_refused_total"] == 0
