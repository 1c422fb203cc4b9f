"""modeling_study.py, the promises a forward pass does not exercise (found by mutation testing, docs/mutation/).

The tensor-parallel refusal and where it reads the config from, swapping embeddings (what
``resize_token_embeddings`` relies on), the classifier head's shape, and the ALiBi bias channel in
bfloat16.
"""

import pytest
import torch
from conftest import tiny_config

from modeling_study import StudyConfig, StudyForCausalLM, StudyForMaskedLM, StudyForSequenceClassification, StudyModel
from modeling_study.modeling_study import _check_tensor_parallel

SERVED = "none, integer, binary, sinusoidal, learned, rope"


@pytest.mark.parametrize("encoding", ["alibi", "t5"])
def test_tensor_parallelism_refuses_a_per_head_bias_and_names_what_it_serves(encoding):
    with pytest.raises(ValueError) as error:
        _check_tensor_parallel(tiny_config(position_encoding=encoding), "unused", {"tp_plan": "auto"})
    assert str(error.value) == (
        f"Tensor parallelism splits the attention heads across ranks, but position_encoding={encoding!r} adds a bias "
        f"to every head's scores, built for all heads at once. Load this model without tp_plan (one process, or "
        f"accelerate / data parallelism); tensor parallelism serves {SERVED}.")


def test_tensor_parallelism_serves_the_encodings_without_a_bias():
    for encoding in SERVED.split(", "):
        _check_tensor_parallel(tiny_config(position_encoding=encoding), "unused", {"tp_plan": "auto"})


def test_tensor_parallel_check_reads_the_config_where_from_pretrained_would(monkeypatch):
    """Called directly (no config object yet), it reads the config from the same place, revision and
    credentials as the model's own loading: every location keyword is passed on, nothing else."""
    seen = []

    def from_pretrained(where, **kwargs):
        seen.append((where, kwargs))
        return tiny_config(position_encoding="rope")

    monkeypatch.setattr(StudyConfig, "from_pretrained", from_pretrained)
    where_from = dict(revision="v2", cache_dir="/cache", token="hf_x", local_files_only=True, subfolder="sub")
    _check_tensor_parallel(None, "user/model", {**where_from, "tp_plan": "auto", "torch_dtype": "auto"})
    assert seen == [("user/model", where_from)]


def test_swapping_the_embeddings_and_the_masked_lm_head():
    model = StudyModel(tiny_config())
    new = torch.nn.Embedding(7, 32)
    model.set_input_embeddings(new)
    assert model.get_input_embeddings() is new

    masked = StudyForMaskedLM(tiny_config(is_causal=False))
    masked.resize_token_embeddings(120)  # through set_input_embeddings and set_output_embeddings
    assert masked.get_input_embeddings().weight.shape == (120, 32)
    assert masked.get_output_embeddings().weight.shape == (120, 32)
    assert masked(torch.tensor([[110, 119]])).logits.shape == (1, 2, 120)


def test_the_classifier_head_is_bias_free_like_llamas():
    model = StudyForSequenceClassification(tiny_config(num_labels=3))
    assert model.num_labels == 3 and model.score.bias is None and model.score.weight.shape == (3, 32)


def test_the_bias_channel_in_bfloat16_matches_eager():
    """sdpa folds ALiBi into an extra q/k channel (the slopes are a buffer in the model's dtype): in bfloat16
    it gives eager's logits."""
    torch.manual_seed(0)
    model = StudyForCausalLM(tiny_config(position_encoding="alibi")).to(torch.bfloat16).eval()
    ids = torch.randint(1, 99, (2, 12))
    with torch.no_grad():
        sdpa = model(ids).logits
        model.set_attn_implementation("eager")
        eager = model(ids).logits
    assert sdpa.dtype == torch.bfloat16
    torch.testing.assert_close(sdpa.float(), eager.float(), rtol=0, atol=0.05)  # bfloat16 has 8 bits of mantissa


# -- when tensor parallelism is asked for, and from_pretrained's checks -------------------------------------


class _Distributed:
    def __init__(self, **fields):
        self.__dict__.update(fields)


