"""Packed, padding-free batches (transformers' ``DataCollatorWithFlattening``): several sequences in one
row, told apart only by ``position_ids`` restarting at 0.

A bounded encoding (``learned``) must check the position ids it will look up, not the row length: two
6-token sequences packed into 12 tokens fit a table of 8 positions. transformers' mask utilities turn
restarting position ids into a block-diagonal mask, so each sequence's logits must equal those of the
sequence run alone, and the loss equals the mean of the two sequences' token losses. They do so only
when no KV cache is built (``use_cache=False``): ``create_causal_mask`` looks for packing only without
a cache. ``LlamaForCausalLM`` behaves the same (with its default ``use_cache=True`` the second packed
sequence sees the first: 0.18 max logit difference measured on a tiny random Llama).
"""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config
from transformers import DataCollatorWithFlattening

from modeling_study import StudyForCausalLM


def packed_pair(length: int = 6):
    a, b = torch.randint(1, 99, (2, length)).tolist()
    batch = DataCollatorWithFlattening(return_tensors="pt")([{"input_ids": a}, {"input_ids": b}])
    return torch.tensor([a]), torch.tensor([b]), batch


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("encoding", ["learned", "alibi", "t5"])  # alibi, t5: biases read the packed ids
def test_packed_logits_equal_each_sequences_own(encoding, attn):
    model = StudyForCausalLM(tiny_config(position_encoding=encoding, max_position_embeddings=8,
                                         initializer_range=0.2, attn_implementation=attn)).eval()
    a, b, batch = packed_pair()
    assert batch["position_ids"].tolist() == [list(range(6)) * 2] and batch["input_ids"].shape == (1, 12)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        alone = torch.cat((model(a).logits, model(b).logits), dim=1)
    # the rows differ in length, so eager's softmax/matmul sums run over different widths: ~1e-6
    torch.testing.assert_close(packed, alone, atol=1e-5, rtol=0)
    with torch.no_grad():  # with a 2D mask given, nothing marks the boundary: b sees a, and the check above would fail
        unpacked = model(batch["input_ids"], position_ids=batch["position_ids"], attention_mask=torch.ones(1, 12)).logits
    assert (unpacked[:, 6:] - alone[:, 6:]).abs().max() > 0.1


def test_issue_reproduction_learned_table_of_8_takes_two_packed_sequences_of_6():
    model = StudyForCausalLM(tiny_config(position_encoding="learned", max_position_embeddings=8)).eval()
    a, b, batch = packed_pair()
    with torch.no_grad():
        out = model(**batch, use_cache=False)  # input_ids, labels, position_ids, as a Trainer step passes them
    # the collator marks each sequence's first label -100, so the loss is the mean over 5 + 5 predictions
    with torch.no_grad():
        logits = torch.cat((model(a).logits[0, :-1], model(b).logits[0, :-1]))
    targets = torch.cat((a[0, 1:], b[0, 1:]))
    expected = torch.nn.functional.cross_entropy(logits, targets)
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=0)


def test_bounded_encoding_still_refuses_positions_outside_its_table():
    model = StudyForCausalLM(tiny_config(position_encoding="learned", max_position_embeddings=8))
    _, _, batch = packed_pair(length=9)  # positions 0..8: 8 is outside a table of 8
    with pytest.raises(ValueError, match=r"position_ids reach 8 .* max_position_embeddings=8"):
        model(input_ids=batch["input_ids"], position_ids=batch["position_ids"])
    with pytest.raises(ValueError, match=r"A sequence of 9 tokens is longer than max_position_embeddings=8"):
        model(torch.randint(1, 99, (1, 9)))  # no ids given: positions run 0..8
