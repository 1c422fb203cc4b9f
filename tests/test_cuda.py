"""On a CUDA GPU: every encoding against the CPU, flex against eager (forward and backward), caches, a bf16 Trainer.

Skipped without CUDA. Meant to take under two minutes on one GPU (flex compiles a kernel per score_mod and
dtype, about half of it). What it guards: the GPU paths the CPU suite cannot run -- flex's backward (the
T5 score_mod's gradient reaching its table), the automatic flex route in bf16, sdpa's CUDA kernels on
rows that see no key.
"""

import copy

import pytest
import torch
from conftest import ENCODINGS, tiny_config

from modeling_study import StudyForCausalLM, StudyForMaskedLM
from modeling_study import attention_paths as paths

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

LENGTH = 160  # two flex blocks of 128, a partial one included


def model_for(encoding, causal, implementation, dtype=torch.float32, **overrides):
    config = tiny_config(position_encoding=encoding, is_causal=causal, max_position_embeddings=256, **overrides)
    cls = StudyForCausalLM if causal else StudyForMaskedLM
    return cls._from_config(config, attn_implementation=implementation).to(dtype)


def padded_batch(device):
    """Row 1 left-padded (under a causal mask its pads see no key), row 0 full."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 99, (2, LENGTH), generator=generator)
    attention_mask = torch.ones_like(ids)
    attention_mask[1, :37] = 0
    weights = torch.randn(2, LENGTH, 99, generator=generator)  # every position in the loss
    return ids.to(device), attention_mask.to(device), weights.to(device)


def loss_and_grads(model, device):
    ids, attention_mask, weights = padded_batch(device)
    model.zero_grad()
    logits = model(ids, attention_mask=attention_mask).logits
    (logits.float() * weights).sum().backward()
    return logits.float().cpu(), {n: p.grad.float().cpu() for n, p in model.named_parameters() if p.grad is not None}


@pytest.fixture(autouse=True)
def _exact_float32():
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = previous


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_cuda_matches_cpu_in_float32(encoding, causal):
    """sdpa on each device (on the CPU T5 runs block-wise, on CUDA dense): logits and every gradient."""
    cpu = model_for(encoding, causal, "sdpa").train()
    cuda = copy.deepcopy(cpu).cuda()
    (logits, grads), (cuda_logits, cuda_grads) = loss_and_grads(cpu, "cpu"), loss_and_grads(cuda, "cuda")
    torch.testing.assert_close(cuda_logits, logits, rtol=1e-4, atol=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(cuda_grads[name], grad, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidirectional"])
@pytest.mark.parametrize("encoding", ["rope", "learned", "alibi", "t5"])
def test_flex_matches_eager_forward_and_backward(encoding, causal, dtype):
    """float32: flex equals eager. bfloat16: flex is no farther from float32 eager than bf16 eager is."""
    reference = model_for(encoding, causal, "eager").cuda().train()
    flex = copy.deepcopy(reference).to(dtype)
    flex.set_attn_implementation("flex_attention")
    assert flex.model.attention_path(torch.zeros(1, LENGTH, 32, device="cuda", dtype=dtype), LENGTH) == "flex"
    logits, grads = loss_and_grads(flex, "cuda")
    exact_logits, exact_grads = loss_and_grads(reference, "cuda")
    if dtype == torch.float32:
        torch.testing.assert_close(logits, exact_logits, rtol=1e-4, atol=1e-4)
        for name, grad in grads.items():
            torch.testing.assert_close(grad, exact_grads[name], rtol=1e-3, atol=1e-4, msg=name)
        return
    eager_bf16 = copy.deepcopy(reference).to(dtype)
    bf16_logits, bf16_grads = loss_and_grads(eager_bf16, "cuda")
    assert (logits - exact_logits).abs().max() <= 2 * (bf16_logits - exact_logits).abs().max() + 1e-3
    for name, grad in grads.items():
        error, baseline = (grad - exact_grads[name]).norm(), (bf16_grads[name] - exact_grads[name]).norm()
        assert error <= 2 * baseline + 1e-3 * exact_grads[name].norm(), name
    if encoding == "t5":  # the score_mod's gradient reached the table
        assert grads["model.position_encoding.relative_attention_bias.weight"].abs().sum() > 0


@pytest.mark.parametrize("encoding", ["alibi", "t5"])
def test_sdpa_in_bfloat16_routes_to_flex_and_float32_does_not(encoding, monkeypatch):
    model = model_for(encoding, True, "sdpa", dtype=torch.bfloat16).cuda()
    embeds = torch.zeros(1, LENGTH, 32, device="cuda", dtype=torch.bfloat16)
    assert model.model.attention_path(embeds, LENGTH) == "flex"
    assert model.model.attention_path(embeds.float(), LENGTH) == ("factored" if encoding == "alibi" else "dense")
    calls = []
    original = paths._flex_function
    monkeypatch.setattr(paths, "_flex_function", lambda device: calls.append(device) or original(device))
    with torch.no_grad():
        model(torch.randint(1, 99, (1, LENGTH), device="cuda"))
    assert len(calls) == model.config.num_hidden_layers


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_static_cache_decodes_as_the_dynamic_cache(encoding):
    model = model_for(encoding, True, "sdpa").cuda().eval()
    prompt = torch.randint(1, 99, (2, 12), device="cuda")
    attention_mask = torch.ones_like(prompt)
    attention_mask[1, :3] = 0
    settings = dict(attention_mask=attention_mask, max_new_tokens=8, do_sample=False, pad_token_id=0)
    dynamic = model.generate(prompt, **settings)
    static = model.generate(prompt, cache_implementation="static", **settings)
    assert torch.equal(dynamic, static)


@pytest.mark.parametrize("encoding", ["rope", "alibi", "t5"])
def test_bf16_trainer_smoke(encoding, tmp_path, monkeypatch):
    """A few bf16 Trainer steps (autocast over float32 weights; sdpa, so ALiBi and T5 run on flex): finite
    losses, every parameter trained (the T5 table through flex's score_mod gradient)."""
    from transformers import Trainer, TrainingArguments

    calls = []
    original = paths._flex_function
    monkeypatch.setattr(paths, "_flex_function", lambda device: calls.append(device) or original(device))

    model = model_for(encoding, True, "sdpa")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    generator = torch.Generator().manual_seed(0)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(1, 99, (16, LENGTH), generator=generator)]
    args = TrainingArguments(output_dir=str(tmp_path), bf16=True, max_steps=4, per_device_train_batch_size=4,
                             learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to=[])
    trainer = Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert bool(calls) == (encoding != "rope")
    for name, parameter in model.named_parameters():
        assert not torch.equal(parameter.detach().cpu(), before[name]), f"{name} did not train"
