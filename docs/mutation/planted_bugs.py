"""Plant each wrong formula named by issue 17, run the tests that must catch it, and revert.

    python docs/mutation/planted_bugs.py            # all 22 plants, about 4 minutes on 2 shared CPU cores
    python docs/mutation/planted_bugs.py yarn       # the plants whose name contains "yarn"

Prints CAUGHT or SURVIVED per plant. The source file is restored even if the run is interrupted
(``finally``); run it on a clean checkout.
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PE, MS, NM, CV, RUN = "modeling_study/position_encodings.py", "modeling_study/modeling_study.py", "modeling_study/norms.py", "modeling_study/convert.py", "modeling_study/training/run.py"
R, RT = "tests/test_references.py", "tests/test_references_training.py"
PLANTS = [
 ("swap sin/cos", PE, "torch.stack((angles.sin(), angles.cos())", "torch.stack((angles.cos(), angles.sin())", [R + "::test_sinusoidal_is_vaswanis_formula", R + "::test_sinusoidal_hand_values"]),
 ("drop bit 0", PE, "powers = 2 ** torch.arange(n_bits, device=position_ids.device)", "powers = 2 ** (1 + torch.arange(n_bits, device=position_ids.device))", [R + "::test_binary_is_the_bit_vector"]),
 ("reverse T5 bucket direction", PE, "distance = -torch.clamp(relative_position, max=0)", "distance = torch.clamp(relative_position, min=0)", [R + "::test_t5_bias_matches_transformers_compute_bias", R + "::test_t5_model_matches_a_hand_written_model_with_transformers_bias"]),
 ("sandwich MLP norm on the sum", NM, 'mlp=("pre_feedforward_layernorm", "post_feedforward_layernorm", None),', 'mlp=("pre_feedforward_layernorm", None, "post_feedforward_layernorm"),', [R + "::test_norm_placement_matches_a_hand_written_layer"]),
 ("drop yarn attention scaling", PE, "return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)", "return emb.cos().to(x.dtype), emb.sin().to(x.dtype)", [R + "::test_yarn_matches_llama_including_attention_scaling"]),
 ("ignore token types", MS, "hidden_states = hidden_states + self.token_type_embeddings(token_type_ids)", "hidden_states = hidden_states + self.token_type_embeddings(torch.zeros_like(token_type_ids))", ["tests/test_convert.py::test_bert_parity_with_token_types"]),
 ("wrong pooled token", MS, "pool_index = (positions * attention_mask.to(logits.device).long()).argmax(-1)", "pool_index = attention_mask.to(logits.device).long().sum(-1) - 1", [R + "::test_causal_classifier_pools_the_last_real_token"]),
 ("lose GPT-2 residual dropout", CV, "        hidden_dropout=c.resid_pdrop,\n", "", ["tests/test_convert.py::test_conversion_carries_every_dropout"]),
 ("label smoothing off", RUN, "if training_args.label_smoothing_factor > 0 and config.is_causal:", "if False:", [RT + "::test_label_smoothing_is_the_hand_computed_smoothed_loss"]),
 ("divergence rule off", RUN, "divergence = DivergenceCallback(blowup_factor=divergence_factor)", "divergence = DivergenceCallback(blowup_factor=None)", [RT + "::test_label_smoothing_is_the_hand_computed_smoothed_loss"]),
 ("divergence default off", RUN, "divergence_factor: float | None = 3.0,", "divergence_factor: float | None = None,", [RT + "::test_divergence_fires_above_three_times_the_best_loss"]),
 ("hold out the first blocks", "modeling_study/training/data.py", 'splits["validation"] = splits["train"].select(range(cut, len(splits["train"])))', 'splits["validation"] = splits["train"].select(range(held_out))', [RT + "::test_the_last_five_percent_of_blocks_are_held_out"]),
 ("resume into a half-written checkpoint", RUN, 'if match and (path / "trainer_state.json").is_file():', 'if match:', [RT + "::test_resume_skips_a_half_written_checkpoint"]),
 ("--force ignored", "modeling_study/study/runner.py", "if cached.exists() and not force:", "if cached.exists():", [RT + "::test_force_retrains_a_cached_run"]),
 # survivors of the mutation run, each killed by a test added for it (docs/mutation/README.md)
 ("ALiBi keys centred the wrong way", PE, "centred = (key_positions - key_positions.shape[-1] // 2)", "centred = (key_positions + key_positions.shape[-1] // 2)", [R + "::test_alibi_bias_is_minus_slope_times_distance"]),
 ("no padding_idx", MS, "nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)", "nn.Embedding(config.vocab_size, config.hidden_size, None)", [R + "::test_padding_embedding_is_zero_and_gets_no_gradient"]),
 ("inputs_embeds ignored by the input check", MS, "reference = input_ids if input_ids is not None else inputs_embeds", "reference = input_ids", [R + "::test_inputs_embeds_give_the_logits_of_their_tokens"]),
 ("corrupted-weights message loses a keyword path", MS, 'where = args[0] if args else kwargs.get("pretrained_model_name_or_path")', 'where = args[0] if args else kwargs.get("PRETRAINED_MODEL_NAME_OR_PATH")', ["tests/test_files.py::test_corrupted_weights"]),
 ("causal T5 blocks read every key", "modeling_study/learned_bias_attention.py", "rows.stop + key_length - length if causal", "rows.stop + key_length + length if causal", [R + "::test_t5_blocks_skip_the_keys_a_causal_block_cannot_see"]),
 ("mlm_probability not passed on", RUN, 'tokenizer, mlm=data_args.objective == "mlm", mlm_probability=data_args.mlm_probability', 'tokenizer, mlm=data_args.objective == "mlm"', [RT + "::test_mlm_masks_the_requested_fraction"]),
 ("model card keeps NaN results", RUN, "if results.get(k) is not None and math.isfinite(results[k])", "if results.get(k) is not None or math.isfinite(results[k])", [RT + "::test_model_card_reports_only_finite_eval_results"]),
 ("met rule off by noise", "modeling_study/commands/benchmark.py", 'SPEED_PARITY = 0.98', 'SPEED_PARITY = 0.97', [RT + "::test_benchmark_targets_met_and_missed"]),
]


def main(only: list[str]) -> int:
    missing = [(name, path) for name, path, old, _, _ in PLANTS if (ROOT / path).read_text().count(old) != 1]
    if missing:  # the code moved on: fix the plant's text before trusting any result
        raise SystemExit(f"plant text not found exactly once (update PLANTS): {missing}")
    for name, path, old, new, tests in PLANTS:
        if only and not any(o in name for o in only):
            continue
        f = ROOT / path
        text = f.read_text()
        f.write_text(text.replace(old, new))
        try:
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=ROOT,
                               capture_output=True, text=True)
            print(f"{'CAUGHT' if r.returncode == 1 else 'SURVIVED rc=%d' % r.returncode:10s} {name}", flush=True)
        finally:
            f.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
