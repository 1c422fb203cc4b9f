"""StudySeq2SeqConfig: the encoder-decoder of Vaswani et al. 2017 (arXiv:1706.03762), every choice a string.

A sibling of ``StudyConfig`` (``model_type = "study_seq2seq"``): the same fields describe both stacks
(positional encoding, norm placement and type, feed-forward, sizes), plus what only an encoder-decoder
has. The encoder is bidirectional and the decoder causal whatever ``is_causal`` says; each stack has
its own positional encoding module (a T5 bias is bidirectional in the encoder, causal in the decoder).
"""

from __future__ import annotations

import copy

from transformers import PreTrainedConfig

from .configuration_study import StudyConfig


class StudySeq2SeqConfig(StudyConfig):
    r"""Configuration of a study encoder-decoder (``model_type = "study_seq2seq"``).

    Takes every ``StudyConfig`` argument (``num_hidden_layers`` is the encoder's depth) and:

    Args:
        num_decoder_layers: decoder depth; defaults to ``num_hidden_layers`` (the paper's 6 + 6).
        decoder_start_token_id: the token the decoder starts from (labels are shifted right behind it);
            Marian and T5 use the pad token. Needed to train on labels and to generate.
        share_encoder_decoder_embeddings: one token embedding for both stacks (a joint vocabulary, as
            in the paper's English-German BPE); False gives each stack its own.
        tie_word_embeddings: the output projection is the decoder's token embedding (the paper's
            "same weight matrix between the two embedding layers and the pre-softmax linear
            transformation", section 3.4).
        lm_head_bias: a bias on the output logits (Marian's ``final_logits_bias``).
    """

    model_type = "study_seq2seq"

    num_decoder_layers: int | None = None
    decoder_start_token_id: int | None = None
    share_encoder_decoder_embeddings: bool = True
    lm_head_bias: bool = False
    is_encoder_decoder: bool = True

    def __post_init__(self, **kwargs):
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_hidden_layers
        if isinstance(self.num_decoder_layers, bool) or not isinstance(self.num_decoder_layers, int) \
                or self.num_decoder_layers <= 0:
            raise ValueError(f"StudySeq2SeqConfig.num_decoder_layers must be a positive integer, got {self.num_decoder_layers!r}.")
        for name in ("share_encoder_decoder_embeddings", "lm_head_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"StudySeq2SeqConfig.{name} must be True or False, got {getattr(self, name)!r}.")
        start = self.decoder_start_token_id
        if start is not None and (isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < self.vocab_size):
            raise ValueError(
                f"StudySeq2SeqConfig.decoder_start_token_id must be a token id in [0, vocab_size={self.vocab_size}), "
                f"got {start!r}; Marian and T5 use the pad token."
            )
        if self.is_encoder_decoder is not True:
            raise ValueError("StudySeq2SeqConfig.is_encoder_decoder is always True; use StudyConfig for a single stack.")
        super().__post_init__(**kwargs)

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        """With ``decoder=True`` (how transformers sizes a generation cache): this config with the
        decoder's depth as ``num_hidden_layers``; otherwise as transformers does."""
        if decoder and not encoder:
            config = copy.deepcopy(self)
            config.num_hidden_layers = self.num_decoder_layers
            return config
        return super().get_text_config(decoder=decoder, encoder=encoder)

    def stack_config(self, decoder: bool) -> StudyConfig:
        """The ``StudyConfig`` of one stack: causal with ``num_decoder_layers`` for the decoder,
        bidirectional with ``num_hidden_layers`` for the encoder; every other field as here."""
        fields = {name: getattr(self, name) for name in StudyConfig.__annotations__}  # StudyConfig's own fields
        fields["is_causal"] = decoder
        if decoder:
            fields["num_hidden_layers"] = self.num_decoder_layers
        config = StudyConfig(**fields)
        config._attn_implementation = self._attn_implementation
        return config


__all__ = ["StudySeq2SeqConfig"]
