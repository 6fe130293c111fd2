"""The study's browsable page (study, report): index.html beside the reports, figures and videos it links.

Reads what a study folder holds (each stage's metrics.json and report.md, videos/index.json, config.json) and
writes `index.html` through `mirrorlab.analysis.page`: plain-language answers and the headline figures and
videos first, then the verdicts, then each stage's own Markdown report, so the page and the reports cannot
disagree. A study folder may come from someone else: every value read is type-checked, and every file the
page would show must lie inside the folder (one line naming the file and key otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mirrorlab.errors import UserError
from mirrorlab.files import atomic_write_text, folder_owner, read_json

SECTIONS = (  # (anchor, title, folder)
    ("toy", "The paper's toy experiment, replicated with its nulls", "replicate"),
    ("embodied", "The embodied study: mirror measures of the core on held-out paired episodes", "analysis"),
    ("imitation", "Imitation from video", "imitation"),
    ("lesion", "Do mirror units matter? Lesions inside the recurrence", "lesion"),
    ("dose", "Do fewer mirror units make imitation worse? The selectivity dose-response on the arm", "dose"),
    ("variants", "Seed 002's future work: replay at surprise and reward-modulated learning", "variants"),
    ("spillover", "Value spillover from self to other", "spillover"),
)


def _expect(value: Any, kind: type | tuple[type, ...], label: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UserError(f"{label}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _verdicts(study: str, claims: Any, label: str) -> list[Any]:
    from mirrorlab.analysis.page import Verdict
    from mirrorlab.analysis.replication_report import fmt_stat

    out = []
    for k, c in enumerate(_expect(claims, list, f"{label}: key 'claims'")):
        where = f"{label}: claims[{k}]"
        try:
            diffs = [(str(m), fmt_stat(d)) for m, d in _expect(c["differences"], dict, where).items()]
            out.append(Verdict(study, str(c["claim"]), f"{c['condition']} minus {c['compared_with']}", diffs,
                               str(c["verdict"])))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise UserError(f"{where}: not a claim as `mirrorlab study` writes it ({type(err).__name__}: {err})"
                            ) from None
    return out


def _all_verdicts(out: Path) -> list[Any]:
    verdicts = []
    if (out / "replicate" / "metrics.json").is_file():
        label = str(out / "replicate" / "metrics.json")
        metrics = _expect(read_json(out / "replicate" / "metrics.json"), dict, label)
        verdicts += _verdicts("toy replication", metrics.get("claims", []), label)
    if (out / "analysis" / "metrics.json").is_file():
        label = str(out / "analysis" / "metrics.json")
        groups = _expect(_expect(read_json(out / "analysis" / "metrics.json"), dict, label).get("groups", {}), dict,
                         f"{label}: key 'groups'")
        for group, entry in groups.items():
            verdicts += _verdicts(f"embodied: {group}", _expect(entry, dict, f"{label}: groups.{group}")
                                  .get("claims", []), f"{label}: groups.{group}")
    return verdicts


def inside_study(out: Path, path: Any, label: str) -> str:
    """`path` (absolute, or relative to the study) as a path relative to the study, if the file it names (links
    followed) lies inside the study folder; else one line naming `label`."""
    _expect(path, str, label)
    full = (out / path).resolve()
    try:
        return full.relative_to(out.resolve()).as_posix()
    except ValueError:
        raise UserError(f"{label}: {path[:120]!r} lies outside the study folder {out}; refusing to show it") from None


def _videos(out: Path) -> list[Any]:
    from mirrorlab.analysis.page import Video

    index = out / "videos" / "index.json"
    if not index.is_file():
        return []
    videos = []
    for k, v in enumerate(_expect(read_json(index), list, str(index))):
        where = f"{index}: entry {k}"
        try:
            units = ", ".join(f"unit {int(u['unit'])} r={float(u['r']):+.2f}{' (anti-mirror)' if u['anti'] else ''}"
                              for u in _expect(v["units"], list, f"{where}: key 'units'"))
            caption = (f"other_appearance {v['other_appearance']} | run {v['run_name']} | held-out episode "
                       f"{v['episode']} (demo id {v['episode_id']}) | units shown: {units}")
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{where}: not a video entry as `mirrorlab study` writes it ({type(err).__name__}: "
                            f"{err})") from None
        videos.append(Video(inside_study(out, v["path"], f"{where}: key 'path'"), caption))
    return videos


def _summary(out: Path) -> tuple[str, str]:
    """The page's opening line and the config, pretty-printed for its collapsed block."""
    config = read_json(out / "config.json") if (out / "config.json").is_file() else {}
    config = config if isinstance(config, dict) else {}
    inner = config.get("config")
    preset = config.get("preset") or (inner.get("preset") if isinstance(inner, dict) else None)
    summary = (f"{'Preset ' + str(preset) + '; ' if preset else ''}git commit {config.get('git_commit', 'unknown')}. "
               "Every number below is measured, with its null or baseline beside it; the Markdown reports in the "
               "sub-folders hold the same.")
    if (out / "demonstrator.json").is_file():
        described = read_json(out / "demonstrator.json")
        if isinstance(described, dict) and "described" in described:
            summary += f" The other arm's demonstrator: {described['described']}."
    return summary, json.dumps(config, indent=2, sort_keys=True, default=str) if config else ""


def write_study_page(out: Path) -> Path:
    """Write out/index.html for the study folder `out`; returns its path."""
    from mirrorlab.analysis.page import Page, Section, linked_files, study_page

    if folder_owner(out) != "study":
        raise UserError(f"--out {out}: not a study folder (written by `mirrorlab study`)")
    sections = []
    for anchor, title, folder in SECTIONS:
        report = out / folder / "report.md"
        if report.is_file():
            inside_study(out, str(report), str(report))
            sections.append(Section(anchor, title, report.read_text(encoding="utf-8", errors="replace"), folder))
    summary, config = _summary(out)
    page = study_page(Page("mirrorlab study", summary, _all_verdicts(out), sections, _videos(out), config,
                           video_section="embodied"))
    missing = [link for link in linked_files(page) if not (out / link).exists()]
    if missing:
        raise UserError(f"{out}: the page would link files that are not there: {', '.join(missing[:5])}")
    return atomic_write_text(out / "index.html", page)
