"""The main job end to end on a tiny budget: every stage runs, the report links them, a rerun resumes."""

import json

from mirrorlab.experiments.study import StudyConfig, run_plan, study

TINY_STUDY = StudyConfig(toy=False, frame_size=16, episodes=20, babble=3, seeds=(0,), conditions=("shared", "untrained"),
                         appearances=("identical", "mirrored"), appearance_conditions=("shared",), epochs=1,
                         imitate_episodes=2, video_size=64, workers=1)


def test_plan_covers_conditions_appearances_and_the_self_video_transfer_runs(tmp_path):
    plan = run_plan(TINY_STUDY, tmp_path)
    names = sorted(f"{a}/{run.name}" for a, _, run in plan)
    assert names == ["identical/shared__seed0", "identical/shared_selfvideo__seed0", "identical/untrained__seed0",
                     "mirrored/shared__seed0"]
    assert {tc.inverse_data for _, tc, r in plan if "selfvideo" in r.name} == {"self"}


def test_study_runs_every_stage_and_resumes(tmp_path):
    out = tmp_path / "study"
    report = study(TINY_STUDY, out, show_progress=False)
    text = report.read_text()
    for link in ("analysis/report.md", "imitation/report.md", "videos/identical.mp4", "videos/mirrored.mp4"):
        assert link in text and (out / link).is_file(), link
    groups = json.loads((out / "analysis" / "metrics.json").read_text())["groups"]
    assert len(groups) == 3  # identical (other video), identical (self video), mirrored
    imitation = json.loads((out / "imitation" / "metrics.json").read_text())["summary"]
    assert set(imitation) == {"identical", "mirrored"}
    assert "inverse_shared_selfvideo" in imitation["identical"]
    model = out / "runs" / "identical" / "shared__seed0" / "model.pt"
    stamp = model.stat().st_mtime_ns
    study(TINY_STUDY, out, show_progress=False)
    assert model.stat().st_mtime_ns == stamp  # finished runs are not retrained


def test_fresh_deletes_only_a_study_folder(tmp_path):
    from mirrorlab.errors import UserError

    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter.tex").write_text("mine")
    import pytest

    with pytest.raises(UserError, match="did not write"):
        study(TINY_STUDY, thesis, fresh=True, show_progress=False)
    assert (thesis / "chapter.tex").read_text() == "mine"