@pytest.mark.parametrize("kwargs, requested", [
    ({}, False),
    ({"tp_plan": "auto"}, True),
    ({"tp_plan": None}, False),
    ({"distributed_config": {}}, False),
    ({"distributed_config": {"tp_plan": "auto"}}, True),
    ({"distributed_config": {"tp_size": 2}}, True),
    ({"distributed_config": {"tp_size": 1}}, False),
    ({"distributed_config": {"tp_size": None}}, False),
    ({"distributed_config": _Distributed(tp_plan="auto")}, True),
    ({"distributed_config": _Distributed(tp_size=4)}, True),
    ({"distributed_config": _Distributed(tp_size=1)}, False),
    ({"distributed_config": _Distributed()}, False),
])
def test_what_counts_as_asking_for_tensor_parallelism(kwargs, requested):
    from modeling_study.modeling_study import _tensor_parallel_requested

    assert _tensor_parallel_requested(kwargs) is requested


@pytest.fixture
def saved_alibi(tmp_path):
    StudyForCausalLM(tiny_config(position_encoding="alibi")).save_pretrained(tmp_path / "sub")
    return tmp_path


def test_from_pretrained_refuses_tensor_parallelism_for_a_bias_wherever_the_path_is_given(saved_alibi):
    refusal = r"^Tensor parallelism splits the attention heads across ranks, but position_encoding='alibi'"
    with pytest.raises(ValueError, match=refusal):
        StudyForCausalLM.from_pretrained(saved_alibi / "sub", tp_plan="auto")
    with pytest.raises(ValueError, match=refusal):
        StudyForCausalLM.from_pretrained(pretrained_model_name_or_path=saved_alibi / "sub", tp_plan="auto")
    with pytest.raises(ValueError, match=refusal):  # the location keywords reach the config it reads
        StudyForCausalLM.from_pretrained(saved_alibi, subfolder="sub", tp_plan="auto")


def test_from_pretrained_checks_the_config_it_is_given(tmp_path):
    StudyForCausalLM(tiny_config(position_encoding="rope")).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"position_encoding='alibi' adds a bias to every head"):
        StudyForCausalLM.from_pretrained(tmp_path, config=tiny_config(position_encoding="alibi"), tp_plan="auto")


def test_weights_load_from_safetensors_only(tmp_path):
    model = StudyForCausalLM(tiny_config())
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError) as error:
        StudyForCausalLM.from_pretrained(tmp_path, use_safetensors=False)
    assert str(error.value) == "Study models load safetensors weights only; drop use_safetensors=False."
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle next to nothing else
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(OSError):
        StudyForCausalLM.from_pretrained(tmp_path)


# -- eager attention -----------------------------------------------------------------------------------


def test_eager_attention_in_bfloat16_takes_its_softmax_in_float32():
    """As Llama's: scores in the model's dtype, softmax in float32, weights cast back to it, then the values
    (torch's CPU softmax of bfloat16 also works in float32 inside: the cast back is what this pins)."""
    from modeling_study.modeling_study import eager_attention_forward

    torch.manual_seed(0)
    query, key, value = (torch.randn(1, 2, 5, 8, dtype=torch.bfloat16) for _ in range(3))
    module = torch.nn.Module()
    module.num_key_value_groups, module.training = 1, False
    output, weights = eager_attention_forward(module, query, key, value, None, scaling=0.35)
    scores = torch.matmul(query, key.transpose(2, 3)) * 0.35
    expected_weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(torch.bfloat16)
    assert weights.dtype == torch.bfloat16 and torch.equal(weights, expected_weights)
    assert torch.equal(output, torch.matmul(expected_weights, value).transpose(1, 2))


# -- the plain feed-forward, rotary layouts, attention dropout -------------------------------------------


