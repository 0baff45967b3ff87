"""The package's API: listing, tasks, rewards, environments, the sandbox, errors and pickling."""

import math
import pickle

import pytest

import rlvr


def test_listings_name_every_plugin_with_its_config_keys():
    envs = {e["id"]: e for e in rlvr.envs()}
    rewards = {r["id"]: r for r in rlvr.rewards()}
    assert {"arith/arith-v0", "sql/text2sql-v0", "python/env-v0", "code/python-v0"} <= envs.keys()
    assert {"math/equivalence", "answer/exact", "tools/ast-match", "sql/execution-match"} <= rewards.keys()
    assert envs["arith/arith-v0"]["config"]["max_digits"] == 3
    assert rewards["math/equivalence"]["config"]["extract"] == "auto"
    assert rewards["answer/numeric"]["config"].keys() >= {"atol", "rtol", "extract"}
    assert rewards["python/file"]["config"] is None, "a required key has no default to show"
    assert all(e["description"] for e in envs.values())


def test_tasks_are_rows_with_prompt_fields_and_the_exact_task():
    rows = rlvr.tasks("arith/arith-v0", n=5, seed=3, config={"max_digits": 2})
    assert len(rows) == 5
    row = rows[0]
    assert row["prompt"][-1]["role"] == "user" and row["question"] in row["prompt"][-1]["content"]
    assert {"question", "answer", "task_id", "rlvr_task"} <= row.keys()
    assert rows == rlvr.tasks("arith/arith-v0", n=5, seed=3, config={"max_digits": 2}), "same seed, same rows"
    assert rows != rlvr.tasks("arith/arith-v0", n=5, seed=4, config={"max_digits": 2})
    test = rlvr.tasks("arith/arith-v0", split="test", n=5, seed=3)
    assert {r["question"] for r in test}.isdisjoint(r["question"] for r in rlvr.tasks("arith/arith-v0", n=200, seed=3))


def test_tasks_refuse_what_they_cannot_give():
    with pytest.raises(rlvr.ConfigError, match="without end"):
        rlvr.tasks("arith/arith-v0")
    with pytest.raises(rlvr.ConfigError, match="split"):
        rlvr.tasks("arith/arith-v0", split="dev", n=1)
    with pytest.raises(rlvr.ConfigError, match="max_digitz"):
        rlvr.tasks("arith/arith-v0", n=1, config={"max_digitz": 2})
    with pytest.raises(rlvr.ConfigError, match="unknown environment"):
        rlvr.tasks("arith/nope", n=1)


def test_rows_survive_a_dataset_and_still_score_exactly():
    datasets = pytest.importorskip("datasets")
    rows = rlvr.tasks("sql/text2sql-v0", n=4)
    back = datasets.Dataset.from_list(rows).to_list()
    reward = rlvr.Reward("sql/execution-match")
    gold = [f"```sql\n{r['gold']}\n```" for r in rows]
    assert [s["reward"] for s in reward.score_batch(back, gold)] == [1.0] * 4
    assert [s["reward"] for s in reward.score_batch(rows, gold)] == [1.0] * 4


def test_score_matches_score_batch_and_reports_every_term():
    reward = rlvr.Reward("math/equivalence")
    # 900 rows: several blocks, a short last one, and more workers than some blocks need.
    tasks = [{"answer": "\\frac{1}{2}"}, {"answer": "x^2 + 1"}, {"answer": "[1, 2)"}] * 300
    completions = ["so $\\boxed{0.5}$", "\\boxed{1 + x^2}", "\\boxed{(1, 2]}"] * 300
    batch = reward.score_batch(tasks, completions, workers=2)
    single = [reward.score(t, c) for t, c in zip(tasks, completions)]
    assert batch == single
    assert reward.score_batch(tasks, completions, workers=1) == single
    assert reward.score_batch(tasks[:5], completions[:5], workers=7) == single[:5]
    assert reward.score_batch([], []) == []
    assert [row["reward"] for row in batch[:3]] == [1.0, 1.0, 0.0]
    assert set(batch[0]) == {"reward", "terms", "error", "details"}
    assert reward.terms == list(batch[0]["terms"])


def test_conversational_completions_score_their_assistant_text():
    reward = rlvr.Reward("answer/exact")
    messages = [{"role": "assistant", "content": [{"type": "text", "text": "<answer>7</answer>"}]}]
    assert reward.score({"answer": "7"}, messages)["reward"] == 1.0
    assert reward.score({"answer": "7"}, [{"role": "assistant", "content": None}])["reward"] == 0.0


