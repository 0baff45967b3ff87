"""A LoRA run's checkpoint, read by transformers and PEFT: the adapter PEFT loads onto the saved
base gives the logits of the merged model beside it, and PEFT's own merge gives its weights.

The checkpoint comes from a short `rlvr run` (SFT then GRPO on a random `micro` model, LoRA on
two projections), with the `rlvr` binary the Rust tests built (`RLVR_BIN`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_serve import rlvr_bin

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

EXP = """
[run]
name = "lora"
seed = 1
iterations = 2
tasks_per_iteration = 4
checkpoint_every = 2
eval_every = 0
[env]
id = "arith/arith-v0"
[env.config]
max_digits = 1
ops = ["+"]
system_prompt = false
[rollout]
group_size = 4
max_new_tokens = 8
[policy]
id = "lm/llama-v0"
[policy.config]
preset = "micro"
[policy.config.lora]
rank = 4
alpha = 8.0
targets = ["q_proj", "v_proj", "down_proj"]
[sft]
steps = 20
batch_size = 8
lr = 1e-2
[train]
lr = 1e-3
kl_coef = 0.05
"""


def test_peft_loads_the_adapter_of_a_lora_run(tmp_path: Path) -> None:
    exp = tmp_path / "exp.toml"
    exp.write_text(EXP)
    run = tmp_path / "run"
    subprocess.run([rlvr_bin(), "run", str(exp), "--out", str(run)], check=True, capture_output=True)
    policy = max((run / "checkpoints").iterdir()) / "policy"
    assert (policy / "adapter" / "adapter_config.json").is_file()

    merged = transformers.AutoModelForCausalLM.from_pretrained(policy).eval()
    base = transformers.AutoModelForCausalLM.from_pretrained(policy / "base").eval()
    adapted = peft.PeftModel.from_pretrained(base, policy / "adapter").eval()
    ids = torch.randint(0, merged.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = merged(ids).logits
        with adapted.disable_adapter():
            plain = adapted(ids).logits
        got = adapted(ids).logits
    assert (want - plain).abs().max() > 1e-3, "the adapter changed the model"
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()

    # PEFT's merge_and_unload gives the weights rlvr merged.
    unloaded = adapted.merge_and_unload().state_dict()
    for name, tensor in merged.state_dict().items():
        assert torch.allclose(unloaded[name], tensor, atol=1e-5), name
