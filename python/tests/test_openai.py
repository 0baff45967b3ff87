"""`rlvr serve --model` through the official `openai` client: chat and text completions,
log-probabilities, several choices, and a bad request answered in OpenAI's error shape."""

from __future__ import annotations

import openai
import pytest
from test_serve import serve


def test_openai_client_talks_to_rlvr_serve_model() -> None:
    with serve("--model", "preset:tiny", "--served-model-name", "tiny") as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny"]

        chat = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "system", "content": "Add."}, {"role": "user", "content": "2 + 3 = ?"}],
            max_tokens=6,
            n=3,
            seed=7,
            logprobs=True,
        )
        assert len(chat.choices) == 3
        for c in chat.choices:
            assert c.finish_reason in ("stop", "length")
            assert c.message.role == "assistant"
            assert c.logprobs is not None and c.logprobs.content is not None
            lps = [t.logprob for t in c.logprobs.content]
            assert 0 < len(lps) <= 6 and all(lp <= 0.0 for lp in lps)
            # vLLM's field: the sampled token ids, one per log-probability.
            assert len(c.model_extra["token_ids"]) == len(lps)
        assert chat.usage is not None and chat.usage.completion_tokens == sum(
            len(c.model_extra["token_ids"]) for c in chat.choices
        )
        # Greedy is deterministic; the seed makes sampling repeatable.
        again = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "2 + 3 = ?"}], max_tokens=6, temperature=0
        )
        twice = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "2 + 3 = ?"}], max_tokens=6, temperature=0
        )
        assert again.choices[0].message.content == twice.choices[0].message.content

        text = client.completions.create(model="tiny", prompt="1 + 1 =", max_tokens=4, logprobs=0)
        assert len(text.choices) == 1
        assert text.choices[0].logprobs is not None
        assert len(text.choices[0].logprobs.token_logprobs or []) == len(text.choices[0].model_extra["token_ids"])

        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="tiny", messages=[], max_tokens=4)
        assert bad.value.status_code == 400
        assert "messages" in str(bad.value.body)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError, match="stream"):
            client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=2
            )
