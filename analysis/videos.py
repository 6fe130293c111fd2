"""Perform-vs-observe episode videos: compose frames (arm views above, unit traces below) and write mp4.

Pure drawing on arrays with OpenCV (no matplotlib per frame, no models, no files: the caller encodes
the frames with `mirrorlab.files.write_mp4`).

Frame layout, for panel side `size` (a multiple of 16): a `2*size` x `2*size` RGB frame.

| rows                      | content                                                            |
|---------------------------|--------------------------------------------------------------------|
| 0 .. title_h              | titles: "self performs" over the left view, "other observed" over the right |
| title_h .. title_h+size   | the self arm's view (left) and the other arm's view (right), `size` x `size` each |
| title_h+size .. 2*size    | trace panel: a key line, one lane per unit, a caption line         |

Each lane shows one hidden unit over the episode: perform (self) solid, observe (other) dashed,
one colour per unit, labelled "unit 17 r=+0.62" (r over all held-out episodes, as the analysis
reports it; the anti-mirror unit's label ends in "anti"). Each lane has its own y-range (the
unit's min..max over both traces of the episode), so shape, not amplitude, is compared across
lanes. The whole episode is drawn faded; the part up to the time cursor is drawn in full colour,
with markers on the current values. `step` k in 0..T: the views show the state after k actions;
activation i (i = 1..T) is the core's state after action i, so at k = 0 nothing is highlighted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# RGB (the frames are RGB end to end; OpenCV only draws numbers into channels).
MIRROR_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (140, 86, 75),
                  (227, 119, 194), (188, 189, 34), (23, 190, 207))
ANTI_COLOUR = (214, 39, 40)
MAX_UNITS = len(MIRROR_COLOURS)
TITLES = ("self performs", "other observed")
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PANEL_BG = (250, 250, 250)
_TITLE_BG = (40, 40, 40)
_INK = (30, 30, 30)
_GRID = (215, 215, 215)
_CURSOR = (90, 90, 90)


@dataclass(frozen=True)
class UnitTrace:
    """One hidden unit's activations over one episode, [T] each, and its r over all held-out episodes."""

    unit: int
    r: float
    perform: np.ndarray
    observe: np.ndarray
    anti: bool = False

    @property
    def label(self) -> str:
        return f"unit {self.unit} r={self.r:+.2f}" + (" anti" if self.anti else "")


def select_units(r: np.ndarray, n_top: int) -> tuple[list[int], int | None]:
    """The `n_top` units of highest r (descending) and the unit of lowest r among the rest.

    Units with r = nan (constant activity) are never selected. The anti-mirror unit is None
    when every unit with a finite r is already among the top ones.
    """
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"r must be one value per unit, [U]; got shape {r.shape}")
    if n_top < 1:
        raise ValueError(f"n_top must be >= 1; got {n_top}")
    finite = np.flatnonzero(np.isfinite(r))
    order = finite[np.argsort(-r[finite], kind="stable")]
    top = [int(u) for u in order[:n_top]]
    rest = order[n_top:]
    return top, (int(rest[-1]) if len(rest) else None)


def frame_shape(size: int) -> tuple[int, int, int]:
    """(height, width, 3) of a composed frame for panel side `size`."""
    return 2 * size, 2 * size, 3


def _blend(colour: Sequence[int], alpha: float, background: Sequence[int] = _PANEL_BG) -> tuple[int, ...]:
    return tuple(int(round(alpha * c + (1 - alpha) * b)) for c, b in zip(colour, background))


