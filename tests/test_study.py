"""The study runner, end to end on the smoke preset."""

import json
import time

import pytest

from modeling_study.study import PRESETS, run_study
from modeling_study.study.experiments import plan
from modeling_study.study.report import DID_NOT_LEARN, analyse_extrapolation, analyse_norm_placement
from modeling_study.study.runner import DIVERGED, FINISHED, NOT_APPLICABLE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    output = tmp_path_factory.mktemp("study")
    start = time.perf_counter()
    document = run_study("smoke", output, progress=False)
    return output, document, time.perf_counter() - start


def test_every_planned_run_is_accounted_for(smoke):
    output, document, _ = smoke
    planned = plan(PRESETS["smoke"], seed=42)
    assert len(planned) == len(PRESETS["smoke"].encodings) + 2 * len(PRESETS["smoke"].placements)
    assert [(r["experiment"], r["name"]) for r in document["runs"]] == [(s.experiment, s.name) for s in planned]
    for run in document["runs"]:
        assert run["status"] in (FINISHED, DIVERGED), run.get("error")
    for run in document["runs"]:
        if run["experiment"] == "extrapolation" and run["status"] == FINISHED:
            cells = run["perplexity"]
            assert list(cells) == [str(n) for n in PRESETS["smoke"].eval_lengths]
            for length, cell in cells.items():
                if run["name"] == "learned" and int(length) > PRESETS["smoke"].train_length:
                    assert cell["status"] == NOT_APPLICABLE and "no row" in cell["reason"]
                else:
                    assert cell["status"] == FINISHED and cell["perplexity"] > 1


def test_report_structure(smoke):
    output, document, _ = smoke
    report = (output / "report.md").read_text()
    for heading in ("## 1. Length extrapolation", "## 2. Norm placement", "## 3. Positional ambiguity",
                    "## Every planned run"):
        assert heading in report
    for encoding in PRESETS["smoke"].encodings:
        assert f"\n| {encoding} |" in report
    assert "published" in report and "verdict" in report
    assert "torch" in report and "seed 42" in report and "CPU cores" in report and "wall time" in report
    assert report.count("| norm_placement |") == 6 and report.count("| extrapolation |") == 8
    for name in document["plots"].values():
        assert (output / name).stat().st_size > 10_000
        assert f"]({name})" in report
    on_disk = json.loads((output / "results.json").read_text())
    assert set(on_disk) >= {"meta", "preset", "runs", "extrapolation", "norm_placement", "ambiguity", "plots"}
    assert on_disk["meta"]["versions"]["torch"] and on_disk["meta"]["hardware"]["cpu_count"]


def test_verdicts_are_computed_from_the_numbers(smoke):
    _, document, _ = smoke
    for row in document["extrapolation"]["rows"]:
        if row["ratio"] is not None:
            from modeling_study.study.report import extrapolation_category

            expected = extrapolation_category(row["ratio"]) if row["learned"] else DID_NOT_LEARN
            assert row["category"] == expected
            if row["published"] != "-":
                assert row["agrees"] == ((row["category"] == row["published"]) if row["learned"] else None)
    learned = next(r for r in document["extrapolation"]["rows"] if r["encoding"] == "learned")
    assert list(learned["perplexity"].values())[1:] == [NOT_APPLICABLE] * 3
    if learned["learned"]:  # the smoke models train 8 steps: usually not below unigram, so inconclusive
        assert learned["category"] == "cannot run past L" and learned["agrees"] is True
    else:
        assert learned["category"] == DID_NOT_LEARN and learned["agrees"] is None
    assert document["extrapolation"]["unigram_loss"] > 0
    claims = document["norm_placement"]["claims"]
    assert len(claims) == 3 and all(c["agrees"] in (True, False, None) for c in claims)  # None: inconclusive
    verdicts = document["ambiguity"]["verdicts"]
    assert verdicts and all(v["as_expected"] for v in verdicts)
    assert document["ambiguity"]["sources"]["stand_in"] is True  # no Llama weights on this machine
    assert "NOT Llama-3.2 weights" in document["ambiguity"]["sources"]["embeddings"]


def test_second_invocation_uses_the_cache_and_gives_the_same_numbers(smoke):
    output, document, first_time = smoke
    start = time.perf_counter()
    again = run_study("smoke", output, progress=False)
    assert time.perf_counter() - start < first_time
    assert again["meta"]["runs_from_cache"] == len(again["runs"])
    assert again["extrapolation"] == document["extrapolation"]
    assert again["norm_placement"] == document["norm_placement"]