@pytest.mark.parametrize("activation, function", [
    ("relu", torch.relu),
    ("gelu", torch.nn.functional.gelu),
    ("gelu_tanh", lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
])
def test_an_ungated_feed_forward_is_down_of_act_of_up(activation, function):
    from modeling_study.modeling_study import StudyMLP

    torch.manual_seed(0)
    mlp = StudyMLP(tiny_config(ffn_activation=activation, mlp_bias=True))
    assert not hasattr(mlp, "gate_proj")
    x = torch.randn(2, 3, 32)
    expected = function(x @ mlp.up_proj.weight.T + mlp.up_proj.bias) @ mlp.down_proj.weight.T + mlp.down_proj.bias
    torch.testing.assert_close(mlp(x), expected, rtol=0, atol=1e-6)


def test_interleaved_rotation_is_half_rotation_of_permuted_channels():
    """GPT-J's layout rotates channel pairs (2i, 2i+1), GPT-NeoX's (i, i + d/2), both at frequency i: the
    same model up to reordering each head's query and key channels, [0, 2, 4, ..., 1, 3, 5, ...]."""
    torch.manual_seed(0)
    interleaved = StudyForCausalLM(tiny_config(rope_layout="interleaved")).eval()
    half = StudyForCausalLM(tiny_config(rope_layout="half")).eval()
    half.load_state_dict(interleaved.state_dict())
    permuted = StudyForCausalLM(tiny_config(rope_layout="half")).eval()
    permuted.load_state_dict(interleaved.state_dict())
    head_dim = half.config.head_dim
    order = torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])
    with torch.no_grad():
        for layer in permuted.model.layers:
            for projection in (layer.self_attn.q_proj, layer.self_attn.k_proj):
                rows = projection.weight.view(-1, head_dim, projection.weight.shape[-1])
                projection.weight.copy_(rows[:, order].reshape_as(projection.weight))
    ids = torch.randint(1, 99, (2, 10))
    with torch.no_grad():
        got, expected, unpermuted = interleaved(ids).logits, permuted(ids).logits, half(ids).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(unpermuted, got)  # the same weights unpermuted: the layouts do differ


def test_attention_dropout_only_while_training():
    torch.manual_seed(0)
    config = tiny_config(attention_dropout=0.5)
    model = StudyForCausalLM(config).eval()
    ids = torch.randint(1, 99, (2, 10))
    with torch.no_grad():
        first, second = model(ids).logits, model(ids).logits
        without = StudyForCausalLM(tiny_config(attention_dropout=0.0))
        without.load_state_dict(model.state_dict())
        assert torch.equal(first, second) and torch.equal(first, without.eval()(ids).logits)
        model.train()
        assert not torch.allclose(model(ids).logits, model(ids).logits)


# -- key positions for a relative bias under a cache --------------------------------------------------


@pytest.mark.parametrize("encoding", ["alibi", "t5"])
@pytest.mark.parametrize("start", [0, 5])
def test_cached_decoding_with_explicit_positions_and_no_mask(encoding, start):
    """Keys continue the last query's position slot by slot: a decoded token sees the bias the full
    forward gives it, whatever position the sequence starts at."""
    torch.manual_seed(0)
    model = StudyForCausalLM(tiny_config(position_encoding=encoding)).eval()
    ids = torch.randint(1, 99, (2, 9))
    positions = torch.arange(start, start + 9)[None].expand(2, -1)
    with torch.no_grad():
        full = model(ids, position_ids=positions).logits[:, -1]
        prefix = model(ids[:, :8], position_ids=positions[:, :8], use_cache=True)
        cache = getattr(prefix, "cache", None) or prefix.past_key_values
        step = model(ids[:, 8:], position_ids=positions[:, 8:], cache=cache, use_cache=True).logits[:, -1]
    torch.testing.assert_close(step, full, rtol=0, atol=1e-5)


# -- saving and loading --------------------------------------------------------------------------------


def test_save_pretrained_names_every_registered_class_and_passes_its_arguments_on(tmp_path):
    import json

    StudyForCausalLM(tiny_config()).save_pretrained(tmp_path / "whole")
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_study.StudyConfig",
        "AutoModel": "modeling_study.StudyModel",
        "AutoModelForCausalLM": "modeling_study.StudyForCausalLM",
        "AutoModelForMaskedLM": "modeling_study.StudyForMaskedLM",
        "AutoModelForSequenceClassification": "modeling_study.StudyForSequenceClassification",
    }
    StudyForCausalLM(tiny_config()).save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    StudyForCausalLM(tiny_config()).save_pretrained(tmp_path / "other_rank", False)  # is_main_process, by position
    assert not (tmp_path / "other_rank" / "config.json").exists()


