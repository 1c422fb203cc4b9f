"""Translation: the sacreBLEU metrics against sacrebleu itself, a smoke training run (Seq2SeqTrainer, beam search,
BLEU/chrF with signatures, resume), the bad inputs, and the study section (plan, measure, report, verdicts)."""

from __future__ import annotations

import json

import pytest
import sacrebleu
import torch

from modeling_study.metrics import load_metric
from modeling_study.study.spec import FINISHED, RunSpec
from modeling_study.study.translation import (
    TRANSLATION_SETTINGS,
    measure_translation,
    paired_interval,
    plan_translation,
    report_translation,
    verdict,
)
from modeling_study.training.run import BadInputError
from modeling_study.training.translation import (
    ARGUMENT_CLASSES,
    TranslationArguments,
    TranslationTrainingArguments,
    encode_pairs,
    format_summary,
    joint_tokenizer,
    run_translation,
    tokenized_splits,
    with_source_eos,
)

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_decoder_layers=1, num_attention_heads=2,
            max_source_length=32, max_target_length=24, max_train_samples=64, max_eval_samples=4)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("joint-tokenizer")
    joint_tokenizer(directory, vocab_size=400, train_samples=300)
    return str(directory)


def arguments(tmp_path, tokenizer_dir, **overrides):
    fields = set(TranslationArguments.__dataclass_fields__)
    values = dict(TINY, tokenizer_name=tokenizer_dir, max_steps=4, per_device_train_batch_size=8, warmup_steps=2,
                  logging_steps=1, save_steps=2, generation_num_beams=2, disable_tqdm=True) | overrides
    return (TranslationArguments(**{k: v for k, v in values.items() if k in fields}),
            TranslationTrainingArguments(output_dir=str(tmp_path / "run"), **{k: v for k, v in values.items() if k not in fields}))


def test_metrics_equal_sacrebleu():
    hypotheses = ["Y dijo Dios: Sea la luz.", "el varón que no anduvo", "En el principio"]
    references = ["Y dijo Dios: Sea la luz: y fué la luz.", "Bienaventurado el varón que no anduvo", "En el principio crió Dios"]
    scores = load_metric("translation").compute(predictions=hypotheses, references=references)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=1e-9)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=1e-9)
    assert scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert scores["chrf_signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:")
    assert 0 < scores["bleu"] < 100 and 0 < scores["chrf"] < 100


def test_recipe_defaults():
    training_args = TranslationTrainingArguments(output_dir="runs/unused")
    assert (training_args.adam_beta1, training_args.adam_beta2, training_args.label_smoothing_factor) == (0.9, 0.98, 0.1)
    assert training_args.lr_scheduler_type == "inverse_sqrt" and training_args.predict_with_generate
    assert training_args.generation_num_beams == 4
    args = TranslationArguments()
    assert (args.position_encoding, args.norm_placement, args.shared_embeddings) == ("sinusoidal", "post", True)


@pytest.mark.slow  # a few training steps, beam-search evaluation, a resume: ~10 s
def test_smoke_run_scores_saves_and_resumes(tmp_path, tokenizer_dir):
    args, training_args = arguments(tmp_path, tokenizer_dir)
    results = run_translation(args, training_args)
    assert results["global_step"] == 4 and not results["diverged"]
    assert results["bleu_signature"].startswith("nrefs:1|") and "nc:6" in results["chrf_signature"]
    assert 0 <= results["bleu"] <= 100 and 0 <= results["chrf"] <= 100
    assert results["eval_pairs"] == 4 and results["num_beams"] == 2
    first = results["examples"][0]
    assert first["ref"] == "Gen 2:3" and first["reference"].startswith("Y bendijo Dios al día séptimo")
    saved = json.loads((tmp_path / "run" / "final" / "results.json").read_text())
    assert saved["bleu"] == results["bleu"]
    # resume from the step-2 checkpoint and train to step 6
    args, training_args = arguments(tmp_path, tokenizer_dir, max_steps=6, resume_from_checkpoint="last")
    resumed = run_translation(args, training_args)
    assert resumed["resumed_from"].endswith("checkpoint-4") and resumed["global_step"] == 6