def _dashed_polyline(img: np.ndarray, pts: np.ndarray, colour, thickness: int, dash: float, gap: float) -> None:
    """Dashes of `dash` px separated by `gap` px along the path (the pattern runs on across vertices)."""
    if len(pts) < 2:
        return
    seg = np.diff(pts, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    period = dash + gap
    start = 0.0
    while start < cum[-1]:
        end = min(start + dash, cum[-1])
        a, b = np.interp(start, cum, pts[:, 0]), np.interp(start, cum, pts[:, 1])
        # the dash follows the path through any vertices it spans
        inner = [(np.interp(c, cum, pts[:, 0]), np.interp(c, cum, pts[:, 1])) for c in cum if start < c < end]
        c, d = np.interp(end, cum, pts[:, 0]), np.interp(end, cum, pts[:, 1])
        poly = np.array([(a, b), *inner, (c, d)], dtype=np.float64)
        cv2.polylines(img, [np.round(poly).astype(np.int32)], False, colour, thickness, cv2.LINE_AA)
        start += period


class EpisodeCanvas:
    """Draws the frames of one episode; the static parts (titles, labels, faded traces) are drawn once."""

    def __init__(self, traces: Sequence[UnitTrace], size: int, titles: Sequence[str] = TITLES, caption: str = ""):
        if size < 64 or size % 16:
            raise ValueError(f"size must be a multiple of 16, >= 64; got {size}")
        if not 1 <= len(traces) <= MAX_UNITS + 1:
            raise ValueError(f"between 1 and {MAX_UNITS + 1} unit traces; got {len(traces)}")
        lengths = {len(t.perform) for t in traces} | {len(t.observe) for t in traces}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"every trace must have the same number (>= 1) of timesteps; got lengths {sorted(lengths)}")
        self.traces, self.size, self.n_steps = list(traces), size, lengths.pop()
        self.height, self.width, _ = frame_shape(size)
        w = self.width
        self.font_scale = max(0.33, 0.45 * w / 512)
        self.thick = max(1, int(round(w / 512)))
        self.line = max(1, int(round(1.6 * w / 512)))
        self.text_h = cv2.getTextSize("Ag", _FONT, self.font_scale, self.thick)[0][1]
        self.title_h = max(16, size // 8)
        pad = max(4, w // 96)
        self.pad = pad
        top = self.title_h + size
        row = self.text_h + 2 * pad
        self.key_box = (top, top + row)
        self.caption_box = (self.height - row, self.height)
        label_w = max(cv2.getTextSize(t.label, _FONT, self.font_scale, self.thick)[0][0] for t in self.traces)
        self.x0, self.x1 = pad + label_w + 2 * pad, w - 2 * pad
        lane_top, lane_bottom = self.key_box[1], self.caption_box[0]
        edges = np.linspace(lane_top, lane_bottom, len(self.traces) + 1)
        self.lanes = [(int(round(a)), int(round(b))) for a, b in zip(edges[:-1], edges[1:])]
        self.colours = []
        mirror_i = 0
        for t in self.traces:
            if t.anti:
                self.colours.append(ANTI_COLOUR)
            else:
                self.colours.append(MIRROR_COLOURS[mirror_i % len(MIRROR_COLOURS)])
                mirror_i += 1
        self.points = [self._lane_points(t, lane) for t, lane in zip(self.traces, self.lanes)]
        self.background = self._background(titles, caption)

    # --- geometry ---------------------------------------------------------------------------------
    def x_of(self, step: int) -> int:
        """Pixel column of timestep `step` (0..T) in the trace panel."""
        return int(round(self.x0 + (self.x1 - self.x0) * step / self.n_steps))

    def _lane_points(self, trace: UnitTrace, lane: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        both = np.concatenate([trace.perform, trace.observe]).astype(np.float64)
        lo, hi = float(np.nanmin(both)), float(np.nanmax(both))
        if not hi - lo > 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        y_top, y_bottom = lane[0] + self.pad, lane[1] - self.pad
        xs = np.array([self.x0 + (self.x1 - self.x0) * (i + 1) / self.n_steps for i in range(self.n_steps)])

        def pts(values):
            ys = y_bottom - (np.asarray(values, dtype=np.float64) - lo) / (hi - lo) * (y_bottom - y_top)
            return np.stack([xs, ys], axis=1)

        return pts(trace.perform), pts(trace.observe)

    # --- drawing -----------------------------------------------------------------------------------
    def _text(self, img, text, x, y_baseline, colour=_INK, scale=1.0) -> None:
        cv2.putText(img, text, (int(x), int(y_baseline)), _FONT, self.font_scale * scale, colour, self.thick,
                    cv2.LINE_AA)

    def _width(self, text: str) -> int:
        return cv2.getTextSize(text, _FONT, self.font_scale, self.thick)[0][0]

    def _background(self, titles: Sequence[str], caption: str) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = _PANEL_BG
        img[:self.title_h] = _TITLE_BG
        for i, title in enumerate(titles):
            tw = cv2.getTextSize(title, _FONT, self.font_scale, self.thick)[0][0]
            self._text(img, title, i * self.size + (self.size - tw) / 2, (self.title_h + self.text_h) / 2,
                       (255, 255, 255))
        # key: a solid and a dashed sample line
        k0, k1 = self.key_box
        y = (k0 + k1) // 2
        x = self.pad
        seg = 6 * self.pad
        cv2.line(img, (x, y), (x + seg, y), _INK, self.line, cv2.LINE_AA)
        names = ("perform (self)", "observe (other)")
        widest_step = self._width(f"t = {self.n_steps}/{self.n_steps}")
        if 2 * seg + 10 * self.pad + sum(map(self._width, names)) + widest_step > self.width - 2 * self.pad:
            names = ("perform", "observe")  # small videos: the titles above already say which arm
        x += seg + self.pad
        self._text(img, names[0], x, y + self.text_h / 2)
        x += self._width(names[0]) + 3 * self.pad
        _dashed_polyline(img, np.array([[x, y], [x + seg, y]], float), _INK, self.line, 1.6 * self.pad,
                         1.2 * self.pad)
        x += seg + self.pad
        self._text(img, names[1], x, y + self.text_h / 2)
        for (a, b), trace, colour, (p, o) in zip(self.lanes, self.traces, self.colours, self.points):
            cv2.line(img, (self.pad, a), (self.width - self.pad, a), _GRID, 1)
            self._text(img, trace.label, self.pad, (a + b + self.text_h) / 2, colour)
            faded = _blend(colour, 0.3)
            cv2.polylines(img, [np.round(p).astype(np.int32)], False, faded, self.line, cv2.LINE_AA)
            _dashed_polyline(img, o, faded, self.line, 2.5 * self.pad, 1.5 * self.pad)
        cv2.line(img, (self.pad, self.caption_box[0]), (self.width - self.pad, self.caption_box[0]), _GRID, 1)
        if caption:  # shrunk to fit the width
            scale = min(0.9, (self.width - 2 * self.pad) / max(1, self._width(caption)))
            self._text(img, caption, self.pad, (sum(self.caption_box) + self.text_h) / 2, (110, 110, 110), scale)
        return img

    def frame(self, step: int, self_image: np.ndarray, other_image: np.ndarray) -> np.ndarray:
        """The composed frame at timestep `step` (0..T): uint8 RGB, `frame_shape(size)`."""
        if not 0 <= step <= self.n_steps:
            raise ValueError(f"step must be in 0..{self.n_steps}; got {step}")
        for name, im in (("self_image", self_image), ("other_image", other_image)):
            if im.shape != (self.size, self.size, 3) or im.dtype != np.uint8:
                raise ValueError(f"{name} must be uint8 ({self.size}, {self.size}, 3); got {im.dtype} {im.shape}")
        img = self.background.copy()
        top = self.title_h
        img[top:top + self.size, :self.size] = self_image
        img[top:top + self.size, self.size:2 * self.size] = other_image
        xc = self.x_of(step)
        lane_top, lane_bottom = self.lanes[0][0], self.lanes[-1][1]
        cv2.line(img, (xc, lane_top), (xc, lane_bottom), _CURSOR, self.thick, cv2.LINE_AA)
        r = max(2, self.line + 1)
        for colour, (p, o) in zip(self.colours, self.points):
            if step >= 1:
                past_p, past_o = p[:step], o[:step]
                if step >= 2:
                    cv2.polylines(img, [np.round(past_p).astype(np.int32)], False, colour, self.line, cv2.LINE_AA)
                    _dashed_polyline(img, past_o, colour, self.line, 2.5 * self.pad, 1.5 * self.pad)
                cp = tuple(np.round(past_p[-1]).astype(int))
                co = tuple(np.round(past_o[-1]).astype(int))
                cv2.circle(img, co, r + 1, colour, self.line, cv2.LINE_AA)   # observe: hollow
                cv2.circle(img, cp, r, colour, -1, cv2.LINE_AA)             # perform: filled
        label = f"t = {step}/{self.n_steps}"
        tw = cv2.getTextSize(label, _FONT, self.font_scale, self.thick)[0][0]
        self._text(img, label, self.width - self.pad - tw, (sum(self.key_box) + self.text_h) / 2)
        return img


def episode_frames(canvas: EpisodeCanvas, self_frames: np.ndarray, other_frames: np.ndarray) -> Iterable[np.ndarray]:
    """Frames 0..T of one episode; `self_frames`, `other_frames` are [T+1, size, size, 3] (reset state first)."""
    expected = canvas.n_steps + 1
    if len(self_frames) != expected or len(other_frames) != expected:
        raise ValueError(f"need {expected} frames per side (reset + one per step); got "
                         f"{len(self_frames)} and {len(other_frames)}")
    for step in range(expected):
        yield canvas.frame(step, self_frames[step], other_frames[step])
