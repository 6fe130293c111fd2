"""Where a long call's wall time goes: a stack sampler and the tables `bench study` prints from it.

A background thread looks at the profiled thread's Python stack every `interval` seconds and charges
the time since its last look to that stack. Sampling rather than cProfile because cProfile charges
every Python call, which inflates the rollout loops (many small calls) against torch kernels (few
long ones), and reports only per function; a sample carries the whole stack, so one interval is
charged both to the outermost *stage* it belongs to and to the innermost *kind of work* it is, and
the shares of one table add up to the whole. Frames are named by file and function (C functions
such as MuJoCo's step are charged to the Python frame that called them).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Callable

Tagger = Callable[[list[FrameType]], "str | None"]  # frames (outermost first) -> a tag of the sample, or None


@dataclass(frozen=True)
class Rule:
    """A frame whose file path contains `path` and (unless `function` is empty) whose qualified name holds
    `function` as whole dotted parts: a function's name, `Class.method`, or a class (any of its methods)."""

    label: str
    path: str
    function: str = ""

    def matches(self, code: CodeType) -> bool:
        if self.path not in code.co_filename.replace("\\", "/"):
            return False
        qualname = getattr(code, "co_qualname", code.co_name)  # e.g. CoreTracker.__call__
        return not self.function or f".{self.function}." in f".{qualname}."


class StackSampler:
    """Context manager: samples the thread that enters it. `samples` maps (stack of code objects,
    outermost first; tag) to wall seconds, `cpu` to that thread's CPU seconds over the same intervals
    (Linux: its own CPU clock; elsewhere empty). CPU seconds do not count time spent waiting for a
    core on a loaded machine (nor sleeping, nor other threads' work, such as a software GL
    rasteriser's), so their shares hold however busy the machine is."""

    def __init__(self, interval: float = 0.005, tagger: Tagger | None = None):
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self.interval, self.tagger = interval, tagger
        self.samples: Counter[tuple[tuple[CodeType, ...], str | None]] = Counter()
        self.cpu: Counter[tuple[tuple[CodeType, ...], str | None]] = Counter()
        self.wall = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "StackSampler":
        self._target = threading.get_ident()
        self._clock = getattr(time, "pthread_getcpuclockid", lambda _ident: None)(self._target)
        self._started, self._started_cpu = time.perf_counter(), self._cpu_now()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.wall = time.perf_counter() - self._started

    def _cpu_now(self) -> float:
        return 0.0 if self._clock is None else time.clock_gettime(self._clock)

    def _run(self) -> None:
        last, last_cpu = self._started, self._started_cpu  # a late first look still charges from the start
        while not self._stop.wait(self.interval):
            frame = sys._current_frames().get(self._target)
            now, now_cpu = time.perf_counter(), self._cpu_now()
            if frame is None:
                continue
            frames = []
            while frame is not None:
                frames.append(frame)
                frame = frame.f_back
            frames.reverse()
            tag = self.tagger(frames) if self.tagger else None
            key = (tuple(f.f_code for f in frames), tag)
            self.samples[key] += now - last
            if self._clock is not None:
                self.cpu[key] += now_cpu - last_cpu
            last, last_cpu = now, now_cpu

    @property
    def total(self) -> float:
        return sum(self.samples.values())

    @property
    def total_cpu(self) -> float:
        return sum(self.cpu.values())


def label_of(stack: tuple[CodeType, ...], rules: list[Rule], innermost: bool) -> str | None:
    """The label of the innermost (or outermost) frame that a rule matches; the first matching rule wins."""
    for code in (reversed(stack) if innermost else stack):
        for rule in rules:
            if rule.matches(code):
                return rule.label
    return None


def breakdown(sampler: StackSampler, key: Callable[[tuple[CodeType, ...], str | None], str | None],
              within: Callable[[tuple[CodeType, ...], str | None], bool] = lambda _s, _t: True,
              cpu: bool = False) -> Counter[str]:
    """Wall (or `cpu`) seconds by `key(stack, tag)` ("other" where it gives None), over the samples `within`
    selects."""
    out: Counter[str] = Counter()
    for (stack, tag), seconds in (sampler.cpu if cpu else sampler.samples).items():
        if within(stack, tag):
            out[key(stack, tag) or "other"] += seconds
    return out


def own_function(stack: tuple[CodeType, ...], _tag: str | None = None) -> str:
    """The innermost Python function of a sample, as `package/file.py:function` (its self time)."""
    code = stack[-1]
    parts = code.co_filename.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:])}:{code.co_name}"


def table(seconds: Counter[str], title: str, top: int | None = None, cpu: Counter[str] | None = None) -> list[str]:
    """Lines of a table: seconds and share of the table's total, largest first (the `top` largest); with
    `cpu`, CPU seconds and their share beside."""
    total, total_cpu = sum(seconds.values()), sum((cpu or {}).values())
    head = f"{title} ({total:.1f} s" + (f", {total_cpu:.1f} CPU s" if cpu is not None else "") + "):"
    lines = [head, f"  {'':<58}{'seconds':>9}{'share':>7}" + (f"{'CPU s':>9}{'share':>7}" if cpu is not None else "")]
    for label, s in seconds.most_common(top):
        line = f"  {label[:58]:<58}{s:>9.1f}{s / total if total else 0:>7.0%}"
        if cpu is not None:
            line += f"{cpu[label]:>9.1f}{cpu[label] / total_cpu if total_cpu else 0:>7.0%}"
        lines.append(line)
    return lines