def test_tokenizer_ends_every_source_with_eos_as_training_did(tokenizer_dir):
    """``generate(**tokenizer(src))`` must see what training saw: the ids the training pipeline builds."""
    from transformers import AutoTokenizer

    from modeling_study.data.parallel import load_pairs

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)  # as saved: no fix-up on load
    pairs = load_pairs("test", 40)
    for limit in (512, 16):  # whole verses, and verses cut by --max_source_length
        args = TranslationArguments(max_source_length=limit, max_target_length=limit)
        training_ids = encode_pairs(pairs, tokenizer, args)[0]["input_ids"]
        assert all(ids[-1] == tokenizer.eos_token_id for ids in training_ids)
        assert [tokenizer(p["en"], truncation=True, max_length=limit)["input_ids"] for p in pairs] == training_ids
    batch = tokenizer([p["en"] for p in pairs[:4]], return_tensors="pt", padding=True)
    lengths = batch["attention_mask"].sum(1).tolist()
    assert [row[:n] for row, n in zip(batch["input_ids"].tolist(), lengths)] == \
        encode_pairs(pairs[:4], tokenizer, TranslationArguments())[0]["input_ids"]
    assert tokenizer.decode(tokenizer("Jesus wept.")["input_ids"], skip_special_tokens=True) == "Jesus wept."


def test_with_source_eos_fixes_an_old_tokenizer_once(tmp_path):
    from modeling_study.tokenization import train_bpe_tokenizer
    from modeling_study.training.translation import joint_text

    old = train_bpe_tokenizer(dataset=joint_text(100), vocab_size=300, output_dir=tmp_path / "old")
    plain = old("Amen.")["input_ids"]
    assert plain[-1] != old.eos_token_id  # the byte-level tokenizer adds nothing by itself
    fixed = with_source_eos(old)
    assert fixed("Amen.")["input_ids"] == plain + [old.eos_token_id]
    assert with_source_eos(fixed)("Amen.")["input_ids"] == plain + [old.eos_token_id]  # idempotent
    assert fixed("Amen.", add_special_tokens=False)["input_ids"] == plain


