"""Hub packaging: remote code, auto_map, a fresh process without the package, pipelines, push/pull, the card.

This machine has no internet. The push/pull test therefore starts ``tests/hub_stand_in.py``, a
Hub-compatible HTTP endpoint on 127.0.0.1 that stands in for https://huggingface.co; the real
``huggingface_hub`` client (inside transformers' ``push_to_hub`` / ``from_pretrained``) talks to
it because ``HF_ENDPOINT`` is set in the environment of a subprocess before the client is imported.
Every other test runs with ``HF_HUB_OFFLINE=1`` and ``HF_HOME`` in a temporary folder.

The loading processes cannot import ``modeling_study``: they run with ``python -I`` (no PYTHONPATH,
no script or working directory on ``sys.path``) from a folder outside the repository, drop the
editable install's import hook, and assert that ``import modeling_study`` fails before anything else.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported (conftest does the same)
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="study-tests-hf-home-"))

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from huggingface_hub import ModelCard  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

import modeling_study  # noqa: E402
from hub_stand_in import HubStandIn  # noqa: E402
from modeling_study import StudyConfig, StudyForCausalLM, StudyForMaskedLM  # noqa: E402
from modeling_study.model_card import build_model_card, general_card_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PACKAGE = Path(modeling_study.__file__).resolve().parent
TOKENIZER = REPO / "tokenizer"  # the repository's byte-level BPE: <s>=0 </s>=1 <pad>=2 <unk>=3 <mask>=4
TINY = dict(vocab_size=4096, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=1, pad_token_id=2)
CAUSAL = TINY | dict(position_encoding="rope")
MASKED = TINY | dict(position_encoding="learned", norm_placement="post", norm_type="layernorm",
                     ffn_activation="gelu", is_causal=False, embedding_norm=True)
REMOTE_CODE = {"configuration_study.py", "modeling_study.py", "position_encodings.py", "norms.py", "convert.py",
               "learned_bias_attention.py", "attention_paths.py", "cache_names.py"}
AUTO_MAP = {
    "AutoConfig": "configuration_study.StudyConfig",
    "AutoModel": "modeling_study.StudyModel",
    "AutoModelForCausalLM": "modeling_study.StudyForCausalLM",
    "AutoModelForMaskedLM": "modeling_study.StudyForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_study.StudyForSequenceClassification",
}
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt"}
PROMPT = "In the beginning God created"

# Prepended to every loading process: make the package unimportable, and prove it.
WITHOUT_PACKAGE = f"""
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
import os
# drop every entry the package could be imported from (the repository itself; the venv may live inside it)
sys.path[:] = [p for p in sys.path if "__editable__" not in p and not os.path.isdir(os.path.join(p or ".", "modeling_study"))]
sys.path_importer_cache.clear()
try:
    import modeling_study
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("modeling_study must not be importable here, but it is: " + modeling_study.__file__)


def assert_package_never_imported(model):
    assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
    assert not [m for m in sys.modules if m.split(".")[0] == "modeling_study"], "the package was imported"
