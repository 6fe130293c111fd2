"""The study's browsable page (study, report): index.html beside the reports, figures and videos it links.

Reads what a study folder holds (each stage's metrics.json and report.md, videos/index.json) and writes
`index.html`: the claim verdicts first (toy replication, then each embodied group), then the toy
replication, the embodied study with its perform-vs-observe videos, imitation and spillover, each
rendered from the stage's own Markdown report, so the page and the reports cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirrorlab.errors import UserError
from mirrorlab.files import atomic_write_text, folder_owner, read_json

SECTIONS = (  # (anchor, title, folder)
    ("toy", "The seed paper's toy experiment, replicated with its nulls", "replicate"),
    ("embodied", "The embodied study: mirror measures of the core on held-out paired episodes", "analysis"),
    ("imitation", "Imitation from video", "imitation"),
    ("spillover", "Spillover of value from self to other (seed 003)", "spillover"),
)


def _verdict_rows(study: str, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from mirrorlab.analysis.replication_report import fmt_stat

    return [{"study": study, "claim": c["claim"], "comparison": f"{c['condition']} minus {c['compared_with']}",
             "differences": "; ".join(f"{m}: {fmt_stat(d)}" for m, d in c["differences"].items()),
             "verdict": c["verdict"]} for c in claims]


def write_study_page(out: Path) -> Path:
    """Write out/index.html for the study folder `out`; returns its path."""
    from mirrorlab.analysis.page import Section, Video, linked_files, study_page

    if folder_owner(out) != "study":
        raise UserError(f"--out {out}: not a study folder (written by `mirrorlab study`)")
    verdicts: list[dict[str, Any]] = []
    if (out / "replicate" / "metrics.json").is_file():
        verdicts += _verdict_rows("toy replication", read_json(out / "replicate" / "metrics.json").get("claims", []))
    if (out / "analysis" / "metrics.json").is_file():
        for group, entry in read_json(out / "analysis" / "metrics.json").get("groups", {}).items():
            verdicts += _verdict_rows(f"embodied: {group}", entry.get("claims", []))
    sections = [Section(anchor, title, (out / folder / "report.md").read_text(), folder)
                for anchor, title, folder in SECTIONS if (out / folder / "report.md").is_file()]
    videos = []
    if (out / "videos" / "index.json").is_file():
        for v in read_json(out / "videos" / "index.json"):
            units = ", ".join(f"unit {u['unit']} r={u['r']:+.2f}{' (anti-mirror)' if u['anti'] else ''}"
                              for u in v["units"])
            videos.append(Video(str(Path(v["path"]).relative_to(out)),
                                f"other_appearance {v['other_appearance']} | run {v['run_name']} | held-out episode "
                                f"{v['episode']} (demo id {v['episode_id']}) | units shown: {units}"))
    config = read_json(out / "config.json") if (out / "config.json").is_file() else {}
    summary = (f"Preset config: {config.get('config')}; git commit {config.get('git_commit')}. Every number below is "
               "measured, with its null or baseline beside it; the Markdown reports in the sub-folders hold the same.")
    if (out / "demonstrator.json").is_file():
        summary += f" The other arm's demonstrator: {read_json(out / 'demonstrator.json')['described']}."
    page = study_page("mirrorlab study", summary, verdicts, sections, videos, video_section="embodied")
    missing = [link for link in linked_files(page) if not (out / link).exists()]
    if missing:
        raise UserError(f"{out}: the page would link files that are not there: {', '.join(missing[:5])}")
    return atomic_write_text(out / "index.html", page)
