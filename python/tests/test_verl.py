"""verl loading rlvr's compute_score the way its trainer does: a file named in
`custom_reward_function.path`, called by verl's own reward manager on decoded responses."""


import pytest

import rlvr

verl_reward = pytest.importorskip("verl.trainer.ppo.reward")
omegaconf = pytest.importorskip("omegaconf")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers import tiny_tokenizer

REWARD_FILE = '''
import rlvr

_math = rlvr.Reward("math/equivalence").as_verl()
_sql = rlvr.Reward("sql/execution-match").as_verl()


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    scorer = _sql if data_source.startswith("sql") else _math
    return scorer(data_source, solution_str, ground_truth, extra_info)
'''


@pytest.fixture
def compute_score(tmp_path):
    path = tmp_path / "rlvr_reward.py"
    path.write_text(REWARD_FILE)
    config = omegaconf.OmegaConf.create(
        {"reward": {"custom_reward_function": {"path": str(path), "name": "compute_score", "reward_kwargs": {}}}}
    )
    return verl_reward.get_custom_reward_fn(config)


def verl_rows():
    """(data_source, ground_truth, extra_info, response, expected score) as verl's datasets hold them."""
    rows = []
    for i, task in enumerate(rlvr.tasks("sql/text2sql-v0", n=4)):
        query = task["gold"] if i % 2 == 0 else "SELECT 1"
        response = f"```sql\n{query}\n```"
        rows.append(("sql/text2sql", task["rlvr_task"], {"index": i, "rlvr_task": task["rlvr_task"]}, response, 1.0 - i % 2))
    for i, answer in enumerate(["72", "\\frac{3}{4}", "x^2-1"]):
        response = ["The total is $\\boxed{72}$.", "so 0.75", "\\boxed{(x-1)(x+1)}"][i]
        rows.append(("openai/gsm8k", answer, {"index": i, "split": "train"}, response, [1.0, 1.0, 1.0][i]))
    rows.append(("openai/gsm8k", "72", {"index": 9}, "The total is 27.", 0.0))
    return rows


def test_verl_loads_and_calls_the_custom_reward(compute_score):
    for data_source, ground_truth, extra_info, response, expected in verl_rows():
        out = compute_score(data_source=data_source, solution_str=response, ground_truth=ground_truth, extra_info=extra_info)
        assert out["score"] == expected, (data_source, ground_truth, response, out)
        assert all(isinstance(v, float) for v in out.values())


def test_verl_reward_manager_scores_decoded_responses(compute_score):
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    tokenizer = tiny_tokenizer(None)
    manager = NaiveRewardManager(omegaconf.OmegaConf.create({}), tokenizer, compute_score)
    for data_source, ground_truth, extra_info, response, expected in verl_rows():
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        pad = 4
        responses = torch.tensor([ids + [tokenizer.pad_token_id] * pad])
        prompt = torch.tensor([[1, 2]])
        attention = torch.tensor([[1, 1] + [1] * len(ids) + [0] * pad])
        data = DataProto.from_dict(
            tensors={"prompts": prompt, "responses": responses, "attention_mask": attention},
            non_tensors={
                "data_source": [data_source],
                "reward_model": [{"style": "rule", "ground_truth": ground_truth}],
                "extra_info": [dict(extra_info)],
            },
        )
        result = manager.loop.run_until_complete(manager.run_single(data))
        assert result["reward_score"] == expected, (data_source, response, result)
        assert result["reward_extra_info"]["score"] == expected
