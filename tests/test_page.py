"""The study page from study folders made here (no study run needed): it opens with the answers, speaks in
readable measure names, keeps the config collapsed, shows a Markdown table cell with |r| whole, and stays inert
on a hostile folder (a report with <script> and onerror=, links and videos pointing outside) in headless Chromium."""

import json
import time

import numpy as np
import pytest

from mirrorlab.analysis.page import Page, Section, Video, inside, linked_files, render_markdown, study_page
from mirrorlab.errors import UserError
from mirrorlab.experiments.cli import main as cli
from mirrorlab.experiments.stages.page import write_study_page
from mirrorlab.files import MARKER

STAT = {"mean": 0.4, "ci95": [0.2, 0.6], "n": 5}
CLAIM = {"claim": "mirror units emerge through training", "condition": "shared", "compared_with": "untrained",
         "differences": {"n_mirror_fdr": STAT, "aligned_cka_debiased_excess": STAT}, "verdict": "supported"}
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cf"
                    "c0000003010100c9fe92ef0000000049454e44ae426082")
HOSTILE = """# report

<script>document.title = "pwned-script"</script>

<img src="x.png" onerror="document.title = 'pwned-onerror'">

Inline <b onmouseover="document.title='pwned-inline'">bold</b> and [a link](javascript:document.title='pwned-link').

![escape](../../../etc/passwd) ![absolute](/etc/passwd) ![data](data:image/png;base64,AAAA) ![encoded](%2e%2e/%2e%2e/x.png)

![fine](fig.png)
"""


def _paper_claims_report() -> str:
    """The toy replication's claims table as `replication_report` writes it (rows labelled `units with |r| > 0.6`)."""
    from mirrorlab.analysis.replication_report import paper_claims_table

    summary = {m: STAT for m in ("frac_r_gt_0.75", "frac_abs_r_gt_0.6", "max_r", "min_r")}
    conds = {c: {"summary": summary, "per_seed": [{"seed": 0, **{m: 0.4 for m in summary}}]}
             for c in ("shared", "separate", "shuffled_labels", "untrained")}
    return "# toy\n\n" + "\n".join(paper_claims_table(conds, 0)) + "\n\n![emergence](fig1.png)\n"


def _study(root, report: str, videos=None):
    out = root / "study"
    (out / "replicate").mkdir(parents=True)
    (out / MARKER).write_text(json.dumps({"command": "study", "format": "mirrorlab output folder"}))
    (out / "replicate" / "report.md").write_text(report)
    (out / "replicate" / "metrics.json").write_text(json.dumps({"claims": [CLAIM]}))
    for name in ("fig1.png", "fig.png", "x.png"):
        (out / "replicate" / name).write_bytes(PNG)
    (out / "config.json").write_text(json.dumps({"config": {"preset": "small", "seeds": [0]}, "git_commit": "abc"}))
    if videos is not None:
        (out / "videos").mkdir()
        (out / "videos" / "index.json").write_text(json.dumps(videos))
    return out


def test_the_page_opens_with_answers_readable_names_and_a_collapsed_config(tmp_path):
    out = _study(tmp_path, _paper_claims_report())
    page = write_study_page(out).read_text()
    order = [page.index(marker) for marker in ('id="answers"', "Mirror units emerge through training?",
                                                'src="replicate/fig1.png"', 'id="verdicts"', 'id="config"', 'id="toy"')]
    assert order == sorted(order)
    assert '<abbr title="n_mirror_fdr">mirror units</abbr>' in page  # readable name, field name in the tooltip
    assert "<code>aligned_cka_debiased_excess</code>" in page  # the glossary
    assert '<details id="config"><summary>' in page and "&#34;preset&#34;: &#34;small&#34;" in page
    assert all((out / link).is_file() for link in linked_files(page))


def test_markdown_is_inert_and_links_stay_inside_the_study():
    html = render_markdown(HOSTILE, "replicate")
    assert {tag for tag, _ in _tags(html)} == {"p", "a", "img", "h1"} - {"h1"}  # the report's own title is dropped
    assert not [a for _, attrs in _tags(html) for a in attrs if a.startswith("on")]
    assert "&lt;script&gt;" in html  # shown as text
    assert "javascript:" not in html.split("<a ")[1].split(">")[0]
    assert "/etc/passwd" not in "".join(linked_files(html)) and "data:" not in "".join(linked_files(html))
    assert 'src="replicate/fig.png"' in html
    assert inside("a/../../b") is None and inside("/etc") is None and inside("c:x") is None
    assert inside("../b", "replicate") == "b"
    assert inside("%2e%2e/%2e%2e/etc/passwd", "replicate") is None and inside("my%20fig.png") == "my fig.png"


