"""The translate command (modeling_study.translate, scripts/translate.py) end to end on a tiny random model saved
with its joint tokenizer: file in, lines out (same count, order kept), stdin/stdout, flags reaching generate,
bad inputs rejected with one-line errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modeling_study import StudyForConditionalGeneration, StudySeq2SeqConfig
from modeling_study.translate import build_parser, load_translator, main, translate_lines
from modeling_study.training.translation import joint_tokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
LINES = ["In the beginning God created the heaven and the earth.", "", "Jesus wept.",
         "And God said, Let there be light: and there was light.", "  And the evening and the morning were the first day.  ",
         "Amen."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random study encoder-decoder with the joint tokenizer, saved as a training run saves one."""
    directory = tmp_path_factory.mktemp("tiny-translator")
    tokenizer = joint_tokenizer(directory / "tokenizer", vocab_size=400, train_samples=300)
    config = StudySeq2SeqConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_decoder_layers=1, num_attention_heads=2, pad_token_id=tokenizer.pad_token_id,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                decoder_start_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = StudyForConditionalGeneration(config)
    model.generation_config.update(decoder_start_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                   max_length=7, num_beams=1)
    # a random model's likeliest token is <s>; forbid the specials but </s> so that lines come out non-empty
    # and differ from one source to another (the order check below needs that)
    model.generation_config.suppress_tokens = [tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id,
                                               tokenizer.mask_token_id]
    model.save_pretrained(directory / "final")
    tokenizer.save_pretrained(directory / "final")
    return directory / "final"


def test_file_in_lines_out_same_count_order_kept(model_dir, tmp_path):
    source, target = tmp_path / "in.en.txt", tmp_path / "out.es.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    assert main([str(model_dir), str(source), "--output", str(target), "--batch_size", "2", "--quiet"]) == 0
    outputs = target.read_text(encoding="utf-8").split("\n")
    assert outputs[-1] == "" and len(outputs[:-1]) == len(LINES)  # one line per input line, newline-terminated
    outputs = outputs[:-1]
    assert outputs[1] == ""  # a blank line stays blank
    model, tokenizer = load_translator(str(model_dir), "cpu")
    one_by_one = [translate_lines([line], model, tokenizer, batch_size=1)[0] for line in LINES]
    assert outputs == one_by_one  # batching by length (and padding) keeps every line in its place
    assert all(line for i, line in enumerate(outputs) if i != 1) and len(set(outputs)) >= 3


