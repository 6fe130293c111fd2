"""The package layout: one `mirrorlab` namespace whose layers import only downwards (import-linter)."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def installed_layout(root: Path) -> Path:
    """The source tree as `pip install .` lays it out (pyproject's package-dir map), under `root`."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = config["package-dir"]
    for package in config["packages"]:
        parent = max((p for p in folders if package == p or package.startswith(p + ".")), key=len)
        source = REPO / folders[parent] / Path(*package.split(".")[len(parent.split(".")):])
        target = root / Path(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for f in source.glob("*.py"):
            shutil.copy(f, target / f.name)
    return root


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config", str(REPO / "pyproject.toml"),
                           "--no-cache"], cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return installed_layout(tmp_path_factory.mktemp("layout"))


def test_every_layer_contract_holds(layout):
    done = lint(layout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 5 kept, 0 broken." in done.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("mirrorlab/analysis/intervals.py", "from mirrorlab.agents import runs", "Data flows one way"),
    ("mirrorlab/envs/toy.py", "import mirrorlab.experiments.runner", "Data flows one way"),
    ("mirrorlab/agents/toy.py", "from mirrorlab.analysis import intervals", "Agents use envs and encoders"),
    ("mirrorlab/analysis/summary.py", "from mirrorlab.files import atomic_write_text", "Analysis is pure"),
    ("mirrorlab/experiments/video.py", "from mirrorlab.experiments import analyze", "Commands are leaves"),
    ("mirrorlab/experiments/stages/measurement.py", "from mirrorlab.experiments import train", "Commands are leaves"),
    ("mirrorlab/experiments/stages/spillover.py", "from scipy import stats", "Stages orchestrate"),
])
def test_an_upward_import_breaks_a_contract(layout, tmp_path, module, line, contract):
    broken = tmp_path / "broken"
    shutil.copytree(layout, broken)
    target = broken / module
    target.write_text(target.read_text() + f"\n{line}  # the violation under test\n")
    done = lint(broken)
    assert done.returncode != 0 and contract in done.stdout and "BROKEN" in done.stdout, done.stdout