def test_a_video_outside_the_study_is_refused_in_one_line(tmp_path):
    entry = {"path": "/etc/passwd", "units": [], "other_appearance": "x", "run_name": "r", "episode": 0,
             "episode_id": 0}
    out = _study(tmp_path, "# r\n", videos=[entry])
    with pytest.raises(UserError, match=r"videos/index.json: entry 0: key 'path': '/etc/passwd' lies outside"):
        write_study_page(out)
    (out / "videos" / "index.json").write_text(json.dumps([{"path": 3}]))
    with pytest.raises(UserError, match="entry 0: not a video entry"):
        write_study_page(out)
    with pytest.raises(ValueError, match="not a relative path inside"):
        study_page(Page("t", "s", [], [], [Video("../x.mp4", "c")]))
    assert not (out / "index.html").exists()


def _tags(page: str) -> list[tuple[str, list[str]]]:
    """Every element of the page with its attribute names, as a browser's parser sees them."""
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found = []

        def handle_starttag(self, tag, attrs):
            self.found.append((tag, [name for name, _ in attrs]))

    parser = Tags()
    parser.feed(page)
    return parser.found


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('profile')}", "--hide-scrollbars",
                 "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


def test_no_table_cell_splits_in_chromium(chromium, tmp_path):
    """Every row of every table has as many cells as its header, and `|r|` stays inside one cell; a screenshot
    of the claims table shows text (a blank or collapsed table fails)."""
    import imageio.v3 as iio
    from selenium.webdriver.common.by import By

    out = _study(tmp_path, _paper_claims_report())
    assert cli(["report", "--out", str(out)]) == 0
    chromium.get((out / "index.html").as_uri())
    widths = chromium.execute_script(
        "return [...document.querySelectorAll('#toy table')].map(t => [...t.rows].map(r => r.cells.length))")
    assert widths and all(len(set(rows)) == 1 for rows in widths), widths
    cells = [td.text for td in chromium.find_elements(By.CSS_SELECTOR, "#toy table td")]
    assert "units with |r| > 0.6" in cells and "separate cores: units with |r| > 0.6" in cells
    assert "r" not in cells
    # The headline figure loads under the page's Content-Security-Policy (files beside the page are allowed).
    assert chromium.execute_script("return document.querySelector('figure.headline img').naturalWidth") == 1
    table = chromium.find_elements(By.CSS_SELECTOR, "#toy table")[0]
    shot = tmp_path / "page.png"
    chromium.set_window_size(1280, chromium.execute_script("return document.documentElement.scrollHeight") + 100)
    assert chromium.save_screenshot(str(shot))
    r = table.rect
    crop = iio.imread(shot)[int(r["y"]):int(r["y"] + r["height"]), int(r["x"]):int(r["x"] + r["width"]), :3]
    assert crop.size and np.asarray(crop, float).std() > 10


def test_a_hostile_study_folder_renders_an_inert_page_in_chromium(chromium, tmp_path):
    out = _study(tmp_path, HOSTILE)
    # Claim text from metrics.json is escaped too.
    (out / "replicate" / "metrics.json").write_text(json.dumps({"claims": [
        {**CLAIM, "claim": "<img src=x onerror=\"document.title='pwned-claim'\">"}]}))
    page = write_study_page(out).read_text()
    tags = _tags(page)
    assert "script" not in {tag for tag, _ in tags} and "Content-Security-Policy" in page
    assert not [(tag, a) for tag, attrs in tags for a in attrs if a.startswith("on")]  # no event handler anywhere
    chromium.get((out / "index.html").as_uri())
    time.sleep(0.5)  # let any image error handler fire
    assert chromium.title == "mirrorlab study"
    assert chromium.execute_script("return document.scripts.length") == 0
    shown = chromium.execute_script("return document.body.innerText")
    assert '<script>document.title = "pwned-script"</script>' in shown  # shown as text, not run
