"""LoRA through the real PEFT client, as docs/conversion.md shows it.

PEFT looks its default ``target_modules`` up by ``model_type``, which knows ``llama`` but not
``study``: a bare ``LoraConfig(task_type="CAUSAL_LM")`` is refused, and the user names the modules.
Study uses Llama's module names, so Llama's choice ``["q_proj", "v_proj"]`` works, and so does
``"all-linear"``. The adapter must save, reload and merge exactly: the merged weight is the closed form
``W + (alpha / r) * B @ A`` (Hu et al. 2021, arXiv:2106.09685).
"""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from modeling_study import StudyForCausalLM

peft = pytest.importorskip("peft", reason="PEFT not installed: `pip install -e '.[dev]'` (or `pip install peft`)")
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def test_peft_has_no_default_target_modules_for_study():
    with pytest.raises(ValueError, match="Please specify `target_modules`"):
        get_peft_model(StudyForCausalLM(tiny_config()), LoraConfig(task_type="CAUSAL_LM"))


def test_lora_on_q_and_v_trains_saves_reloads_and_merges_exactly(tmp_path):
    base = StudyForCausalLM(tiny_config())
    base.save_pretrained(tmp_path / "base")
    lora = LoraConfig(task_type="CAUSAL_LM", target_modules=["q_proj", "v_proj"], r=4, lora_alpha=8)
    model = get_peft_model(base, lora)
    adapted = sorted(name for name, _ in model.named_modules() if name.endswith(".lora_A"))
    assert [name.removeprefix("base_model.model.model.") for name in adapted] == [
        f"layers.{i}.self_attn.{p}.lora_A" for i in range(2) for p in ("q_proj", "v_proj")]
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        n for n, _ in model.named_parameters() if ".lora_" in n}

    ids = torch.randint(1, 99, (2, 16))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):  # lora_B starts at zero: train, so the adapter changes the function
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    tuned = logits(model, ids)
    assert (tuned - logits(model.get_base_model().__class__.from_pretrained(tmp_path / "base"), ids)).abs().max() > 1e-3

    model.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(StudyForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "adapter").eval()
    assert torch.equal(logits(reloaded, ids), tuned)  # same weights, same operations: bit for bit

    q = reloaded.base_model.model.model.layers[0].self_attn.q_proj
    expected = q.base_layer.weight + (8 / 4) * q.lora_B["default"].weight @ q.lora_A["default"].weight
    merged = reloaded.merge_and_unload()
    assert type(merged) is StudyForCausalLM
    torch.testing.assert_close(merged.model.layers[0].self_attn.q_proj.weight, expected, atol=0, rtol=0)
    # x(W + sBA) vs xW + s(xA)B: the same sums in another order, float32 rounding of logits of size ~1
    torch.testing.assert_close(logits(merged, ids), tuned, atol=1e-5, rtol=0)


def test_all_linear_adapts_every_projection_but_not_the_output_head():
    model = get_peft_model(StudyForCausalLM(tiny_config()), LoraConfig(task_type="CAUSAL_LM", target_modules="all-linear"))
    adapted = {name.split(".")[-2] for name, _ in model.named_modules() if name.endswith(".lora_A")}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