"""


def run_python(code: str, env: dict, cwd: Path, isolated: bool) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    command = [sys.executable, *(["-I"] if isolated else []), "-c", textwrap.dedent(code)]
    proc = subprocess.run(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}"
    assert proc.stdout.strip(), f"no output:\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def offline_env(hf_home: Path) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home), "TOKENIZERS_PARALLELISM": "false"}


def logits_of(model, tokenizer, text: str = PROMPT) -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits[0]


# -- the general card ----------------------------------------------------------------------------------


def test_top_level_model_card_is_the_packaged_one():
    """The package reads its own copy (a pip install has no repository); the top-level one must match."""
    assert (REPO / "model_card.md").read_bytes() == (PACKAGE / "model_card.md").read_bytes()
    assert general_card_text() == (PACKAGE / "model_card.md").read_text(encoding="utf-8")


def test_general_card_covers_every_option():
    text = general_card_text()
    from modeling_study import FFN_ACTIVATIONS, NORM_PLACEMENTS, NORM_TYPES, POSITION_ENCODINGS

    for option in (*POSITION_ENCODINGS, *NORM_PLACEMENTS, *NORM_TYPES, *FFN_ACTIVATIONS):
        assert f"`{option}`" in text, option
    for heading in ("## Architecture", "## Intended use", "## Limitations", "## Default training data", "## How to evaluate"):
        assert heading in text


# -- the generated card --------------------------------------------------------------------------------


def test_model_card_metadata_choices_and_results():
    config = StudyConfig(**CAUSAL | dict(rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}))
    card = build_model_card(config, eval_results={"eval_loss": 3.5, "eval_perplexity": 33.1},
                            dataset_name="kjv-validation", training_summary="300 steps, AdamW, cosine schedule.",
                            license="mit")
    assert isinstance(card, ModelCard)
    data = ModelCard(str(card)).data.to_dict()  # what the Hub will parse
    assert data["library_name"] == "transformers" and data["license"] == "mit"
    assert data["pipeline_tag"] == "text-generation"
    assert {"modeling-study", "custom_code", "position-encoding-rope", "norm-placement-pre", "rmsnorm", "swiglu"} <= set(
        data["tags"])
    assert data["datasets"] == ["kjv-validation"]
    [entry] = data["model-index"]
    metrics = {m["name"]: m["value"] for m in entry["results"][0]["metrics"]}
    assert metrics == {"eval_loss": 3.5, "eval_perplexity": 33.1}
    for fact in ("`rope` (rope_type `linear`", "factor 2.0", "2 key/value heads", "`pre`", "`rmsnorm`", "`swiglu`",
                 "300 steps, AdamW", "| eval_perplexity | 33.1 |", "AutoModelForCausalLM", "trust_remote_code=True"):
        assert fact in card.text, fact
    assert general_card_text().strip() in card.text  # builds on the general card


def test_model_card_for_an_encoder_without_results():
    card = build_model_card(StudyConfig(**MASKED), training_summary={"global_step": 10, "final_train_loss": 7.5})
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "fill-mask" and data["license"] == "apache-2.0"
    assert "model-index" not in data and "datasets" not in data
    assert "No evaluation results were recorded" in card.text
    assert "| global_step | 10 |" in card.text and "AutoModelForMaskedLM" in card.text
    assert "`learned`" in card.text and "`post`" in card.text


# -- saving: code files, auto_map, safetensors ---------------------------------------------------------


@pytest.mark.parametrize("model_class", [StudyForCausalLM, StudyForMaskedLM])
def test_save_pretrained_writes_code_auto_map_and_safetensors_only(tmp_path, model_class):
    config = StudyConfig(**(CAUSAL if model_class is StudyForCausalLM else MASKED))
    model_class(config).save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert REMOTE_CODE <= files
    assert not {f for f in files if f.endswith(".py")} - REMOTE_CODE  # no tooling travels with the weights
    assert "model.safetensors" in files and not {p.suffix for p in tmp_path.iterdir()} & PICKLE_SUFFIXES
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"] == AUTO_MAP
    assert saved["model_type"] == "study" and saved["architectures"] == [model_class.__name__]
    for name in REMOTE_CODE:  # the copies are the package's own files
        assert (tmp_path / name).read_bytes() == (PACKAGE / name).read_bytes()


# -- a fresh process that cannot import the package ----------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER)


@pytest.mark.slow  # one fresh interpreter importing torch and transformers
def test_fresh_process_loads_with_remote_code_generates_and_runs_pipelines(tmp_path, tokenizer):
    torch.manual_seed(0)
    causal = StudyForCausalLM(StudyConfig(**CAUSAL)).eval()
    masked = StudyForMaskedLM(StudyConfig(**MASKED)).eval()
    for name, model in (("causal", causal), ("masked", masked)):
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    generated = causal.generate(**tokenizer(PROMPT, return_tensors="pt"), max_new_tokens=8, do_sample=False)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = run_python(WITHOUT_PACKAGE + f"""
import json, torch
from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM,
                          AutoModelForSequenceClassification, AutoTokenizer, pipeline)