def test_same_seed_same_numbers(smoke, tmp_path):
    _, document, _ = smoke
    preset = PRESETS["smoke"]
    from dataclasses import replace

    only_two = replace(preset, encodings=("rope", "learned"), placements=("post",))
    fresh = run_study(only_two, tmp_path, progress=False)
    rows = {r["encoding"]: r for r in document["extrapolation"]["rows"]}
    for row in fresh["extrapolation"]["rows"]:
        assert row["perplexity"] == rows[row["encoding"]]["perplexity"]


def test_a_failing_run_is_reported_and_the_study_goes_on(tmp_path, monkeypatch):
    from dataclasses import replace

    from modeling_study.study import experiments

    real = experiments.measure

    def flaky(spec, work_dir):
        if spec.name == "alibi":
            raise RuntimeError("simulated crash")
        return real(spec, work_dir)

    monkeypatch.setattr(experiments, "measure", flaky)
    preset = replace(PRESETS["smoke"], encodings=("alibi", "rope"), placements=("pre",))
    document = run_study(preset, tmp_path, progress=False)
    statuses = {r["name"]: r["status"] for r in document["runs"]}
    assert statuses["alibi"] == "failed" and statuses["rope"] == FINISHED
    assert "simulated crash" in (tmp_path / "report.md").read_text()
    assert not any("alibi" in p.read_text() for p in (tmp_path / "runs").glob("*.json"))  # failures are not cached


def _extrapolation_run(name, perplexities):
    cells = {str(n): ({"status": NOT_APPLICABLE} if p is None else {"status": FINISHED, "perplexity": p})
             for n, p in zip((64, 128, 256, 512), perplexities)}
    return {"name": name, "status": FINISHED, "perplexity": cells}


def test_verdicts_on_known_numbers():
    """The verdict logic, on numbers whose answers are known (no training)."""
    runs = [_extrapolation_run("sinusoidal", [100.0, 300.0, 900.0, 2000.0]),
            _extrapolation_run("rope", [90.0, 95.0, 120.0, 150.0]),
            _extrapolation_run("alibi", [92.0, 91.0, 90.0, 90.0]),
            _extrapolation_run("t5", [400.0, 401.0, 402.0, 403.0]),  # ln 400 = 5.99: no better than unigram
            _extrapolation_run("learned", [95.0, None, None, None])]
    result = analyse_extrapolation(runs, [64, 128, 256, 512], unigram_loss=5.9)
    rows = {r["encoding"]: r for r in result["rows"]}
    assert rows["sinusoidal"]["category"] == "degrades sharply" and rows["sinusoidal"]["agrees"] is True
    assert rows["rope"]["category"] == "degrades moderately" and rows["rope"]["agrees"] is True
    assert rows["alibi"]["category"] == "holds" and rows["alibi"]["agrees"] is True
    assert rows["t5"]["category"] == DID_NOT_LEARN and rows["t5"]["agrees"] is None  # flat, but says nothing
    assert rows["learned"]["category"] == "cannot run past L" and rows["learned"]["agrees"] is True
    claims = {c["claim"].split(" ")[0]: c["agrees"] for c in result["claims"]}
    assert claims == {"ALiBi": None, "rotary": True}  # T5 did not learn: the first claim is inconclusive

    def norm_run(placement, warmup, loss, status=FINISHED):
        return {"labels": {"placement": placement, "warmup": warmup}, "status": status,
                "training": {"eval_loss": loss, "final_train_loss": loss}, "init_grad_norms": []}

    norm = analyse_norm_placement([norm_run("post", True, 4.6), norm_run("post", False, None, DIVERGED),
                                   norm_run("pre", True, 4.5), norm_run("pre", False, 4.55)], unigram_loss=5.9)
    assert [c["agrees"] for c in norm["claims"]] == [True, True]
    norm = analyse_norm_placement([norm_run("post", True, 5.95), norm_run("post", False, 5.95),
                                   norm_run("pre", True, 4.5), norm_run("pre", False, 4.55)], unigram_loss=5.9)
    assert [c["agrees"] for c in norm["claims"]] == [True, False]  # warmup did not rescue post-norm
    assert [r["learned"] for r in norm["rows"]] == [False, False, True, True]


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"preset must be one of \['default', 'full', 'smoke'\]"):
        run_study("huge")


def test_run_key_changes_with_the_code_that_decides_the_numbers(monkeypatch):
    """An edit to the model, training or study code retrains instead of reusing a stale cached run."""
    from modeling_study.study import runner

    spec = plan(PRESETS["smoke"], seed=42)[0]
    before = spec.key()
    assert spec.key() == before  # stable for the same code
    monkeypatch.setattr(runner, "code_fingerprint", lambda: "edited")
    assert spec.key() != before
