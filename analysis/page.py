"""The study as one page: plain HTML and CSS from the same numbers and Markdown as the reports.

`study_page` takes what the study folder holds, already read: the claim verdicts (from each metrics.json),
each report's Markdown with the folder it lives in (so its relative links keep pointing at its files),
and the videos with their captions. It returns the text of a self-contained `index.html` (no scripts, no
fonts or styles from elsewhere; only the figures and videos beside it are linked), readable offline.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import markdown

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1180px; margin: 24px auto;
       padding: 0 16px; color: #222; }
h1 { font-size: 26px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; }
figure { display: inline-block; margin: 8px 16px 16px 0; vertical-align: top; }
figcaption { font-size: 13px; color: #555; max-width: 520px; }
video { width: 520px; max-width: 100%; background: #000; }
.supported { background: #d8f0d8; } .contradicted { background: #f6d3d3; } .not-supported { background: #f3ecd2; }
nav a { margin-right: 14px; }
"""


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    markdown: str      # the report's text
    folder: str        # where the report lives, relative to the page ("" for the page's own folder)


@dataclass(frozen=True)
class Video:
    path: str          # relative to the page
    caption: str


def _rebase(text: str, folder: str) -> str:
    """Point the Markdown's relative links and images at `folder`/..., as seen from the page."""
    if not folder:
        return text

    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^([a-z]+:|/|#)", target):
            return match.group(0)
        return f"{match.group(1)}({folder.rstrip('/')}/{target})"

    return re.sub(r"(!?\[[^\]]*\])\(([^)\s]+)\)", fix, text)


def _verdict_class(verdict: str) -> str:
    return verdict.replace(" ", "-")


def verdict_table(rows: list[dict[str, Any]]) -> str:
    """rows: {study, claim, comparison, differences (text), verdict}."""
    head = "<tr><th>study</th><th>claim</th><th>comparison</th><th>difference, mean [95% CI over seeds]</th>" \
           "<th>verdict</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(r['study'])}</td><td>{html.escape(r['claim'])}</td><td>{html.escape(r['comparison'])}"
        f"</td><td>{html.escape(r['differences'])}</td><td class=\"{_verdict_class(r['verdict'])}\"><b>"
        f"{html.escape(r['verdict'])}</b></td></tr>" for r in rows)
    return f'<table id="verdicts">{head}{body}</table>'


def study_page(title: str, summary: str, verdicts: list[dict[str, Any]], sections: list[Section],
               videos: list[Video], video_section: str | None = None) -> str:
    """The page's HTML; the videos go at the end of the section `video_section` (or at the end)."""
    md = markdown.Markdown(extensions=["tables", "fenced_code"])
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    video_html = "<h3>Perform vs observe: the self arm performing, the other observed, unit traces</h3>" + "".join(
        f'<figure><video controls muted preload="auto" src="{html.escape(v.path)}"></video>'
        f"<figcaption>{html.escape(v.caption)}</figcaption></figure>" for v in videos)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p><nav>{nav}</nav>",
             '<h2 id="claims">Does the claim hold?</h2>',
             "<p>Each claim compares two conditions seed by seed on the same data. <i>Supported</i>: every metric "
             "higher, with a 95% interval above zero; <i>contradicted</i>: some interval wholly below zero; otherwise "
             "<i>not supported</i>. Details in each section below.</p>",
             verdict_table(verdicts)]
    placed = False
    for s in sections:
        md.reset()
        body = md.convert(_rebase(s.markdown, s.folder))
        body = re.sub(r"<h1>.*?</h1>", "", body, count=1)  # the section title replaces the report's own
        parts.append(f'<h2 id="{s.anchor}">{html.escape(s.title)}</h2>{body}')
        if videos and s.anchor == video_section:
            parts.append(video_html)
            placed = True
    if videos and not placed:
        parts.append(video_html)
    parts.append("</body></html>")
    return "\n".join(parts)


def linked_files(page: str) -> list[str]:
    """Every relative src/href of a page (the files that must sit beside it)."""
    links = re.findall(r'(?:src|href)="([^"#][^"]*)"', page)
    return sorted({html.unescape(link) for link in links if not re.match(r"^[a-z]+:", link)})
