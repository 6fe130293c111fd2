"""analysis.variants: a training variant against its control, paired by seed, on planted rows."""

import pytest

from mirrorlab.analysis.variants import compare_variant, direction, variant_table


def test_planted_shifts_rise_fall_or_show_no_difference():
    control = [{"seed": s, "up": float(s), "down": float(s), "same": float(s)} for s in range(5)]
    noise = [0.1, -0.1, 0.05, -0.05, 0.0]
    variant = [{"seed": s, "up": s + 1 + noise[s], "down": s - 2 + noise[s], "same": s + noise[s]} for s in range(5)]
    result = compare_variant(variant[::-1], control, ("up", "down", "same"))  # paired by seed, not by position
    assert result["up"]["difference"]["mean"] == pytest.approx(1.0)
    assert [result[m]["direction"] for m in ("up", "down", "same")] == ["rises", "falls", "no difference"]
    assert result["up"]["control"]["mean"] == pytest.approx(2.0) and result["up"]["variant"]["n"] == 5
    lines = variant_table({"replay=surprise": result}, {"up": 1})
    assert lines[2].startswith("| replay=surprise | up | 3.0 | 2.0 | +1.0 [") and lines[2].endswith("| rises |")
    assert direction({"ci95": [float("nan"), float("nan")]}) == "no difference"  # one seed: no verdict


def test_variant_runs_form_their_own_groups_and_the_script_pairs_them_with_their_control(tiny_dataset, tmp_path,
                                                                                         capsys):
    import importlib.util
    from pathlib import Path

    from mirrorlab.experiments.stages.measurement import AnalyzeConfig, analyze
    from tests.conftest import TINY_ANALYSIS, train_tiny

    data = tiny_dataset
    runs = [train_tiny(data, tmp_path / f"{name}{seed}", epochs=1, seed=seed, **options)
            for name, options in (("uniform", {}), ("reward", {"reward_modulation": "self"}))
            for seed in (0, 1)]
    analyze(runs, tmp_path / "analysis", AnalyzeConfig(**TINY_ANALYSIS))  # same condition and seed: no clash
    script = Path(__file__).parents[1] / "scripts" / "compare_variants.py"
    spec = importlib.util.spec_from_file_location("compare_variants", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "analysis")
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| reward=self(1) |")]
    assert len(rows) == len(module.METRICS) and "| n_mirror_fdr |" in rows[0]