@pytest.mark.parametrize("by_keyword", [False, True])
def test_corrupted_weights_name_the_folder(by_keyword, tmp_path):
    StudyForCausalLM(tiny_config()).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(OSError) as error:
        if by_keyword:
            StudyForCausalLM.from_pretrained(pretrained_model_name_or_path=tmp_path)
        else:
            StudyForCausalLM.from_pretrained(tmp_path)
    assert str(error.value).startswith(f"The safetensors weights of {tmp_path!r} are corrupted or truncated (")
    assert str(error.value).endswith("). Save the model again, or delete the file and download it again.")


# -- the parameters themselves --------------------------------------------------------------------------


@pytest.mark.parametrize("biases", [False, True])
def test_parameters_are_llamas_name_for_name(biases):
    """The default study model is Llama's architecture: the same parameters, names and shapes (no bias
    anywhere, an unbiased head), and the bias switches add exactly Llama's."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = tiny_config(attention_bias=biases, mlp_bias=biases, tie_word_embeddings=False)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads, attention_bias=biases, mlp_bias=biases,
        tie_word_embeddings=False))
    shapes = lambda model: {name: tuple(p.shape) for name, p in model.state_dict().items()}  # noqa: E731
    assert shapes(StudyForCausalLM(config)) == shapes(llama)


def test_hidden_dropout_only_while_training():
    model = StudyForCausalLM(tiny_config(hidden_dropout=0.5)).eval()
    without = StudyForCausalLM(tiny_config(hidden_dropout=0.0))
    without.load_state_dict(model.state_dict())
    ids = torch.randint(1, 99, (2, 10))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, without.eval()(ids).logits)
        model.train()
        assert not torch.allclose(model(ids).logits, model(ids).logits)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_a_causal_model_without_a_mask_never_reads_ahead(implementation):
    model = StudyForCausalLM(tiny_config(position_encoding="rope"), ).eval()
    model.set_attn_implementation(implementation)
    ids = torch.randint(1, 99, (1, 10))
    changed = ids.clone()
    changed[0, 6:] = (changed[0, 6:] % 98) + 1
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits[:, :6], model(changed).logits[:, :6], rtol=0, atol=0)


def test_the_block_wise_t5_path_returns_no_attention_weights():
    """Like sdpa, the block-wise path never builds the weights: asked for them, it returns what sdpa returns
    (no weights: an empty tuple); eager returns one tensor per layer."""
    ids = torch.randint(1, 99, (1, 6))
    t5 = StudyForCausalLM(tiny_config(position_encoding="t5")).train()
    rope = StudyForCausalLM(tiny_config(position_encoding="rope")).train()
    assert t5(ids, output_attentions=True).attentions == rope(ids, output_attentions=True).attentions == ()
    t5.set_attn_implementation("eager")
    assert [tuple(a.shape) for a in t5(ids, output_attentions=True).attentions] == [(1, 4, 6, 6)] * 2


# -- inputs --------------------------------------------------------------------------------------------------


def test_a_bounded_encoding_takes_exactly_its_positions():
    model = StudyForCausalLM(tiny_config(position_encoding="learned", max_position_embeddings=16)).eval()
    with torch.no_grad():
        assert model(torch.randint(1, 99, (1, 16))).logits.shape == (1, 16, 99)
        # 20 tokens, 4 of them left padding: the real ones take positions 0..15
        mask = torch.ones(1, 20, dtype=torch.long)
        mask[0, :4] = 0
        assert model(torch.randint(1, 99, (1, 20)), attention_mask=mask).logits.shape == (1, 20, 99)
        with pytest.raises(ValueError) as error:
            model(torch.randint(1, 99, (1, 17)))
    assert str(error.value) == (
        "A sequence of 17 tokens is longer than max_position_embeddings=16, the number of positions the 'learned' "
        "encoding has. Shorten the input, or train with an encoding that runs at any length: none, integer, binary, "
        "sinusoidal, rope, alibi, t5.")


def test_the_cache_is_passed_once():
    from transformers import DynamicCache

    model = StudyForCausalLM(tiny_config())
    with pytest.raises(ValueError) as error:
        model(torch.randint(1, 99, (1, 4)), cache=DynamicCache(), past_key_values=DynamicCache())
    assert str(error.value) == ("Pass the KV cache once: as `cache` (transformers >= 5.24) or `past_key_values`, "
                                "not both.")


@pytest.mark.parametrize("types", [0, 1, 2])
def test_token_type_embeddings_exist_for_one_type_or_more(types):
    """RoBERTa has one token type, BERT two; zero means none (and no parameter for them)."""
    names = set(StudyModel(tiny_config(type_vocab_size=types)).state_dict())
    assert ("token_type_embeddings.weight" in names) is (types > 0)


def test_the_embedding_norm_normalises_what_enters_the_first_layer():
    """BERT's LayerNorm after the embeddings: at initialisation (gain 1, shift 0) every token enters the first
    layer with mean 0 and variance 1 over its channels; without it, with the embeddings' own scale."""
    def entering_first_layer(embedding_norm):
        model = StudyModel(tiny_config(embedding_norm=embedding_norm, norm_type="layernorm", initializer_range=0.5))
        seen = []
        model.layers[0].register_forward_pre_hook(
            lambda module, args, kwargs: seen.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
        with torch.no_grad():
            model.eval()(torch.randint(1, 99, (2, 7)))
        return seen[0]

    normed, raw = entering_first_layer(True), entering_first_layer(False)
    torch.testing.assert_close(normed.mean(-1), torch.zeros(2, 7), rtol=0, atol=1e-5)
    torch.testing.assert_close(normed.var(-1, unbiased=False), torch.ones(2, 7), rtol=0, atol=1e-3)
    assert raw.var(-1, unbiased=False).mean() < 0.5  # std 0.5 embeddings: variance about 0.25


@pytest.mark.parametrize("ids, bad", [([[0, 98]], None), ([[3, 99]], (3, 99)), ([[-1, 5]], (-1, 5)),
                                      ([[-2, 150]], (-2, 150))])
def test_the_accelerator_token_id_check(ids, bad):
    """On accelerators a bad id is a device-side assert, so ids are checked on the host first (on the CPU the
    embedding lookup raises, and forward turns it into the same message): the check itself, run here."""
    model = StudyModel(tiny_config())
    if bad is None:
        model._check_token_ids(torch.tensor(ids))
        return
    with pytest.raises(ValueError) as error:
        model._check_token_ids(torch.tensor(ids))
    assert str(error.value) == (
        f"Token ids must lie in [0, vocab_size=99); got ids from {bad[0]} to {bad[1]}. Does the tokenizer match "
        f"the model? If it has more tokens, call model.resize_token_embeddings(len(tokenizer)).")


def test_a_registered_attention_function_gets_the_callers_keyword_arguments():
    """Packed sequences on flash attention need ``cu_seq_lens_q`` and friends to reach the kernel: whatever
    keyword arguments the caller passes go through to the attention function (one registered here)."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    seen = []

    def recording(module, query, key, value, attention_mask, **kwargs):
        seen.append(kwargs.get("max_length_q"))
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("study_recording", recording)
    model = StudyForCausalLM(tiny_config(attn_implementation="study_recording")).eval()
    ids = torch.randint(1, 99, (1, 6))
    with torch.no_grad():
        out = model(ids, max_length_q=6)
    model.set_attn_implementation("sdpa")
    with torch.no_grad():
        torch.testing.assert_close(out.logits, model(ids).logits, rtol=0, atol=0)
    assert seen == [6] * model.config.num_hidden_layers


@pytest.mark.parametrize("encoding", ["alibi", "t5"])
def test_a_cached_chunk_of_several_tokens_with_explicit_positions(encoding):
    """Chunked prefill: three new tokens at once on top of a cache, positions given, no mask."""
    model = StudyForCausalLM(tiny_config(position_encoding=encoding)).eval()
    ids = torch.randint(1, 99, (2, 9))
    positions = torch.arange(4, 13)[None].expand(2, -1)
    with torch.no_grad():
        full = model(ids, position_ids=positions).logits[:, 6:]
        prefix = model(ids[:, :6], position_ids=positions[:, :6], use_cache=True)
        cache = getattr(prefix, "cache", None) or prefix.past_key_values
        chunk = model(ids[:, 6:], position_ids=positions[:, 6:], cache=cache, use_cache=True).logits
    torch.testing.assert_close(chunk, full, rtol=0, atol=1e-5)


def test_save_pretrained_keeps_the_auto_map_entries_it_does_not_write(tmp_path):
    import json

    model = StudyForCausalLM(tiny_config())
    model.config.auto_map = {"AutoModelForTokenClassification": "modeling_other.OtherForTokenClassification"}
    model.save_pretrained(tmp_path)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForTokenClassification"] == "modeling_other.OtherForTokenClassification"
    assert auto_map["AutoModelForCausalLM"] == "modeling_study.StudyForCausalLM"


# -- the attention path: one chooser, testable without a GPU (attention_paths.py) --------------------------

ALIBI_CAUSAL = frozenset({"dense", "score_mod", "factored"})
ALIBI_BIDIRECTIONAL = frozenset({"dense", "score_mod"})
T5 = frozenset({"dense", "bucketed", "score_mod"})
NO_BIAS = frozenset()


@pytest.mark.parametrize("forms, implementation, device, dtype, length, dropout, compiling, expected", [
    # CUDA, half precision, sdpa: flex for a bias it can take as a score_mod (measured: 2.6x faster, 1/120 memory)
    (ALIBI_CAUSAL, "sdpa", "cuda", torch.bfloat16, 2048, False, False, "flex"),
    (ALIBI_BIDIRECTIONAL, "sdpa", "cuda", torch.float16, 2048, False, False, "flex"),
    (T5, "sdpa", "cuda", torch.bfloat16, 2048, False, True, "flex"),
    (T5, "sdpa", "cuda", torch.bfloat16, 2048, True, False, "dense"),  # flex has no attention dropout
    (NO_BIAS, "sdpa", "cuda", torch.bfloat16, 2048, False, False, "dense"),  # sdpa's own flash kernel
    (ALIBI_CAUSAL, "sdpa", "cuda", torch.bfloat16, 1, False, False, "dense"),  # one decoded row: built whole
    # full precision: the factored channel wherever sdpa runs; the block-wise T5 kernel on the CPU only
    (ALIBI_CAUSAL, "sdpa", "cuda", torch.float32, 2048, False, False, "factored"),
    (ALIBI_CAUSAL, "sdpa", "cpu", torch.float32, 2048, False, False, "factored"),
    (ALIBI_CAUSAL, "sdpa", "cpu", torch.bfloat16, 2048, False, False, "dense"),
    (ALIBI_BIDIRECTIONAL, "sdpa", "cpu", torch.float32, 2048, False, False, "dense"),
    (T5, "sdpa", "cpu", torch.float32, 2048, False, False, "bucketed"),
    (T5, "sdpa", "cpu", torch.float64, 2048, False, False, "bucketed"),
    (T5, "sdpa", "cpu", torch.float32, 2048, True, False, "dense"),
    (T5, "sdpa", "cpu", torch.float32, 2048, False, True, "dense"),  # traced: the compiler fuses the gather
    (T5, "sdpa", "cuda", torch.float32, 2048, False, False, "dense"),
    # eager is the reference; flex_attention asks for flex, any encoding, decoding included
    (T5, "eager", "cuda", torch.bfloat16, 2048, False, False, "dense"),
    (NO_BIAS, "flex_attention", "cpu", torch.float32, 1, False, False, "flex"),
])
def test_choose_attention_path(forms, implementation, device, dtype, length, dropout, compiling, expected):
    from modeling_study.attention_paths import choose_attention_path

    assert choose_attention_path(forms, implementation, device, dtype, length, dropout, compiling) == expected
    assert choose_attention_path(forms, implementation, device, dtype, length, dropout, compiling,
                                 forced="dense") == "dense"


def test_the_model_asks_the_chooser_and_a_forced_path_must_fit_the_encoding():
    from modeling_study import StudyModel

    model = StudyModel(tiny_config(position_encoding="t5"))
    embeds = torch.zeros(1, 5, 32)
    assert model.attention_path(embeds, 5) == "bucketed"
    assert model.attention_path(embeds.double(), 1) == "dense"
    with torch.autocast("cpu", dtype=torch.bfloat16):  # computes in bfloat16: not the float32 block-wise kernel
        assert model.attention_path(embeds, 5) == "dense"
    model.config.attention_path = "flex"
    assert model.attention_path(embeds, 5) == "flex"
    model.config.attention_path = "factored"  # T5 has no factored form
    with pytest.raises(ValueError, match=r"attention_path='factored' cannot run position_encoding='t5'.*'bucketed'"):
        model.attention_path(embeds, 5)
    with pytest.raises(ValueError, match="attention_path must be one of"):
        tiny_config(attention_path="fast")
