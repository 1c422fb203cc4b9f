"""Model cards for study models, made with ``huggingface_hub``'s ``ModelCard`` / ``ModelCardData``.

``build_model_card(config, ...)`` describes one checkpoint: Hub metadata (library, license, tags,
pipeline tag, datasets, and a ``model-index`` of evaluation results when known), a section on this
model's architecture choices, training and results, and then the general card for every study
model, ``model_card.md``.

Where ``model_card.md`` lives: the canonical copy is inside the package
(``modeling_study/model_card.md``, shipped as package data and read with ``importlib.resources``,
so a pip-installed package has it); the copy at the top of the repository, where readers look for
it, is byte-identical, and a test keeps the two equal.

``push_to_hub_with_card(model, repo_id, tokenizer=...)`` pushes model, tokenizer and this card, and
returns the commit id to pin as ``revision``. This module is tooling: the remote-code files never
import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData

GENERAL_CARD = "model_card.md"
REPOSITORY = "modeling-study"


def general_card_text() -> str:
    """The card for study models in general (``model_card.md``), as shipped in the package."""
    return resources.files(__package__).joinpath(GENERAL_CARD).read_text(encoding="utf-8")


def model_name(config) -> str:
    """A short name from the choices, e.g. ``study-rope-pre-rmsnorm-swiglu-causal``."""
    kind = "causal" if config.is_causal else "masked"
    return f"study-{config.position_encoding}-{config.norm_placement}-{config.norm_type}-{config.ffn_activation}-{kind}"


def architecture_choices(config) -> dict[str, str]:
    """The architecture as (choice -> value) rows, in the order a reader wants them."""
    position = f"`{config.position_encoding}`"
    if config.position_encoding == "rope":
        rope = config.rope_parameters
        extra = {k: v for k, v in rope.items() if k not in ("rope_type", "rope_theta", "partial_rotary_factor")}
        position += (
            f" (rope_type `{rope.get('rope_type', 'default')}`, theta {rope['rope_theta']:g}, "
            f"rotary fraction {config.partial_rotary_factor:g}, layout `{config.rope_layout}`"
            + "".join(f", {k} {v}" for k, v in sorted(extra.items())) + ")"
        )
    elif config.position_encoding == "t5":
        position += f" ({config.t5_num_buckets} buckets, max distance {config.t5_max_distance})"
    heads = f"{config.num_attention_heads} heads"
    if config.num_key_value_heads != config.num_attention_heads:
        heads += f", {config.num_key_value_heads} key/value heads (grouped-query)"
    yes_no = {True: "yes", False: "no"}
    return {
        "model type": "causal language model (decoder)" if config.is_causal else "bidirectional encoder (masked LM)",
        "position encoding": position,
        "norm placement": f"`{config.norm_placement}`",
        "norm type": f"`{config.norm_type}` (eps {config.norm_eps:g})",
        "feed-forward": f"`{config.ffn_activation}`, intermediate size {config.intermediate_size}",
        "attention": f"{heads}, head dim {config.head_dim}",
        "layers x hidden size": f"{config.num_hidden_layers} x {config.hidden_size}",
        "vocabulary": f"{config.vocab_size} tokens, embeddings {'tied to' if config.tie_word_embeddings else 'separate from'} the output head",
        "max positions": str(config.max_position_embeddings),
        "biases": f"attention {yes_no[config.attention_bias]}, MLP {yes_no[config.mlp_bias]}",
        "norm after embeddings": yes_no[config.embedding_norm],
        "token types": str(config.type_vocab_size),
        "dropout (hidden, attention, embedding)": (
            f"{config.hidden_dropout:g}, {config.attention_dropout:g}, {config.embedding_dropout:g}"
        ),
    }


def _table(rows: Mapping, header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {_format(value)} |" for key, value in rows.items()]
    return "\n".join(lines)


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _is_hub_dataset_id(name: str) -> bool:
    return re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name) is not None


def build_model_card(
    config,
    *,
    eval_results: dict[str, float] | None = None,
    dataset_name: str | None = None,
    training_summary: str | None = None,
    license: str = "apache-2.0",
) -> ModelCard:
    """The model card (a ``huggingface_hub.ModelCard``) of one study checkpoint.

    Args:
        config: the model's ``StudyConfig``.
        eval_results: metric name -> value (e.g. ``{"eval_perplexity": 41.2}``); they go into the
            card's ``model-index`` metadata and a results table. None: "no results recorded".
        dataset_name: the training data; None means the package's default data (the general card
            describes it).
        training_summary: free text about the run (steps, schedule, hardware); a mapping is shown
            as a table.
        license: the checkpoint's license identifier on the Hub.
    """
    pipeline_tag = "text-generation" if config.is_causal else "fill-mask"
    data_label = dataset_name or "the package's default data (King James Bible, validation split)"
    results = [
        EvalResult(
            task_type=pipeline_tag,
            dataset_type=dataset_name if dataset_name and _is_hub_dataset_id(dataset_name) else "custom",
            dataset_name=data_label,
            metric_type=name.removeprefix("eval_"),
            metric_name=name,
            metric_value=float(value),
        )
        for name, value in (eval_results or {}).items()
    ]
    card_data = ModelCardData(
        model_name=model_name(config),
        library_name="transformers",
        license=license,
        pipeline_tag=pipeline_tag,
        tags=[
            REPOSITORY,
            "custom_code",
            "causal-lm" if config.is_causal else "masked-lm",
            f"position-encoding-{config.position_encoding}",
            f"norm-placement-{config.norm_placement}",
            config.norm_type,
            config.ffn_activation,
        ],
        datasets=[dataset_name] if dataset_name and _is_hub_dataset_id(dataset_name) else None,
        eval_results=results or None,
    )

    auto_class = "AutoModelForCausalLM" if config.is_causal else "AutoModelForMaskedLM"
    if training_summary is None:
        training = "No training summary was recorded."
    elif isinstance(training_summary, Mapping):
        training = _table(training_summary, ("setting", "value"))
    else:
        training = str(training_summary).strip()
    evaluation = (
        _table(eval_results, ("metric", "value")) + f"\n\nMeasured on {data_label}."
        if eval_results
        else "No evaluation results were recorded for this checkpoint; *How to evaluate* below says how to measure them."
    )
    sections = [
        f"# {model_name(config)}",
        f"A {architecture_choices(config)['model type']} from `{REPOSITORY}`, for studying one transformer "
        "design choice at a time. The first part of this card describes this checkpoint; the rest is the "
        "card for every study model.",
        "## This model",
        _table(architecture_choices(config), ("choice", "value")),
        "## Training",
        f"Data: {data_label}.",
        training,
        "## Evaluation results",
        evaluation,
        "## How to load",
        "The code travels with the weights (safetensors), so transformers alone loads it; pin the "
        "`revision` (a commit id) whose code you have read. The tokenizer is a standard one, but "
        "`AutoTokenizer` reads the repository's config too, so it takes the same flag:",
        "```python\n"
        f"from transformers import {auto_class}, AutoTokenizer\n\n"
        'repo_id, commit = "<this repository>", "<commit id>"\n'
        f"model = {auto_class}.from_pretrained(repo_id, revision=commit, trust_remote_code=True)\n"
        "tokenizer = AutoTokenizer.from_pretrained(repo_id, revision=commit, trust_remote_code=True)\n"
        "```",
        "---",
        general_card_text().strip(),
    ]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def push_to_hub_with_card(model, repo_id: str, *, tokenizer=None, private: bool | None = None, **card_kwargs) -> str:
    """Push model (safetensors + code), tokenizer and ``build_model_card(model.config, **card_kwargs)``.

    transformers' ``push_to_hub`` writes a generic README.md, so the card goes last. Returns the
    final commit id, the ``revision`` to pin when loading.
    """
    model.push_to_hub(repo_id, private=private)
    if tokenizer is not None:
        tokenizer.push_to_hub(repo_id, private=private)
    build_model_card(model.config, **card_kwargs).push_to_hub(repo_id, commit_message="Add the study model card")
    return HfApi().model_info(repo_id).sha


__all__ = ["architecture_choices", "build_model_card", "general_card_text", "model_name", "push_to_hub_with_card"]
