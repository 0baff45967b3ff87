"""Ray spreading rlvr's work over processes (and, the same way, machines): rewards and
environments travel to workers pickled by id and config."""

import pytest

import rlvr

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def cases(rows):
    """Right, wrong and bare answers, and tasks without their reference (a verifier error), in turn."""
    tasks, completions = [], []
    for i, row in enumerate(rows):
        kind = i % 4
        task = row
        if kind == 0:
            completion = f"so the answer is $\\boxed{{{row['answer']}}}$"
        elif kind == 1:
            completion = f"\\boxed{{{int(row['answer']) + 1}}}"
        elif kind == 2:
            completion = f"{row['answer']}"  # a bare number is an answer, as math-verify reads it
        else:
            task = {"question": row["question"]}
            completion = f"\\boxed{{{row['answer']}}}"
        tasks.append(task)
        completions.append(completion)
    return tasks, completions


def test_ray_tasks_score_like_score_batch(local_ray):
    tasks, completions = cases(rlvr.tasks("arith/arith-v0", n=10_000, seed=1))
    reward = rlvr.Reward("math/equivalence")

    @ray.remote
    def score(reward, tasks, completions):
        return reward.score_batch(tasks, completions, workers=1)

    chunk = 1_000
    futures = [
        score.remote(reward, tasks[i : i + chunk], completions[i : i + chunk]) for i in range(0, len(tasks), chunk)
    ]
    remote = [row for part in ray.get(futures) for row in part]
    local = reward.score_batch(tasks, completions)
    assert len(remote) == 10_000
    assert remote == local
    rewards = [row["reward"] for row in local]
    assert (rewards.count(1.0), rewards.count(0.0), rewards.count(None)) == (5_000, 2_500, 2_500)


def test_a_ray_actor_pool_drives_episodes(local_ray, letters_env):
    from ray.util import ActorPool

    @ray.remote
    class Worker:
        def __init__(self, env):
            self.env = env

        def episode(self, row, first_guess):
            self.env.reset(task=row)
            turns = 0
            for guess in (first_guess, str(row["count"])):
                turns += 1
                _, terminated, _, _ = self.env.step(guess)
                if terminated:
                    break
            return turns, self.env.score()["reward"]

    env = rlvr.Env("python/env-v0", {"path": letters_env})
    rows = rlvr.tasks("python/env-v0", n=12, config={"path": letters_env})
    pool = ActorPool([Worker.remote(env), Worker.remote(env)])
    # Even rows are answered right at once; odd ones wrong first, then right on the retry.
    jobs = [(row, str(row["count"] + (i % 2))) for i, row in enumerate(rows)]
    results = list(pool.map(lambda actor, job: actor.episode.remote(*job), jobs))
    assert results == [(1 + i % 2, 1.0) for i in range(12)]
