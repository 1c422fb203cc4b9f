"""StudyConfig: one transformer, every design choice a single string.

Sizes use Hugging Face's standard names; each architectural choice is one string validated against
a registry, so an invalid model cannot be described, and a wrong value fails here, when the config
is built, with a ValueError naming the field, the valid values and the value received.
"""

from __future__ import annotations

from transformers import PreTrainedConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from .attention_paths import ATTENTION_PATHS
from .norms import NORM_PLACEMENTS, NORM_TYPES
from .position_encodings import POSITION_ENCODINGS, ROPE_LAYOUTS

# activation name -> (transformers ACT2FN name, gated). Gated variants (Shazeer 2020,
# "GLU Variants Improve Transformer", arXiv:2002.05202) compute down(act(gate(x)) * up(x)).
FFN_ACTIVATIONS: dict[str, tuple[str, bool]] = {
    "relu": ("relu", False),
    "gelu": ("gelu", False),
    "gelu_tanh": ("gelu_pytorch_tanh", False),
    "silu": ("silu", False),
    "swiglu": ("silu", True),
    "geglu": ("gelu", True),
    "geglu_tanh": ("gelu_pytorch_tanh", True),  # Gemma's GLU and T5 v1.1's "gated-gelu" (gelu_new is the tanh form)
}