def test_a_verifier_error_is_none_never_zero():
    reward = rlvr.Reward("answer/exact")
    row = reward.score({"gold": "4"}, "<answer>4</answer>")
    assert row["reward"] is None and "answer" in row["error"]
    assert reward.as_trl()(prompts=["p"], completions=["<answer>4</answer>"], gold=["4"]) == [None]
    with pytest.raises(rlvr.TaskError, match="answer"):
        reward.as_verl()("src", "<answer>4</answer>", {"gold": "4"})


def test_trl_adapter_reads_columns_and_ignores_trainer_arguments():
    reward = rlvr.Reward("math/equivalence").as_trl()
    assert reward.__name__ == "math_equivalence"
    rows = rlvr.tasks("arith/arith-v0", n=3)
    out = reward(
        prompts=[r["prompt"] for r in rows],
        completions=[f"\\boxed{{{r['answer']}}}" for r in rows[:2]] + ["\\boxed{-1}"],
        completion_ids=[[1], [2], [3]],
        trainer_state=object(),
        log_metric=print,
        **{k: [r[k] for r in rows] for k in rows[0] if k != "prompt"},
    )
    assert out == [1.0, 1.0, 0.0]


def test_verl_adapter_finds_the_task_the_ways_verl_passes_it():
    compute_score = rlvr.Reward("math/equivalence").as_verl()
    assert compute_score("openai/gsm8k", "\\boxed{72}", "72")["score"] == 1.0
    assert compute_score("x", "\\boxed{72}", {"answer": "72"})["score"] == 1.0
    assert compute_score("x", "\\boxed{72}", '{"answer": "71"}')["score"] == 0.0
    row = rlvr.tasks("arith/arith-v0", n=1)[0]
    out = compute_score("arith", f"\\boxed{{{row['answer']}}}", "ignored", extra_info={"rlvr_task": row["rlvr_task"]})
    assert out == {"score": 1.0, "accuracy": 1.0, "format": 1.0}


def test_bad_input_raises_rlvr_errors_not_crashes():
    reward = rlvr.Reward("answer/exact")
    with pytest.raises(rlvr.ConfigError):
        rlvr.Reward("no/such-v0")
    with pytest.raises(rlvr.ConfigError, match="dict"):
        rlvr.Reward("answer/exact", config=[1, 2])
    with pytest.raises(rlvr.ConfigError, match="null"):
        rlvr.Reward("answer/numeric", config={"rel_tol": None})
    with pytest.raises(rlvr.TaskError, match="keys must be strings"):
        reward.score({1: "x"}, "a")
    with pytest.raises(rlvr.TaskError, match="not a JSON number"):
        reward.score({"answer": math.nan}, "a")
    with pytest.raises(rlvr.TaskError, match="64 bits"):
        reward.score({"answer": 10**30}, "a")
    with pytest.raises(rlvr.TaskError, match="cannot be read"):
        reward.score({"answer": object()}, "a")
    deep: list = []
    cursor = deep
    for _ in range(10_000):
        cursor.append([])
        cursor = cursor[0]
    with pytest.raises(rlvr.TaskError, match="deeper"):
        reward.score({"answer": deep}, "a")
    with pytest.raises(rlvr.TaskError, match="role"):
        reward.score({"answer": "1"}, [{"role": "wizard", "content": "1"}])
    with pytest.raises(rlvr.TaskError, match="2 tasks but 1 completions"):
        reward.score_batch([{"answer": "1"}] * 2, ["x"])
    with pytest.raises(rlvr.TaskError, match="row 1"):
        reward.score_batch([{"answer": "1"}, 5], ["x", "y"])
    with pytest.raises(rlvr.Error, match="internal error"):
        rlvr._native._panic()
    assert issubclass(rlvr.ConfigError, rlvr.Error) and issubclass(rlvr.SandboxError, rlvr.Error)


def test_values_cross_both_ways_unchanged():
    value = {"a": [1, -2, 2**63, 1.5, True, None, "ü"], "b": {"c": (1, 2)}}
    assert rlvr._native._roundtrip(value) == {"a": [1, -2, 2**63, 1.5, True, None, "ü"], "b": {"c": [1, 2]}}


def test_a_repeated_task_is_reused_only_when_it_is_the_same_data():
    same = rlvr._native._same_data
    task = {"answer": "4", "tests": [1, 2.5, None, {"a": True}]}
    assert same(task, {"answer": "4", "tests": [1, 2.5, None, {"a": True}]})
    # Equal to Python's ==, different as JSON: never reused.
    assert not same({"a": 1}, {"a": 1.0}) and not same({"a": 1}, {"a": True})
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1}), "key order is part of the data"
    assert not same({"a": [1]}, {"a": [1, 2]}) and not same({"a": float("nan")}, {"a": float("nan")})
    reward = rlvr.Reward("answer/exact")
    rows = reward.score_batch([{"answer": "4"}, {"answer": "4"}, {"answer": "5"}], ["<answer>4</answer>"] * 3)
    assert [r["reward"] for r in rows] == [1.0, 1.0, 0.0]


