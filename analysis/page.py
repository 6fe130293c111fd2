"""The study as one page, written for a reader: a Jinja2 template over the same numbers and Markdown as the reports.

`study_page` takes what the study folder holds, already read: the claim verdicts, each report's Markdown with
the folder it lives in, the videos with their captions and the config. The page opens with a plain-language
answer per question and the headline figures and videos, then the verdict table with readable measure names
(field names in a tooltip and a glossary), then each report, with the config in a collapsed block.

The page is inert whatever the folder holds, because a study folder is shared like any other file:
- the template autoescapes every value; the rendered Markdown is the one value passed as markup;
- the Markdown is rendered with raw HTML switched off (a `<script>` or `onerror=` in a report is shown as text);
- every link and image in a report, and every video, must stay inside the study folder (or be an http(s) link
  or an anchor); anything else loses its target;
- a Content-Security-Policy forbids scripts, objects and anything fetched from elsewhere.
"""

from __future__ import annotations

import posixpath
from html.parser import HTMLParser
from urllib.parse import unquote
import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import jinja2
import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

from mirrorlab.analysis.glossary import GLOSSARY, readable

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1180px; margin: 24px auto;
       padding: 0 16px; color: #222; }
h1 { font-size: 26px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; }
figure { display: inline-block; margin: 8px 16px 16px 0; vertical-align: top; }
figure.headline img { max-width: 560px; }
figcaption { font-size: 13px; color: #555; max-width: 520px; }
video { width: 520px; max-width: 100%; background: #000; }
.supported { background: #d8f0d8; } .contradicted { background: #f6d3d3; } .not-supported { background: #f3ecd2; }
abbr { text-decoration: underline dotted; cursor: help; }
ul.answers li { margin: 6px 0; } details { margin: 12px 0; } pre { white-space: pre-wrap; font-size: 12px; }
nav a { margin-right: 14px; }
"""

# No scripts, plugins or frames at all; images and media only from the page's own folder.
POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' file:; media-src 'self' file:; "
          "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'")

ANSWERS = {"supported": "Yes", "not supported": "Not shown", "contradicted": "No"}
MEANING = {"supported": "every measure is higher, with a 95% interval over seeds above zero",
           "not supported": "the data cannot tell the two conditions apart on at least one measure",
           "contradicted": "at least one measure is lower, with its whole 95% interval below zero"}


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    markdown: str      # the report's text
    folder: str        # where the report lives, relative to the page ("" for the page's own folder)


@dataclass(frozen=True)
class Video:
    path: str          # relative to the page, inside its folder
    caption: str


@dataclass(frozen=True)
class Verdict:
    """One claim's verdict: differences are (measure field name, "mean [95% CI]") pairs."""

    study: str
    claim: str
    comparison: str
    differences: list[tuple[str, str]]
    verdict: str


@dataclass(frozen=True)
class Page:
    title: str
    summary: str
    verdicts: list[Verdict]
    sections: list[Section]
    videos: list[Video]
    config: str = ""                    # the run's config, shown collapsed
    video_section: str | None = None    # the section the videos close (None: the end)


def inside(path: str, folder: str = "") -> str | None:
    """`folder/path` normalised, if it is a relative path that stays inside the page's folder; else None.

    Percent-escapes are decoded first, as a browser decodes them (`%2e%2e/` is `../` to it)."""
    path = unquote(path or "")
    if not path or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^[/\\]", path) or "\\" in path or "\0" in path:
        return None
    joined = posixpath.normpath(posixpath.join(folder, path))
    return None if joined == ".." or joined.startswith("../") or joined.startswith("/") else joined


class _Targets(Treeprocessor):
    """Rebase a report's relative links onto its folder; drop targets that leave the study."""

    def __init__(self, md: markdown.Markdown, folder: str):
        super().__init__(md)
        self.folder = folder

    def run(self, root: ElementTree.Element) -> None:
        for element in root.iter():
            for attr in ("href", "src"):
                target = element.get(attr)
                if target is None:
                    continue
                if attr == "href" and re.match(r"^(#|https?://|mailto:)", target):
                    continue
                rebased = inside(target, self.folder)
                if rebased is None:
                    del element.attrib[attr]
                    element.set("title", "removed: this target lies outside the study folder")
                else:
                    element.set(attr, rebased)


class _Inert(Extension):
    """Markdown with raw HTML shown as text and every link target checked."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (Markdown's API)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_Targets(md, self.folder), "mirrorlab_targets", 1)


def render_markdown(text: str, folder: str = "") -> Markup:
    """A report's Markdown as inert HTML; its own first heading is dropped (the page titles the section)."""
    body = markdown.markdown(text, extensions=["tables", "fenced_code", _Inert(folder)])
    return Markup(re.sub(r"<h1>.*?</h1>", "", body, count=1, flags=re.S))


def headline_figures(sections: list[Section]) -> list[tuple[str, str]]:
    """The first image of each report, as (path, alt text): the page opens with them."""
    out = []
    for s in sections:
        match = re.search(r"!\[([^\]]*)\]\(([^)\s]+)\)", s.markdown)
        path = match and inside(match.group(2), s.folder)
        if path:
            out.append((path, match.group(1) or s.title))
    return out


def glossary(verdicts: list[Verdict]) -> list[tuple[str, str, str]]:
    """(readable name, field name, meaning) of every measure the verdicts use, in first-use order."""
    names = dict.fromkeys(m for v in verdicts for m, _ in v.differences)
    return [(GLOSSARY.get(m, (m, ""))[0], m, GLOSSARY.get(m, (m, ""))[1]) for m in names]


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ policy }}">
<title>{{ page.title }}</title><style>{{ style }}</style></head><body>
<h1>{{ page.title }}</h1>
<p>{{ page.summary }}</p>
<nav><a href="#answers">Answers</a>{% for s in page.sections %} <a href="#{{ s.anchor }}">{{ s.title }}</a>{% endfor %}</nav>
<h2 id="answers">The answers</h2>
{% if page.verdicts %}<ul class="answers">{% for v in page.verdicts %}
<li><b>{{ v.claim[:1]|upper }}{{ v.claim[1:] }}?</b> <span class="{{ v.verdict|replace(' ', '-') }}">{{ answers.get(v.verdict, v.verdict) }}</span>
({{ v.study }}, {{ v.comparison }}): {{ meaning.get(v.verdict, '') }}.</li>{% endfor %}</ul>
{% else %}<p>No claim was assessed in this folder.</p>{% endif %}
{% for path, alt in figures %}<figure class="headline"><img src="{{ path }}" alt="{{ alt }}"><figcaption>{{ alt }}</figcaption></figure>{% endfor %}
{% for v in page.videos[:2] %}<figure class="headline"><video controls muted preload="auto" src="{{ v.path }}"></video><figcaption>{{ v.caption }}</figcaption></figure>{% endfor %}
<h2 id="claims">Does the claim hold? The numbers</h2>
<p>Each claim compares two conditions seed by seed on the same data. <i>Supported</i>: every measure higher, with a
95% interval above zero; <i>contradicted</i>: some interval wholly below zero; otherwise <i>not supported</i>.
Hover a measure for its field name.</p>
<table id="verdicts"><tr><th>study</th><th>claim</th><th>comparison</th><th>difference, mean [95% CI over seeds]</th><th>verdict</th></tr>
{% for v in page.verdicts %}<tr><td>{{ v.study }}</td><td>{{ v.claim }}</td><td>{{ v.comparison }}</td><td>
{% for m, text in v.differences %}<abbr title="{{ m }}">{{ readable(m) }}</abbr>: {{ text }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td>
<td class="{{ v.verdict|replace(' ', '-') }}"><b>{{ v.verdict }}</b></td></tr>{% endfor %}</table>
{% if terms %}<details id="glossary"><summary>Measure names and field names</summary><table>
<tr><th>measure</th><th>field name (metrics.json)</th><th>what it measures</th></tr>
{% for name, key, meaning in terms %}<tr><td>{{ name }}</td><td><code>{{ key }}</code></td><td>{{ meaning }}</td></tr>{% endfor %}
</table></details>{% endif %}
{% if page.config %}<details id="config"><summary>Configuration of this run</summary><pre>{{ page.config }}</pre></details>{% endif %}
{% for s in page.sections %}<section id="{{ s.anchor }}"><h2>{{ s.title }}</h2>
{{ bodies[loop.index0] }}
{% if s.anchor == video_section %}{{ video_block }}{% endif %}</section>{% endfor %}
{% if video_section is none %}{{ video_block }}{% endif %}
</body></html>
"""

_VIDEOS = """{% if videos %}<h3>Perform vs observe: the self arm performing, the other observed, unit traces</h3>
{% for v in videos %}<figure><video controls muted preload="auto" src="{{ v.path }}"></video><figcaption>{{ v.caption }}</figcaption></figure>{% endfor %}{% endif %}"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          loader=jinja2.DictLoader({"page.html": _TEMPLATE, "videos.html": _VIDEOS}))


def study_page(page: Page) -> str:
    """The page's HTML. Raises ValueError for a video path that leaves the page's folder."""
    for v in page.videos:
        if inside(v.path) != posixpath.normpath(v.path):
            raise ValueError(f"video {v.path!r}: not a relative path inside the study folder")
    anchors = {s.anchor for s in page.sections}
    video_section = page.video_section if page.video_section in anchors else None
    return _ENV.get_template("page.html").render(
        page=page, policy=POLICY, style=Markup(STYLE), answers=ANSWERS, meaning=MEANING,
        readable=readable, terms=glossary(page.verdicts),
        figures=headline_figures(page.sections), bodies=[render_markdown(s.markdown, s.folder) for s in page.sections],
        video_section=video_section, video_block=Markup(_ENV.get_template("videos.html").render(videos=page.videos)))


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links.update(v for k, v in attrs if k in ("src", "href") and v and not v.startswith("#"))


def linked_files(page: str) -> list[str]:
    """Every relative src/href of the page's elements (the files that must sit beside it); text that only
    looks like an attribute (an escaped tag in a report) is not a link."""
    parser = _Links()
    parser.feed(page)
    return sorted(link for link in parser.links if not re.match(r"^[a-z][a-z0-9+.-]*:", link))