causal_dir, masked_dir = {str(tmp_path / "causal")!r}, {str(tmp_path / "masked")!r}
tokenizer = AutoTokenizer.from_pretrained(causal_dir, trust_remote_code=True)
model = AutoModelForCausalLM.from_pretrained(causal_dir, trust_remote_code=True).eval()
assert_package_never_imported(model)
inputs = tokenizer({PROMPT!r}, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits[0]
generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
classes = [type(auto.from_pretrained(causal_dir, trust_remote_code=True)).__name__
           for auto in (AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification)]
masked = AutoModelForMaskedLM.from_pretrained(masked_dir, trust_remote_code=True).eval()
with torch.no_grad():
    masked_logits = masked(**AutoTokenizer.from_pretrained(masked_dir, trust_remote_code=True)({PROMPT!r}, return_tensors="pt")).logits[0]
text = pipeline("text-generation", model=causal_dir, trust_remote_code=True)(
    {PROMPT!r}, max_new_tokens=5, do_sample=False)
fills = pipeline("fill-mask", model=masked_dir, trust_remote_code=True)("In the <mask> God created", top_k=3)
print(json.dumps({{"logits": logits.tolist(), "masked_logits": masked_logits.tolist(),
                   "generated": generated.tolist(), "classes": classes,
                   "text": text[0]["generated_text"], "fills": [f["token_str"] for f in fills]}}))
""", env=offline_env(tmp_path / "hf_home"), cwd=outside, isolated=True)

    assert torch.equal(torch.tensor(result["logits"]), logits_of(causal, tokenizer))
    assert torch.equal(torch.tensor(result["masked_logits"]), logits_of(masked, tokenizer))
    assert result["generated"] == generated.tolist()
    assert result["classes"] == ["StudyConfig", "StudyModel", "StudyForMaskedLM", "StudyForSequenceClassification"]
    assert result["text"].startswith(PROMPT) and len(result["text"]) > len(PROMPT)
    assert len(result["fills"]) == 3


# -- push to the Hub stand-in, pull by repo id ---------------------------------------------------------


@pytest.mark.slow  # two fresh interpreters importing torch and transformers
def test_push_model_tokenizer_and_card_then_load_by_repo_id(tmp_path):
    with HubStandIn() as hub:
        pushed = run_python(f"""
import json, torch
from transformers import AutoTokenizer
from modeling_study import StudyConfig, StudyForCausalLM
from modeling_study.model_card import push_to_hub_with_card
torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained({str(TOKENIZER)!r})
model = StudyForCausalLM(StudyConfig(**{CAUSAL!r})).eval()
commit = push_to_hub_with_card(model, "user/study-tiny", tokenizer=tokenizer, eval_results={{"eval_perplexity": 4096.0}},
                               training_summary="Untrained: random weights, pushed by a test.")
inputs = tokenizer({PROMPT!r}, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits[0]
generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
print(json.dumps({{"commit": commit, "logits": logits.tolist(), "generated": generated.tolist()}}))
""", env=hub.env(tmp_path / "home_push"), cwd=tmp_path, isolated=False)

        files = hub.files("user/study-tiny")
        assert REMOTE_CODE | {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(files)
        assert not {Path(name).suffix for name in files} & PICKLE_SUFFIXES  # weights go out as safetensors only
        assert json.loads(files["config.json"])["auto_map"] == AUTO_MAP
        card = ModelCard(files["README.md"].decode())  # our card, not transformers' generic one
        assert card.data.library_name == "transformers" and "modeling-study" in card.data.tags
        assert card.data.eval_results[0].metric_value == 4096.0
        assert "Untrained: random weights" in card.text and "# Study models (modeling-study)" in card.text

        outside = tmp_path / "elsewhere"
        outside.mkdir()
        pulled = run_python(WITHOUT_PACKAGE + f"""
import json, torch
from huggingface_hub import ModelCard
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
repo, commit = "user/study-tiny", {pushed["commit"]!r}
try:
    AutoConfig.from_pretrained(repo, revision=commit)
    refused = False
except ValueError:  # remote code never runs without trust_remote_code=True
    refused = True
model = AutoModelForCausalLM.from_pretrained(repo, revision=commit, trust_remote_code=True).eval()
assert_package_never_imported(model)
try:
    type(model).from_pretrained(repo, revision=commit, use_safetensors=False)
    pickles_allowed = True
except ValueError:
    pickles_allowed = False
tokenizer = AutoTokenizer.from_pretrained(repo, revision=commit, trust_remote_code=True)
inputs = tokenizer({PROMPT!r}, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits[0]
generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
# a newline first: the refusal above left a "[y/N]" prompt on stdout without one
print()
print(json.dumps({{"refused": refused, "pickles_allowed": pickles_allowed, "logits": logits.tolist(),
                   "generated": generated.tolist(), "license": ModelCard.load(repo).data.license}}))
""", env=hub.env(tmp_path / "home_pull"), cwd=outside, isolated=True)

    assert pulled["refused"] and not pulled["pickles_allowed"]
    assert pulled["logits"] == pushed["logits"]  # bit-identical weights, same CPU kernels
    assert pulled["generated"] == pushed["generated"]
    assert pulled["license"] == "apache-2.0"