def test_objects_pickle_by_id_and_config():
    reward = rlvr.Reward("answer/numeric", {"rtol": 0.01})
    back = pickle.loads(pickle.dumps(reward))
    assert type(back) is rlvr.Reward and back.config == {"rtol": 0.01}
    assert back.score({"answer": "100"}, "<answer>100.5</answer>")["reward"] == 1.0
    trl = pickle.loads(pickle.dumps(reward.as_trl()))
    assert trl.__name__ == "answer_numeric"
    env = pickle.loads(pickle.dumps(rlvr.Env("arith/arith-v0", {"max_digits": 1}, seed=5)))
    assert (type(env), env.config["max_digits"], env.seed) == (rlvr.Env, 1, 5)
    sandbox = pickle.loads(pickle.dumps(rlvr.Sandbox(fuel=123)))
    assert sandbox.limits["fuel"] == 123


def test_env_episode_is_gymnasium_shaped_and_scored_by_its_reward(letters_env):
    env = rlvr.Env("python/env-v0", {"path": letters_env})
    messages, info = env.reset()
    task = info["task"]
    assert "occur" in messages[-1]["content"]
    observation, terminated, truncated, step_info = env.step(str(task["count"] + 1))
    assert (observation[0]["content"], terminated, truncated) == ("No, try again.", False, False)
    assert step_info == {"tries": 1}
    observation, terminated, truncated, _ = env.step(str(task["count"]))
    assert (observation, terminated, truncated) == ([], True, False)
    assert env.score()["reward"] == 1.0
    assert [m["role"] for m in env.messages][-3:] == ["assistant", "user", "assistant"]
    with pytest.raises(rlvr.Error, match="ended"):
        env.step("1")
    _, info2 = env.reset()
    assert info2["task_id"] != info["task_id"], "reset without a task draws the next one"


def test_env_order_and_task_errors():
    env = rlvr.Env("arith/arith-v0")
    with pytest.raises(rlvr.Error, match="before reset"):
        env.step("x")
    with pytest.raises(rlvr.Error, match="before reset"):
        env.score()
    with pytest.raises(rlvr.TaskError, match="question"):
        env.reset(task={"answer": "1"})


def test_sql_env_explores_then_answers():
    env = rlvr.Env("sql/text2sql-v0", {"turns": 3})
    row = rlvr.tasks("sql/text2sql-v0", n=1, config={"turns": 3})[0]
    env.reset(task=row)
    observation, terminated, _, info = env.step("<explore>SELECT count(*) FROM airlines</explore>")
    assert not terminated and observation and info["kind"] == "explore"
    gold = row["gold"]
    _, terminated, _, _ = env.step(f"```sql\n{gold}\n```")
    assert terminated
    score = env.score()
    assert score["terms"]["execution_match"] == 1.0


def test_sandbox_runs_and_names_the_limit_that_stopped_it():
    sandbox = rlvr.Sandbox(deadline_ms=5_000, fuel=200_000_000)
    out = sandbox.run("print(1 + 1)")
    assert (out["stdout"], out["exit_code"], out["limit"]) == ("2\n", 0, None)
    loop = sandbox.run("while True: pass")
    assert loop["exit_code"] is None and loop["limit"] == "fuel"
    crash = sandbox.run("raise ValueError('no')")
    assert crash["exit_code"] == 1 and "ValueError" in crash["stderr"]
    sleeper = rlvr.Sandbox(deadline_ms=200).run("import time\ntime.sleep(30)")
    assert sleeper["exit_code"] is None and sleeper["limit"] == "deadline"
    bomb = rlvr.Sandbox(memory_mb=64).run("x = bytearray(1 << 30)")
    assert (bomb["exit_code"], bomb["limit"]) == (None, "memory")
    escape = sandbox.run("open('/etc/passwd').read()")
    assert escape["exit_code"] == 1 and "passwd" not in escape["stdout"]
    flood = rlvr.Sandbox(output_bytes=100).run("print('x' * 10_000)")
    assert flood["truncated"] == ["stdout"] and len(flood["stdout"]) == 100
    session = sandbox.session()
    session.run("x = 41")
    assert session.run("print(x + 1)")["stdout"] == "42\n" and session.ended is None
