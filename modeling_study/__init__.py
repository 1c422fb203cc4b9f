"""modeling-study: a Hugging Face transformer whose positional encoding and norm placement are one
config string each, for studying what those choices change.

Importing the package registers ``model_type="study"`` with transformers' Auto classes.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)

from .configuration_seq2seq import StudySeq2SeqConfig
from .configuration_study import FFN_ACTIVATIONS, StudyConfig
from .convert import from_hf
from .convert_seq2seq import SEQ2SEQ_FAMILIES  # registers the encoder-decoder converters with from_hf
from .to_hf import to_hf
from .modeling_study import (
    StudyForCausalLM,
    StudyForMaskedLM,
    StudyForSequenceClassification,
    StudyModel,
    StudyPreTrainedModel,
)
from .modeling_seq2seq import StudyForConditionalGeneration, StudySeq2SeqModel
from .norms import NORM_PLACEMENTS, NORM_TYPES
from .position_encodings import POSITION_ENCODINGS, PositionEncoding

AutoConfig.register(StudyConfig.model_type, StudyConfig, exist_ok=True)
AutoModel.register(StudyConfig, StudyModel, exist_ok=True)
AutoModelForCausalLM.register(StudyConfig, StudyForCausalLM, exist_ok=True)
AutoModelForMaskedLM.register(StudyConfig, StudyForMaskedLM, exist_ok=True)
AutoModelForSequenceClassification.register(StudyConfig, StudyForSequenceClassification, exist_ok=True)
AutoConfig.register(StudySeq2SeqConfig.model_type, StudySeq2SeqConfig, exist_ok=True)
AutoModel.register(StudySeq2SeqConfig, StudySeq2SeqModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(StudySeq2SeqConfig, StudyForConditionalGeneration, exist_ok=True)

# For the Hub: save_pretrained copies the code files next to the weights and writes `auto_map`, so a
# saved folder or pushed repo loads with trust_remote_code=True where this package is not installed.
StudyConfig.register_for_auto_class("AutoConfig")
StudyModel.register_for_auto_class("AutoModel")
StudyForCausalLM.register_for_auto_class("AutoModelForCausalLM")
StudyForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")
StudyForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
StudySeq2SeqConfig.register_for_auto_class("AutoConfig")
StudySeq2SeqModel.register_for_auto_class("AutoModel")
StudyForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")

__version__ = "0.1.0"

__all__ = [
    "StudyConfig",
    "StudyPreTrainedModel",
    "StudyModel",
    "StudyForCausalLM",
    "StudyForMaskedLM",
    "StudyForSequenceClassification",
    "StudySeq2SeqConfig",
    "StudySeq2SeqModel",
    "StudyForConditionalGeneration",
    "POSITION_ENCODINGS",
    "PositionEncoding",
    "NORM_PLACEMENTS",
    "NORM_TYPES",
    "FFN_ACTIVATIONS",
    "from_hf",
    "to_hf",
]
