"""TRL's GRPOTrainer driving rlvr's rewards and environments, on CPU, with a tiny random Qwen2
model and a byte-level tokenizer built here (no model hub)."""

import pytest
from helpers import tiny_tokenizer

import rlvr

trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

def tiny_model(vocab_size: int):
    import torch

    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    return transformers.Qwen2ForCausalLM(config)


def grpo_config(tmp_path, **extra):
    return trl.GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-4,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=0,
        **extra,
    )


class Spy:
    """Wraps a reward function and keeps what it was given and what it returned."""

    def __init__(self, func):
        self.func = func
        self.__name__ = func.__name__
        self.calls = []

    def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        out = self.func(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        self.calls.append((completions, kwargs, out))
        return out


SIMPLE_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_grpo_trainer_logs_rlvr_rewards(tmp_path):
    tokenizer = tiny_tokenizer(SIMPLE_TEMPLATE)
    rows = rlvr.tasks("arith/arith-v0", n=8, config={"max_digits": 1})
    dataset = datasets.Dataset.from_list(rows)
    exact = Spy(rlvr.Reward("answer/exact").as_trl())
    math = Spy(rlvr.Reward("math/equivalence").as_trl())
    trainer = trl.GRPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=[exact, math],
        args=grpo_config(tmp_path),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "rewards/answer_exact/mean" in entry]
    assert len(logs) == 2, trainer.state.log_history
    assert len(exact.calls) == 2 and len(math.calls) == 2
    for spy, name in ((exact, "answer_exact"), (math, "math_equivalence")):
        for (completions, kwargs, out), entry in zip(spy.calls, logs):
            assert {"answer", "question", "rlvr_task"} <= kwargs.keys()
            assert all(isinstance(c, list) and c[0]["role"] == "assistant" for c in completions)
            # What TRL logged is what our function returned for those completions ...
            assert entry[f"rewards/{name}/mean"] == pytest.approx(sum(out) / len(out))
            # ... and that is what the reward gives them scored directly.
            tasks = [{"rlvr_task": t} for t in kwargs["rlvr_task"]]
            direct = [row["reward"] for row in spy.func.reward.score_batch(tasks, completions)]
            assert out == direct


def test_grpo_trainer_runs_a_multi_turn_rlvr_environment(tmp_path, letters_env):
    from trl.chat_template_utils import qwen3_chat_template

    tokenizer = tiny_tokenizer(qwen3_chat_template)
    env = rlvr.Env("python/env-v0", {"path": letters_env})
    rows = rlvr.tasks("python/env-v0", n=4, config={"path": letters_env})
    factory = env.as_trl_env()
    resets = []

    class Recording(rlvr.RlvrEnv):
        def reset(self, **row):
            resets.append(row)
            return super().reset(**row)

    trainer = trl.GRPOTrainer(
        model=tiny_model(len(tokenizer)),
        args=grpo_config(tmp_path, max_tool_calling_iterations=2),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        environment_factory=lambda: Recording(*factory.args),
    )
    trainer.train()

    logged = [entry for entry in trainer.state.log_history if "rewards/Recording/mean" in entry]
    assert len(logged) == 2, trainer.state.log_history
    assert len(resets) >= 8 and all("rlvr_task" in row for row in resets)
    # A random model never commits the right count through the tool, so the reward is 0, not None.
    assert all(entry["rewards/Recording/mean"] == 0.0 for entry in logged)


def test_the_trl_environment_scores_what_its_tool_was_given(letters_env):
    env = rlvr.Env("python/env-v0", {"path": letters_env}).as_trl_env()()
    row = rlvr.tasks("python/env-v0", n=1, config={"path": letters_env})[0]
    assert env.reset(**row) is None
    assert env.get_reward() == 0.0
    assert env.act("999") == "No, try again."
    assert env.act(str(row["count"])) == "The episode is over."
    assert env.get_reward() == 1.0
    assert env.act("1").startswith("error: step called after the episode ended")
