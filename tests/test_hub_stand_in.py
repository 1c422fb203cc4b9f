"""The Hub stand-in works with the real huggingface_hub client and with transformers' push_to_hub.

huggingface_hub reads HF_ENDPOINT at import, so every client-side step runs in a fresh subprocess
with ``hub.env(hf_home)``; a download step gets its own, empty HF_HOME so nothing comes from a cache.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import pytest

from hub_stand_in import HubStandIn


@pytest.fixture
def hub():
    with HubStandIn() as hub:
        yield hub


def run_client(hub: HubStandIn, hf_home, code: str, **extra_env) -> dict:
    """Run ``code`` in a subprocess against ``hub``; it must print one JSON object as its last line."""
    env = hub.env(hf_home) | {k: str(v) for k, v in extra_env.items()}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"client failed:\n{proc.stderr[-4000:]}\nrequests: {hub.requests[-20:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("disable_xet", ["1", "0"], ids=["xet-disabled", "xet-installed"])
def test_upload_folder_then_download_in_a_fresh_cache(hub, tmp_path, disable_xet):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    folder = tmp_path / "upload"
    (folder / "nested").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# A folder\n")
    save_file({"w": torch.arange(12, dtype=torch.float32).reshape(3, 4)}, folder / "nested" / "weights.safetensors")
    local = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    pushed = run_client(hub, tmp_path / "home_push", f"""
        import json
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("user/folder")
        info = api.upload_folder(repo_id="user/folder", folder_path={str(folder)!r})
        print(json.dumps({{"oid": info.oid, "files": sorted(api.list_repo_files("user/folder"))}}))
    """, HF_HUB_DISABLE_XET=disable_xet)
    assert pushed["files"] == sorted(local)
    assert hub.files("user/folder") == local

    pulled = run_client(hub, tmp_path / "home_pull", """
        import hashlib, json, pathlib
        from huggingface_hub import hf_hub_download, snapshot_download
        root = pathlib.Path(snapshot_download("user/folder"))
        single = pathlib.Path(hf_hub_download("user/folder", "nested/weights.safetensors"))
        print(json.dumps({
            "snapshot": {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in root.rglob("*") if p.is_file()},
            "single": hashlib.sha256(single.read_bytes()).hexdigest(),
            "commit": root.name,
        }))
    """)
    assert pulled["snapshot"] == {path: sha256(data) for path, data in local.items()}
    assert pulled["single"] == sha256(local["nested/weights.safetensors"])
    assert pulled["commit"] == pushed["oid"]


def test_revisions_deletes_and_missing_entries(hub, tmp_path):
    result = run_client(hub, tmp_path / "home", """
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
        api = HfApi()
        api.create_repo("user/revs")
        api.create_repo("user/revs", exist_ok=True)
        first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt", repo_id="user/revs").oid
        api.upload_file(path_or_fileobj=b"v2", path_in_repo="a.txt", repo_id="user/revs")
        api.upload_file(path_or_fileobj=b"b", path_in_repo="dir/b.txt", repo_id="user/revs")
        api.delete_file("dir/b.txt", repo_id="user/revs")
        errors = []
        for call in (lambda: hf_hub_download("user/revs", "missing.txt"),
                     lambda: hf_hub_download("user/revs", "a.txt", revision="no-such-branch"),
                     lambda: api.model_info("user/nope")):
            try:
                call()
            except (EntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError) as e:
                errors.append(type(e).__name__)
        print(json.dumps({
            "old": open(hf_hub_download("user/revs", "a.txt", revision=first)).read(),
            "new": open(hf_hub_download("user/revs", "a.txt")).read(),
            "files": api.list_repo_files("user/revs"),
            "whoami": api.whoami()["name"],
            "errors": errors,
        }))
    """)
    assert result == {
        "old": "v1", "new": "v2", "files": ["a.txt"], "whoami": "user",
        "errors": ["RemoteEntryNotFoundError", "RevisionNotFoundError", "RepositoryNotFoundError"],
    }


@pytest.mark.slow  # two fresh processes that import torch and transformers
def test_transformers_push_to_hub_then_from_pretrained(hub, tmp_path):
    pushed = run_client(hub, tmp_path / "home_push", """
        import json, torch
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

        words = ["[UNK]", "[PAD]", "hello", "world", "the", "tiny", "model", "pushes"]
        backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")

        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
        model = LlamaForCausalLM(config).eval()
        model.push_to_hub("user/tiny")
        tokenizer.push_to_hub("user/tiny")

        ids = tokenizer("hello the tiny model pushes world")["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        print(json.dumps({"ids": ids, "logits": logits.tolist()}))
    """)
    expected = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert expected <= set(hub.files("user/tiny"))

    pulled = run_client(hub, tmp_path / "home_pull", """
        import json, torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained("user/tiny")
        model = AutoModelForCausalLM.from_pretrained("user/tiny").eval()
        ids = tokenizer("hello the tiny model pushes world")["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        print(json.dumps({"ids": ids, "logits": logits.tolist(), "class": type(model).__name__}))
    """)
    assert pulled["class"] == "LlamaForCausalLM"
    assert pulled["ids"] == pushed["ids"]
    assert pulled["logits"] == pushed["logits"]  # bit-identical weights, same CPU kernels


def test_model_card_push_and_load(hub, tmp_path):
    run_client(hub, tmp_path / "home_push", """
        from huggingface_hub import HfApi, ModelCard
        HfApi().create_repo("user/card")
        card = ModelCard("---\\nlicense: apache-2.0\\ntags:\\n- stand-in\\n---\\n# Tiny card\\n\\nHello.\\n")
        card.push_to_hub("user/card")
        print("{}")
    """)
    loaded = run_client(hub, tmp_path / "home_pull", """
        import json
        from huggingface_hub import ModelCard
        card = ModelCard.load("user/card")
        print(json.dumps({"license": card.data.license, "tags": card.data.tags, "text": card.text}))
    """)
    assert loaded == {"license": "apache-2.0", "tags": ["stand-in"], "text": "# Tiny card\n\nHello.\n"}


REMOTE_CODE = '''
import torch
from transformers import PretrainedConfig, PreTrainedModel


class StandInConfig(PretrainedConfig):
    model_type = "stand_in_probe"

    def __init__(self, width=4, **kwargs):
        self.width = width
        super().__init__(**kwargs)


class StandInModel(PreTrainedModel):
    config_class = StandInConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(config.width, config.width)
        self.post_init()

    def forward(self, x):
        return self.proj(x)
'''


@pytest.mark.slow  # two fresh processes that import torch and transformers
def test_custom_code_push_then_load_with_trust_remote_code(hub, tmp_path):
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "stand_in_probe.py").write_text(REMOTE_CODE)
    pushed = run_client(hub, tmp_path / "home_push", f"""
        import json, sys, torch
        sys.path.insert(0, {str(code_dir)!r})
        from stand_in_probe import StandInConfig, StandInModel
        StandInConfig.register_for_auto_class()
        StandInModel.register_for_auto_class("AutoModel")
        torch.manual_seed(0)
        model = StandInModel(StandInConfig(width=4))
        model.push_to_hub("user/remote")
        print(json.dumps({{"out": model(torch.ones(1, 4)).tolist()}}))
    """)
    assert "stand_in_probe.py" in hub.files("user/remote")

    pulled = run_client(hub, tmp_path / "home_pull", """
        import json, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained("user/remote", trust_remote_code=True)
        print(json.dumps({"out": model(torch.ones(1, 4)).tolist(), "class": type(model).__name__}))
    """)
    assert pulled == {"out": pushed["out"], "class": "StandInModel"}
