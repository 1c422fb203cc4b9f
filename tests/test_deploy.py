"""Deploying: the static KV cache, torch.export, ONNX (onnxruntime) and torch.compile, for every encoding.

Layers: static-cache generation equals dynamic-cache generation (batched, left-padded, eager and sdpa;
dynamic-cache decoding is itself tested against the full forward in test_model_matrix.py); an exported
program with dynamic batch and length gives eager's logits at a shape it was not traced with; the same
for the ONNX file run by onnxruntime; a fullgraph-compiled training step gives eager's loss, logits and
gradients; compiled static-cache decoding gives eager's tokens and logits.

Compiling on 2 CPU cores is slow, so the compile tests capture the whole graph with the ``aot_eager``
backend (dynamo + AOTAutograd, the part that decides whether a model compiles at all) for every
encoding and run the real ``inductor`` code generation on the encoding whose compiled path differs
from eager's (T5). Tolerances: 1e-5 absolute on logits of size ~1 is float32 rounding of a
different summation order (fused or reordered kernels); the traced graphs run the same kernels, and
agree to ~1e-7.
"""

import warnings

import pytest
import torch
from conftest import ENCODINGS, tiny_config
from torch.export import Dim

from modeling_study import StudyForCausalLM

ROUNDING = dict(rtol=1e-5, atol=1e-5)  # float32, a different order of summation (see the module docstring)


def tiny_model(encoding: str, attn: str = "sdpa", layers: int = 2) -> StudyForCausalLM:
    torch.manual_seed(0)
    config = tiny_config(position_encoding=encoding, num_hidden_layers=layers)
    return StudyForCausalLM._from_config(config, attn_implementation=attn).eval()


def left_padded_batch():
    """Two prompts, the first left-padded by 3 tokens: its positions (and biases) must ignore the pads."""
    ids = torch.randint(1, 99, (2, 7))
    mask = torch.ones_like(ids)
    ids[0, :3], mask[0, :3] = 0, 0
    return ids, mask


def generate(model, ids, mask, **kwargs):
    return model.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False, pad_token_id=0,
                          output_logits=True, return_dict_in_generate=True, **kwargs)


def assert_same_generation(out, reference):
    assert torch.equal(out.sequences, reference.sequences)
    for step, (logits, expected) in enumerate(zip(out.logits, reference.logits, strict=True)):
        torch.testing.assert_close(logits, expected, **ROUNDING, msg=lambda m: f"step {step}: {m}")


# -- static cache -----------------------------------------------------------------------------------


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_static_cache_generation_equals_dynamic(encoding, attn):
    """A static cache returns all max_cache_len slots (the empty ones masked), so biases are sized to them;
    keys keep their true positions under left padding (a bias built from slot indices would differ)."""
    model = tiny_model(encoding, attn)
    ids, mask = left_padded_batch()
    reference = generate(model, ids, mask)
    assert_same_generation(generate(model, ids, mask, cache_implementation="static"), reference)


# -- torch.export and ONNX ----------------------------------------------------------------------------

DYNAMIC = {"input_ids": {0: Dim("batch", max=64), 1: Dim("length", min=2, max=60)}}


class Logits(torch.nn.Module):
    """The causal LM as ``input_ids -> logits``: the signature an exported program or ONNX file serves."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, use_cache=False).logits


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_export_with_dynamic_batch_and_length(encoding):
    """Traced at (2, 12); run at (3, 17) and (1, 40), shapes it never saw. T5's bucket range used to be a
    data-dependent int, which export refused."""
    model = tiny_model(encoding, layers=1)
    program = torch.export.export(Logits(model), (torch.randint(1, 99, (2, 12)),), dynamic_shapes=DYNAMIC)
    for shape in ((3, 17), (1, 40)):
        ids = torch.randint(1, 99, shape)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(ids), model(ids).logits, **ROUNDING)


@pytest.fixture(scope="module")
def onnxruntime():
    return pytest.importorskip("onnxruntime", reason='ONNX export is optional: pip install -e ".[onnx]"')


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_onnx_export_runs_in_onnxruntime(encoding, onnxruntime, tmp_path):
    """``torch.onnx.export(..., dynamo=True)`` under ``torch.no_grad()`` (inference: with gradients on, a
    bias that needs one reaches sdpa, whose decomposition torch 2.13's ONNX exporter cannot reshape)."""
    pytest.importorskip("onnxscript", reason='ONNX export is optional: pip install -e ".[onnx]"')
    model = tiny_model(encoding, layers=1)
    path = tmp_path / f"{encoding}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(model), (torch.randint(1, 99, (2, 12)),), str(path), dynamo=True,
                          dynamic_shapes=DYNAMIC, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = torch.randint(1, 99, (3, 17))
    with torch.no_grad():
        expected = model(ids).logits
    torch.testing.assert_close(torch.from_numpy(session.run(None, {"input_ids": ids.numpy()})[0]), expected,
                               **ROUNDING)


# -- torch.compile ------------------------------------------------------------------------------------


def compiled_training_step(model, backend: str):
    """Loss, logits and gradients of one training step of ``torch.compile(model, fullgraph=True)``."""
    torch._dynamo.reset()  # one fresh compile per model: the recompile limit counts across instances
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    model.train()
    ids = torch.randint(1, 99, (2, 12))
    out = compiled(input_ids=ids, labels=ids)
    out.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    reference = model(input_ids=ids, labels=ids)
    reference.loss.backward()
    torch.testing.assert_close(out.logits, reference.logits, **ROUNDING)
    torch.testing.assert_close(out.loss, reference.loss, **ROUNDING)
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, **ROUNDING, msg=lambda m: f"{name}: {m}")


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_fullgraph_training_step_equals_eager(encoding):
    """One graph (fullgraph=True raises on any graph break), forward and backward traced by AOTAutograd."""
    assert StudyForCausalLM._can_compile_fullgraph
    compiled_training_step(tiny_model(encoding, layers=1), backend="aot_eager")


@pytest.mark.slow
def test_inductor_training_step_equals_eager():
    """The real code generation, for the encoding whose compiled path differs from eager's: T5 builds its
    whole bias for the compiler to fuse (no block-wise autograd function, which does not trace)."""
    compiled_training_step(tiny_model("t5", layers=1), backend="inductor")


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compiled_static_cache_decoding_equals_eager(encoding):
    """transformers' recipe: ``model.forward = torch.compile(model.forward, fullgraph=True)`` and a static
    cache. Two graphs in all (prefill, one decode step): a position read on the host would recompile
    every token, and fullgraph would refuse a host sync."""
    model = tiny_model(encoding, layers=1)
    ids, mask = left_padded_batch()
    reference = generate(model, ids, mask)
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    model.forward = torch.compile(model.forward, fullgraph=True, backend="eager")
    assert_same_generation(generate(model, ids, mask, cache_implementation="static"), reference)
    assert counters["stats"]["unique_graphs"] == 2, dict(counters["stats"])