def test_truncation_is_counted_and_warned(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    pairs = [{"en": "a", "es": "b"}, {"en": "In the beginning God created", "es": "En el principio crió Dios"}]
    lengths = [len(tokenizer(p[lang], add_special_tokens=False)["input_ids"]) for p in pairs for lang in ("en", "es")]
    args = TranslationArguments(max_source_length=3, max_target_length=3)
    columns, cut = encode_pairs(pairs, tokenizer, args)
    assert cut == {"sources": 1, "targets": 1, "longest_source": lengths[2] + 1, "longest_target": lengths[3] + 1}
    assert [len(ids) for ids in columns["labels"]] == [lengths[1] + 1, 3]
    with pytest.warns(UserWarning, match=r"--max_target_length 8 cuts \d+ of 16 training targets"):
        splits = tokenized_splits(TranslationArguments(max_source_length=8, max_target_length=8, max_train_samples=16,
                                                       max_eval_samples=2), tokenizer)
    assert splits["train_cut"]["targets"] > 0 and "validation" not in splits


def test_validation_flags():
    from transformers import HfArgumentParser

    args, training_args = HfArgumentParser(ARGUMENT_CLASSES).parse_args_into_dataclasses(
        args=["--output_dir", "runs/unused", "--eval_strategy", "steps", "--save_steps", "100",
              "--average_last_n", "2", "--max_validation_samples", "50", "--generation_length_penalty", "1.2",
              "--generation_no_repeat_ngram_size", "3"])
    assert training_args.eval_steps == 100 and training_args.load_best_model_at_end
    assert training_args.metric_for_best_model == "bleu" and training_args.greater_is_better
    assert (args.average_last_n, args.max_validation_samples) == (2, 50)
    assert (args.generation_length_penalty, args.generation_no_repeat_ngram_size) == (1.2, 3)
    _, off = HfArgumentParser(ARGUMENT_CLASSES).parse_args_into_dataclasses(args=["--output_dir", "runs/unused"])
    assert not off.load_best_model_at_end  # nothing to select on without validation
    assert (TranslationArguments().max_source_length, TranslationArguments().max_target_length) == (160, 160)


@pytest.mark.slow  # 4 steps, two beam-search validations, the test split, the baselines: ~20 s
def test_validation_during_training_selects_the_best_checkpoint(tmp_path, tokenizer_dir):
    args, training_args = arguments(tmp_path, tokenizer_dir, eval_strategy="steps", max_validation_samples=3,
                                    early_stopping_patience=5)  # wired in (the callback checks its settings)
    results = run_translation(args, training_args)  # the crash: "didn't pass an eval_dataset"
    assert [entry["step"] for entry in results["validation_history"]] == [2, 4]
    assert all(0 <= entry["bleu"] <= 100 and 0 <= entry["chrf"] <= 100 for entry in results["validation_history"])
    best = max(results["validation_history"], key=lambda e: e["bleu"])  # first of equals, as the Trainer keeps it
    assert results["best_checkpoint"].endswith(f"checkpoint-{best['step']}")
    assert results["selected"] == f"best validation bleu: checkpoint-{best['step']}"
    assert (results["validation_bleu"], results["validation_chrf"]) == (best["bleu"], best["chrf"])
    assert results["validation_pairs"] == 3 and results["eval_pairs"] == 4
    for directory in (tmp_path / "run", tmp_path / "run" / "final"):
        lines = (directory / "hypotheses.test.txt").read_text(encoding="utf-8").split("\n")
        assert len(lines) == 5 and lines[-1] == ""  # every hypothesis, one a line
        assert lines[0] == results["examples"][0]["hypothesis"]
    assert set(results["baselines"]) == {"retrieval", "constant", "copy"}
    assert all(0 <= b["bleu"] <= 100 for b in results["baselines"].values())
    summary = format_summary(results)
    assert "same verses, baselines (no model): retrieval BLEU " in summary and "validation: BLEU " in summary
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert "| this model |" in card and "| baseline: the English source copied unchanged |" in card
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["baselines"] == results["baselines"] and saved["truncated"]["train"]["targets"] > 0


@pytest.mark.slow  # 3 steps with a checkpoint each, then averaging: ~15 s
def test_average_last_n_checkpoints(tmp_path, tokenizer_dir):
    from safetensors.torch import load_file

    args, training_args = arguments(tmp_path, tokenizer_dir, max_steps=3, save_steps=1, save_total_limit=None,
                                    average_last_n=2, baselines=False)
    results = run_translation(args, training_args)
    assert results["selected"] == "average of checkpoint-2, checkpoint-3" and results["baselines"] is None
    run = tmp_path / "run"
    two, three = load_file(run / "checkpoint-2" / "model.safetensors"), load_file(run / "checkpoint-3" / "model.safetensors")
    final = load_file(run / "final" / "model.safetensors")
    assert set(final) == set(two)
    for key in final:
        assert torch.allclose(final[key], (two[key].double() + three[key].double()).div(2).float(), atol=1e-6), key
    assert any(not torch.equal(two[key], three[key]) for key in two)  # the two steps did differ


def test_source_longer_than_the_learned_table(tmp_path, tokenizer_dir):
    args, training_args = arguments(tmp_path, tokenizer_dir, position_encoding="learned", max_position_embeddings=16)
    with pytest.raises(BadInputError, match="--max_source_length 32 is longer than max_position_embeddings=16"):
        run_translation(args, training_args)


def test_mismatched_tokenizer(tmp_path, tokenizer_dir):
    from modeling_study import StudyForConditionalGeneration, StudySeq2SeqConfig

    model_dir = tmp_path / "other-model"
    StudyForConditionalGeneration(StudySeq2SeqConfig(vocab_size=99, hidden_size=32, intermediate_size=64,
                                                     num_hidden_layers=1, num_attention_heads=2, pad_token_id=0,
                                                     decoder_start_token_id=0)).save_pretrained(model_dir)
    args, training_args = arguments(tmp_path, tokenizer_dir, model_name_or_path=str(model_dir))
    with pytest.raises(BadInputError, match=r"the tokenizer \(400 tokens, pad id 2\) does not match the model "
                                            r"\(vocab_size 99, pad id 0\)"):
        run_translation(args, training_args)


@pytest.mark.parametrize(("overrides", "match"), [
    (dict(source_lang="es", target_lang="es"), "--source_lang and --target_lang are both 'es'"),
    (dict(source_lang="de"), r"--source_lang must be one of \['en', 'es'\], got 'de'"),
    (dict(tokenizer_name="/nonexistent/tokenizer"), "--tokenizer_name /nonexistent/tokenizer: no such folder"),
    (dict(average_last_n=1), "--average_last_n must be 0 \\(off\\) or >= 2 checkpoints, got 1"),
    (dict(average_last_n=3, save_total_limit=2), "--average_last_n 3 needs that many checkpoints kept"),
    (dict(early_stopping_patience=2), "--early_stopping_patience needs validation during training"),
    (dict(max_validation_samples=0), "--max_validation_samples must be >= 1, got 0"),
])
def test_bad_arguments(tmp_path, tokenizer_dir, overrides, match):
    args, training_args = arguments(tmp_path, tokenizer_dir, **overrides)
    with pytest.raises(BadInputError, match=match):
        run_translation(args, training_args)


# -- the study section ----------------------------------------------------------------------------------------


def test_plan():
    assert plan_translation("default", [1, 2]) == [] and TRANSLATION_SETTINGS["default"] is None
    assert set(TRANSLATION_SETTINGS) == {"smoke", "gpu_smoke", "default", "long", "gpu"}
    assert TRANSLATION_SETTINGS["gpu"] is not None
    specs = plan_translation("smoke", [1, 2])
    assert [s.labels for s in specs] == [
        {"question": q, "variant": v, "seed": seed} for seed in (1, 2)
        for q, v in (("positions", "sinusoidal"), ("positions", "learned"), ("warmup", "post, no warmup"))]
    assert len({s.name for s in specs}) == 6 and all(isinstance(s, RunSpec) and s.experiment == "translation" for s in specs)
    no_warmup = next(s for s in specs if s.labels["variant"] == "post, no warmup")
    assert no_warmup.train["warmup_steps"] == 0 and no_warmup.train["position_encoding"] == "sinusoidal"
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        plan_translation("huge", [1])


def test_interval_and_verdicts_by_hand():
    mean, low, high = paired_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(2) = 4.303: 2 +- 4.303 / sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - 4.303 / 3**0.5, 2.0 + 4.303 / 3**0.5))
    assert verdict("greater", (5.0, 2.0, 8.0))[0] == "agrees"
    assert verdict("greater", (-5.0, -8.0, -2.0))[0] == "disagrees"
    assert verdict("greater", (1.0, -1.0, 3.0))[0] == "inconclusive at this budget"
    assert verdict("equal", (0.1, -0.4, 0.6))[0] == "agrees"
    assert verdict("equal", (0.1, -3.0, 3.2))[0] == "inconclusive at this budget"
    assert verdict("equal", (3.0, 2.0, 4.0))[0] == "disagrees"
    assert verdict("greater", None) == ("inconclusive at this budget", "fewer than two seeds: no interval")


@pytest.mark.slow  # six tiny runs (2 seeds x 3 variants)
def test_smoke_study_measures_and_reports(tmp_path):
    runs = []
    for spec in plan_translation("smoke", [1, 2]):
        result = measure_translation(spec, tmp_path / "runs" / spec.name.replace(" ", "-").replace(",", ""))
        assert result["status"] == FINISHED and result["bleu_signature"].startswith("nrefs:1")
        json.dumps(result)  # JSON-able
        runs.append({"labels": spec.labels, "experiment": spec.experiment, **result})
    assert len(list((tmp_path / "runs").glob("translation-tokenizer-*"))) == 1  # trained once, shared
    text = report_translation(runs, tmp_path / "report")
    assert "Vaswani et al. 2017, arXiv:1706.03762, Table 3 row (E)" in text
    assert "Xiong et al. 2020, arXiv:2002.04745" in text
    assert text.count("**Verdict: ") == 2 and "(n=2)" in text
    assert "| 1 | " in text and "| 2 | " in text
    assert (tmp_path / "report" / "translation_losses.png").is_file()
