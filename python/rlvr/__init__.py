"""rlvr from Python: environments, verifiers and the code sandbox of the rlvr engine.

Everything here wraps the registry the ``rlvr`` command line uses, so every environment and
reward is reachable by its id with the config an experiment file would give it (a dict here).
Rewards plug into TRL (``Reward.as_trl``) and verl (``Reward.as_verl``); environments into TRL's
``environment_factory`` (``Env.as_trl_env``); every object pickles by its id and config, so Ray
tasks and actors carry them to other processes and machines.

A verifier error is never a silent zero: ``score`` reports it under ``error`` with
``reward = None``, TRL receives ``None`` (which it skips), and verl gets an exception.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from . import _native
from ._native import (
    ConfigError,
    Error,
    Sandbox,
    SandboxError,
    SandboxSession,
    TaskError,
    __version__,
    envs,
    rewards,
    tasks,
)

__all__ = [
    "ConfigError",
    "Env",
    "Error",
    "Reward",
    "RlvrEnv",
    "Sandbox",
    "SandboxError",
    "SandboxSession",
    "TaskError",
    "TrlReward",
    "VerlScore",
    "__version__",
    "envs",
    "rewards",
    "tasks",
]

# What TRL passes to a reward function besides the dataset's columns.
_TRL_CONTROL = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


class Reward(_native.Reward):
    """A reward from the registry: ``Reward("math/equivalence")``, ``Reward("answer/numeric",
    {"rel_tol": 1e-6})``.

    ``score(task, completion)`` and ``score_batch(tasks, completions)`` return dicts with
    ``reward`` (None on a verifier error), ``terms``, ``error`` and ``details``, as ``rlvr score``.
    A task is a dict of its fields, or a row of ``rlvr.tasks``; a completion is a string or a list
    of chat messages.
    """

    def as_trl(self) -> TrlReward:
        """This reward as a TRL reward function (``GRPOTrainer(reward_funcs=[...])``)."""
        return TrlReward(self)

    def as_verl(self) -> VerlScore:
        """This reward as verl's ``compute_score(data_source, solution_str, ground_truth,
        extra_info=None)``; see ``VerlScore`` for how the task is found."""
        return VerlScore(self)


class TrlReward:
    """A reward function with TRL's signature: ``(prompts, completions, completion_ids=None,
    **columns) -> list[float | None]``.

    The dataset's columns are the task's fields (a row of ``rlvr.tasks`` carries the exact task
    in ``rlvr_task``). A verifier error gives ``None``, which TRL leaves out of the sum, never 0.
    Named after the reward (``math_equivalence``) in TRL's logs; picklable.
    """

    def __init__(self, reward: Reward) -> None:
        self.reward = reward
        self.__name__ = reward.id.replace("/", "_").replace("-", "_")

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Any] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        if completions is None:
            raise TaskError("a TRL reward function is called with completions=")
        n = len(completions)
        fields = {
            key: values
            for key, values in columns.items()
            if key not in _TRL_CONTROL and isinstance(values, (list, tuple)) and len(values) == n
        }
        tasks = [{key: values[i] for key, values in fields.items()} for i in range(n)]
        return [row["reward"] for row in self.reward.score_batch(tasks, completions)]

    def __repr__(self) -> str:
        return f"TrlReward({self.reward.id!r})"


def _verl_task(ground_truth: Any, extra_info: Any) -> dict[str, Any]:
    if isinstance(extra_info, dict) and extra_info.get("rlvr_task") is not None:
        return {"rlvr_task": extra_info["rlvr_task"]}
    if isinstance(ground_truth, dict):
        return dict(ground_truth)
    if isinstance(ground_truth, str) and ground_truth.startswith("{"):
        try:
            parsed = json.loads(ground_truth)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"answer": ground_truth}


class VerlScore:
    """verl's custom reward function: ``compute_score(data_source, solution_str, ground_truth,
    extra_info=None) -> {"score": float, <term>: float, ...}``.

    The task is ``extra_info["rlvr_task"]`` when present (the JSON a ``rlvr.tasks`` row carries),
    else ``ground_truth`` when it is a dict or the JSON of one, else ``{"answer": ground_truth}``
    (verl's usual single reference answer). A verifier error raises ``rlvr.TaskError`` rather
    than pass for a zero. Load it from a file named in ``custom_reward_function.path`` that
    defines ``compute_score = rlvr.Reward(...).as_verl()``.
    """

    def __init__(self, reward: Reward) -> None:
        self.reward = reward
        self.__name__ = "compute_score"

    def __call__(
        self,
        data_source: Any = None,
        solution_str: str = "",
        ground_truth: Any = None,
        extra_info: Any = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        row = self.reward.score(_verl_task(ground_truth, extra_info), solution_str)
        if row["reward"] is None:
            raise TaskError(f"{self.reward.id} on a {data_source or 'verl'} row: {row['error']}")
        out = {"score": float(row["reward"])}
        for name, value in row["terms"].items():
            if name != "score":
                out[name] = float("nan") if value is None else float(value)
        return out

    def __repr__(self) -> str:
        return f"VerlScore({self.reward.id!r})"


class Env(_native.Env):
    """A text environment from the registry, Gymnasium-shaped.

    ``reset(task=None, seed=None) -> (messages, info)`` opens an episode (on the next training
    task when ``task`` is None); ``step(text) -> (observation, terminated, truncated, info)``
    applies the policy's message; ``score()`` judges the trajectory so far with the environment's
    own reward. One episode at a time per object; make one object per concurrent episode.
    """

    def as_trl_env(self) -> Callable[[], RlvrEnv]:
        """A factory for TRL's ``environment_factory``: each call makes a fresh ``RlvrEnv``."""
        return functools.partial(RlvrEnv, self.id, self.config, self.seed)


class RlvrEnv:
    """One rlvr episode per TRL rollout, as TRL's ``environment_factory`` expects.

    TRL calls ``reset(**row)`` with the dataset row (a row of ``rlvr.tasks``), offers ``act`` to
    the model as a tool, and calls ``get_reward()`` when the rollout ends: the environment's own
    reward on the episode (None on a verifier error, which TRL skips).
    """

    def __init__(self, env_id: str, config: dict[str, Any] | None = None, seed: int = 0) -> None:
        self._env = Env(env_id, config, seed)

    def reset(self, **row: Any) -> str | None:
        task = {k: v for k, v in row.items() if k != "prompt"} or None
        messages, _ = self._env.reset(task=task)
        if "prompt" in row:
            return None
        return "\n\n".join(m["content"] for m in messages if m["role"] != "system")

    def act(self, message: str) -> str:
        """Send a message to the environment: a query to run, code to execute, or a final answer.

        Args:
            message: The text the environment acts on, in the format its prompt describes.

        Returns:
            What the environment answers, and whether the episode is over.
        """
        try:
            observation, terminated, truncated, _ = self._env.step(message)
        except Error as e:
            return f"error: {e}"
        text = "\n\n".join(m["content"] for m in observation)
        if terminated or truncated:
            text = (text + "\n\n" if text else "") + "The episode is over."
        return text

    def get_reward(self) -> float | None:
        """The environment's reward on the episode so far."""
        return self._env.score()["reward"]