# rope_type -> (required keys, optional keys) of `rope_parameters`, besides rope_type, rope_theta and
# partial_rotary_factor; the values are computed by transformers' own ROPE_INIT_FUNCTIONS.
ROPE_PARAMETER_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "default": (set(), set()),
    "linear": ({"factor"}, set()),
    "dynamic": ({"factor"}, {"original_max_position_embeddings"}),
    "yarn": (
        {"factor", "original_max_position_embeddings"},
        {"attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate"},
    ),
    "llama3": ({"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}, set()),
}
assert set(ROPE_PARAMETER_KEYS) - {"default"} <= set(ROPE_INIT_FUNCTIONS)


def _choice(field: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"StudyConfig.{field} must be one of {sorted(valid)}, got {value!r}.")


class StudyConfig(PreTrainedConfig):
    r"""Configuration of a study transformer (`model_type = "study"`).

    The defaults describe a small Llama-like decoder (RoPE, pre-RMSNorm, SwiGLU). Set
    ``position_encoding="learned", norm_type="layernorm", ffn_activation="gelu_tanh"`` and biases on
    for GPT-2; ``is_causal=False, norm_placement="post", embedding_norm=True`` for BERT.

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: sizes.
        num_key_value_heads: key/value heads for grouped-query attention (Ainslie et al. 2023,
            arXiv:2305.13245); defaults to ``num_attention_heads`` (multi-head attention).
        head_dim: width of one head; defaults to ``hidden_size // num_attention_heads``.
        max_position_embeddings: rows of the ``learned`` table; the context length the model is meant
            for (RoPE scalings read it as the training length).
        position_encoding: one of ``POSITION_ENCODINGS``: "none", "integer", "binary", "sinusoidal",
            "learned", "rope", "alibi", "t5". Where position enters: see ``position_encodings.py``.
        norm_placement: "pre" (``x + f(norm(x))``, stable without warmup), "post"
            (``norm(x + f(x))``, the original; needs warmup), "sandwich" (``x + norm(f(norm(x)))``).
        norm_type: "layernorm", "rmsnorm" or "rmsnorm_plus_one" (Gemma: gain 1 + weight). norm_eps: its epsilon.
        ffn_activation: "relu", "gelu", "gelu_tanh", "silu", or the gated "swiglu", "geglu",
            "geglu_tanh" (Gemma, T5 v1.1).
        is_causal: True for a decoder language model, False for a bidirectional encoder.
        rope_parameters: transformers v5 form, e.g. ``{"rope_type": "llama3", "rope_theta": 5e5,
            "factor": 8.0, ...}``; rope_type one of default, linear, dynamic, yarn, llama3.
        partial_rotary_factor: fraction of each head's channels that RoPE rotates (1.0 = all).
        rope_layout: "half" (Llama/NeoX pairs j, j+d/2) or "interleaved" (GPT-J pairs 2j, 2j+1).
        t5_num_buckets, t5_max_distance: T5 relative bias buckets and the distance they reach.
        attention_path: how the bias reaches the scores, one of ``ATTENTION_PATHS`` ("dense", "factored",
            "bucketed", "flex"; ``attention_paths.py``), or None (the default) to choose by device, dtype and
            encoding each forward. A runtime choice, not the architecture: every path computes the same.
        attention_bias, mlp_bias: biases in the attention and MLP projections (GPT-2, BERT, BLOOM).
        attention_output_bias: bias of the attention output projection ``o_proj``; None follows
            ``attention_bias``. False with ``attention_bias=True`` is Qwen2 (biases on q, k, v only).
        embedding_norm: a norm right after the embeddings (BERT, BLOOM).
        embedding_multiplier: scale of the token embeddings before positions are added; 1.0 (GPT-2,
            Llama) or ``sqrt(hidden_size)`` (Vaswani et al. 2017 section 3.4, fairseq, Gemma), which
            keeps fixed sinusoids (amplitude 1) from drowning tokens initialised at std 0.02.
        type_vocab_size: rows of a token-type (segment) embedding, 0 for none (BERT uses 2).
        tie_word_embeddings: share the input embedding with the output head.
        hidden_dropout, attention_dropout, embedding_dropout: dropout probabilities.
        initializer_range: std of the normal initialisation.
        embedding_initializer_range: std of the token embedding's initialisation; None = initializer_range.
            fairseq's Transformer uses hidden_size ** -0.5 with embedding_multiplier sqrt(hidden_size), so
            scaled tokens have RMS 1, on the scale of sinusoids (RMS 0.71), instead of 0.02 * sqrt(d).
    """

    model_type = "study"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]  # the name changed in transformers 5.24
    @property
    def base_model_tp_plan(self) -> dict[str, str]:
        """Tensor parallelism (``distributed_config=DistributedConfig(tp_plan="auto")`` under torchrun).

        Llama's plan, by Llama's module names, over the modules this config builds: heads split across
        ranks (q/k/v by output, o by input), so does the MLP's hidden width (gate/up by output, down by
        input). ``gate_proj`` only for a gated MLP, so every rule names a module the model has.
        transformers adds ``embed_tokens: embedding_rowwise`` itself; the heads add their own
        (``_tp_plan`` of each head class). An encoding that biases each head's scores (ALiBi, T5)
        builds its bias for every head and cannot be split (StudyPreTrainedModel refuses it).
        """
        plan = {f"layers.*.self_attn.{name}": "colwise" for name in ("q_proj", "k_proj", "v_proj")}
        plan["layers.*.self_attn.o_proj"] = "rowwise"
        if FFN_ACTIVATIONS[self.ffn_activation][1]:
            plan["layers.*.mlp.gate_proj"] = "colwise"
        return plan | {"layers.*.mlp.up_proj": "colwise", "layers.*.mlp.down_proj": "rowwise"}

    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 1024
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    max_position_embeddings: int = 1024
    position_encoding: str = "rope"
    norm_placement: str = "pre"
    norm_type: str = "rmsnorm"
    ffn_activation: str = "swiglu"
    is_causal: bool = True
    rope_parameters: dict | None = None
    partial_rotary_factor: float | None = None
    rope_layout: str = "half"
    t5_num_buckets: int = 32
    t5_max_distance: int = 128
    attention_path: str | None = None
    attention_bias: bool = False
    attention_output_bias: bool | None = None  # o_proj's bias; None = attention_bias. Qwen2: q/k/v bias, no o bias
    mlp_bias: bool = False
    embedding_norm: bool = False
    embedding_multiplier: float = 1.0
    type_vocab_size: int = 0
    tie_word_embeddings: bool = True
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    embedding_dropout: float = 0.0
    norm_eps: float = 1e-6
    initializer_range: float = 0.02
    embedding_initializer_range: float | None = None
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self, **kwargs):
        self._validate_choices()
        self._validate_sizes()
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.attention_output_bias is None:
            self.attention_output_bias = self.attention_bias
        if self.head_dim is None:
            # an explicit head_dim (as in some Llamas) frees hidden_size from being a multiple of the heads
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(
                    f"StudyConfig.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                    f"({self.num_attention_heads}), or set head_dim explicitly."
                )
            self.head_dim = self.hidden_size // self.num_attention_heads
        self._validate_heads()
        self._prepare_rope_parameters(kwargs)
        super().__post_init__(**kwargs)
        self._validate_rope_parameters()
        self._validate_t5()

    # -- validation ------------------------------------------------------------------------------

    def _validate_choices(self):
        _choice("position_encoding", self.position_encoding, POSITION_ENCODINGS)
        _choice("norm_placement", self.norm_placement, NORM_PLACEMENTS)
        _choice("norm_type", self.norm_type, NORM_TYPES)
        _choice("ffn_activation", self.ffn_activation, FFN_ACTIVATIONS)
        _choice("rope_layout", self.rope_layout, ROPE_LAYOUTS)
        if self.attention_path is not None:
            _choice("attention_path", self.attention_path, ATTENTION_PATHS)
        for name in ("is_causal", "attention_bias", "mlp_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"StudyConfig.{name} must be True or False, got {getattr(self, name)!r}.")
        if self.attention_output_bias not in (None, True, False):
            raise ValueError(
                f"StudyConfig.attention_output_bias must be True, False or None (= attention_bias), "
                f"got {self.attention_output_bias!r}."
            )

    def _validate_sizes(self):
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "max_position_embeddings", "num_key_value_heads", "head_dim"):
            value = getattr(self, name)
            if value is None and name in ("num_key_value_heads", "head_dim"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"StudyConfig.{name} must be a positive integer, got {value!r}.")
        if self.type_vocab_size < 0:
            raise ValueError(f"StudyConfig.type_vocab_size must be >= 0 (0 = no token types), got {self.type_vocab_size}.")
        if isinstance(self.embedding_multiplier, bool) or not isinstance(self.embedding_multiplier, (int, float)) \
                or not self.embedding_multiplier > 0:
            raise ValueError(f"StudyConfig.embedding_multiplier must be a positive number, got {self.embedding_multiplier!r}.")
        if self.embedding_initializer_range is not None and (
                isinstance(self.embedding_initializer_range, bool)
                or not isinstance(self.embedding_initializer_range, (int, float))
                or not self.embedding_initializer_range > 0):
            raise ValueError("StudyConfig.embedding_initializer_range must be a positive number or None (= "
                             f"initializer_range), got {self.embedding_initializer_range!r}.")
        for name in ("hidden_dropout", "attention_dropout", "embedding_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"StudyConfig.{name} must be a probability in [0, 1), got {value!r}.")
        if not self.norm_eps > 0:
            raise ValueError(f"StudyConfig.norm_eps must be > 0, got {self.norm_eps!r}.")

    def _validate_heads(self):
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError(
                f"StudyConfig.num_attention_heads ({self.num_attention_heads}) must be divisible by "
                f"num_key_value_heads ({self.num_key_value_heads}): each key/value head serves a whole group "
                f"of query heads. Valid values here: "
                f"{[n for n in range(1, self.num_attention_heads + 1) if self.num_attention_heads % n == 0]}."
            )

    def _prepare_rope_parameters(self, kwargs):
        """Fill ``rope_parameters`` in the v5 form; ``partial_rotary_factor`` lives inside it too."""
        if self.rope_parameters is None:
            self.rope_parameters = {"rope_type": "default", "rope_theta": kwargs.pop("rope_theta", 10000.0)}
        if not isinstance(self.rope_parameters, dict):
            raise ValueError(f"StudyConfig.rope_parameters must be a dict, got {type(self.rope_parameters).__name__}.")
        self.rope_parameters = dict(self.rope_parameters)
        inside = self.rope_parameters.get("partial_rotary_factor")
        if self.partial_rotary_factor is not None and inside is not None and inside != self.partial_rotary_factor:
            raise ValueError(
                f"StudyConfig.partial_rotary_factor={self.partial_rotary_factor} disagrees with "
                f"rope_parameters['partial_rotary_factor']={inside}; set one of them."
            )
        factor = self.partial_rotary_factor if self.partial_rotary_factor is not None else inside
        self.partial_rotary_factor = 1.0 if factor is None else factor
        self.rope_parameters["partial_rotary_factor"] = self.partial_rotary_factor

    def _validate_rope_parameters(self):
        rp = self.rope_parameters
        rope_type = rp.get("rope_type", "default")
        _choice("rope_parameters['rope_type']", rope_type, ROPE_PARAMETER_KEYS)
        required, optional = ROPE_PARAMETER_KEYS[rope_type]
        received = set(rp) - {"rope_type", "rope_theta", "partial_rotary_factor"}
        if missing := required - received:
            raise ValueError(
                f"StudyConfig.rope_parameters for rope_type={rope_type!r} is missing {sorted(missing)}; "
                f"it needs {sorted(required)} (optional: {sorted(optional)})."
            )
        if unknown := received - required - optional:
            raise ValueError(
                f"StudyConfig.rope_parameters for rope_type={rope_type!r} has unknown keys {sorted(unknown)}; "
                f"accepted: {sorted(required | optional | {'rope_type', 'rope_theta', 'partial_rotary_factor'})}."
            )
        theta = rp.get("rope_theta")
        if not isinstance(theta, (int, float)) or isinstance(theta, bool) or theta <= 1:
            raise ValueError(f"StudyConfig.rope_parameters['rope_theta'] must be a number > 1, got {theta!r}.")
        if "factor" in rp and (not isinstance(rp["factor"], (int, float)) or rp["factor"] < 1):
            raise ValueError(f"StudyConfig.rope_parameters['factor'] must be a number >= 1, got {rp['factor']!r}.")
        prf = self.partial_rotary_factor
        if not isinstance(prf, (int, float)) or not 0 < prf <= 1:
            raise ValueError(f"StudyConfig.partial_rotary_factor must be in (0, 1], got {prf!r}.")
        rotary_dim = int(self.head_dim * prf)
        if self.position_encoding == "rope" and (rotary_dim < 2 or rotary_dim % 2):
            raise ValueError(
                f"RoPE rotates channel pairs, so the rotary dimension head_dim * partial_rotary_factor = "
                f"{self.head_dim} * {prf} -> {rotary_dim} must be even and >= 2; change head_dim "
                f"(or hidden_size / num_attention_heads) or partial_rotary_factor."
            )

    def _validate_t5(self):
        for name in ("t5_num_buckets", "t5_max_distance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"StudyConfig.{name} must be a positive integer, got {value!r}.")
        # each direction (bidirectional) or the past (causal) gets num_buckets // 2 exact buckets
        per_direction = self.t5_num_buckets if self.is_causal else self.t5_num_buckets // 2
        max_exact = per_direction // 2
        if max_exact < 1:
            raise ValueError(
                f"StudyConfig.t5_num_buckets={self.t5_num_buckets} is too small: it needs at least "
                f"{2 if self.is_causal else 4} buckets ({'causal' if self.is_causal else 'bidirectional'})."
            )
        if self.t5_max_distance <= max_exact:
            raise ValueError(
                f"StudyConfig.t5_max_distance={self.t5_max_distance} must exceed the {max_exact} exact-distance "
                f"buckets that t5_num_buckets={self.t5_num_buckets} gives; T5 uses 32 buckets and 128."
            )

    # -- loading and conversion ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs) -> "StudyConfig":
        """Refuse a config of another model_type (transformers only warns, then builds nonsense)."""
        model_type = config_dict.get("model_type")
        if model_type not in (None, cls.model_type):
            raise ValueError(
                f"This config has model_type={model_type!r}, not {cls.model_type!r}: it describes another "
                f"architecture. Load it with its own class, or convert a llama, mistral, qwen2, gemma, gpt2, "
                f"bert or bloom model with modeling_study.from_hf(model)."
            )
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def from_hf_config(cls, config: PreTrainedConfig) -> "StudyConfig":
        """The StudyConfig of a Llama, Mistral, Qwen2, Gemma, GPT-2, BERT or BLOOM config (see ``convert.py``);
        ValueError otherwise."""
        from .convert import config_from_hf  # convert imports this module

        return config_from_hf(config)

    # -- derived ---------------------------------------------------------------------------------

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)


__all__ = ["StudyConfig", "FFN_ACTIVATIONS"]