def test_stdin_to_stdout_with_progress_on_stderr(model_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Jesus wept.\nAmen.\n"))
    assert main([str(model_dir), "--max_new_tokens", "3"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "translating" in captured.err  # the tqdm bar goes to stderr, never into the translations


def test_flags_parse_and_reach_generate(model_dir, tmp_path, monkeypatch):
    args = build_parser().parse_args([str(model_dir), "in.txt", "-o", "out.txt", "--num_beams", "3", "--length_penalty",
                                      "0.6", "--no_repeat_ngram_size", "2", "--max_new_tokens", "5", "--batch_size", "4"])
    assert (args.model, args.input, args.output) == (str(model_dir), "in.txt", "out.txt")
    assert (args.num_beams, args.length_penalty, args.no_repeat_ngram_size, args.max_new_tokens, args.batch_size) == \
        (3, 0.6, 2, 5, 4)
    defaults = build_parser().parse_args([str(model_dir)])
    assert (defaults.input, defaults.output, defaults.num_beams, defaults.batch_size) == ("-", "-", None, 32)

    calls = []
    original = StudyForConditionalGeneration.generate

    def recording(self, *a, **kwargs):
        calls.append({k: v for k, v in kwargs.items() if k not in ("input_ids", "attention_mask")}
                     | {"batch": kwargs["input_ids"].shape[0], "last_ids": kwargs["input_ids"][:, -1].tolist()})
        return original(self, *a, **kwargs)

    monkeypatch.setattr(StudyForConditionalGeneration, "generate", recording)
    source = tmp_path / "in.txt"
    source.write_text("Jesus wept.\nAmen.\nIn the beginning.\n", encoding="utf-8")
    assert main([str(model_dir), str(source), "-o", str(tmp_path / "out.txt"), "--num_beams", "2",
                 "--length_penalty", "1.5", "--no_repeat_ngram_size", "2", "--max_new_tokens", "4",
                 "--batch_size", "2", "--quiet"]) == 0
    assert [c["batch"] for c in calls] == [2, 1]
    assert all(c["num_beams"] == 2 and c["length_penalty"] == 1.5 and c["no_repeat_ngram_size"] == 2
               and c["max_length"] == 5 for c in calls)
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 3
    # every source the model saw ends with </s> (padding after it), as in training
    _, tokenizer = load_translator(str(model_dir), "cpu")
    assert calls[1]["last_ids"] == [tokenizer.eos_token_id]


@pytest.mark.parametrize(("argv", "message"), [
    (["{missing}", "{input}"], "no model folder {missing}: give the folder a training run wrote"),
    (["{tmp}", "{input}"], "{tmp} holds no config.json: not a saved model folder"),
    (["{model}", "{empty}"], "{empty} holds no text to translate"),
    (["{model}", "{blank}"], "{blank} holds no text to translate"),
    (["{model}", "{tmp}/nope.txt"], "input file {tmp}/nope.txt not found"),
    (["{model}", "{input}", "--num_beams", "0"], "argument --num_beams: expected an integer >= 1, got 0"),
    (["{model}", "{input}", "--batch_size", "-3"], "argument --batch_size: expected an integer >= 1, got -3"),
    (["{model}", "{input}", "--max_new_tokens", "many"], "argument --max_new_tokens: expected an integer >= 1, got 'many'"),
    (["{model}", "{input}", "--no_repeat_ngram_size", "-1"], "argument --no_repeat_ngram_size: expected an integer >= 0"),
    (["{model}", "{input}", "--length_penalty", "nan"], "argument --length_penalty: expected a finite number, got 'nan'"),
    (["{model}", "{input}", "--output", "{tmp}/no/such/dir/out.txt"], "--output {tmp}/no/such/dir/out.txt: no folder"),
    (["{model}", "{input}", "--beams", "2"], "unrecognized arguments: --beams 2"),
])
def test_bad_inputs_one_line_errors(model_dir, tmp_path, capsys, argv, message):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    (tmp_path / "in.txt").write_text("Amen.\n")
    names = dict(missing=str(tmp_path / "missing-model"), tmp=str(tmp_path), model=str(model_dir),
                 empty=str(tmp_path / "empty.txt"), blank=str(tmp_path / "blank.txt"), input=str(tmp_path / "in.txt"))
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(**names) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: translate [-h]") and len(err) == 2  # usage + one error line, no traceback
    assert err[1].startswith("translate: error: ") and message.format(**names) in err[1]


def test_not_an_encoder_decoder(tmp_path, capsys):
    from modeling_study import StudyConfig, StudyForCausalLM

    StudyForCausalLM(StudyConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2)).save_pretrained(tmp_path / "causal")
    (tmp_path / "in.txt").write_text("Amen.\n")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "causal"), str(tmp_path / "in.txt")])
    assert "is not an encoder-decoder (model_type 'study')" in capsys.readouterr().err


@pytest.mark.slow  # a subprocess importing torch and transformers: ~10 s
def test_script_wrapper(model_dir, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "translate.py"), str(model_dir), "--quiet",
                           "--max_new_tokens", "3"], input="Jesus wept.\n\nAmen.\n", capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split("\n")) == 4 and done.stdout.split("\n")[1] == ""
    bad = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "translate.py"), str(tmp_path / "nothing")],
                         input="Amen.\n", capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("translate: error: no model folder")
