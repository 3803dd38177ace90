"""Random facade layouts: axis-aligned rectangles in CMP Facades classes, in paint order.

A layout is one building seen front-on, as in the CMP Facades photos: a dark-navy sky strip
(``background``) on top and sometimes at the sides, the ``facade`` wall, a roof ``cornice``,
floors with a regular grid of ``window`` s (per-building spacing), thin ``cornice`` heads above
and ``sill`` s below them, orange ``molding`` bands between floors, ``pillar`` s, ``blind`` s
(shutters), ``balcony`` s, small ``deco`` ornaments, and a ground floor with ``door`` s and
dark-red ``shop`` fronts. Rectangles are painted in the order of docs/DESIGN.md section 4, so a
later class covers an earlier one exactly as in the real annotations.

Only the geometry lives here; :mod:`pix2pix_aa.data.facade_render` turns a layout into a photo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pix2pix_aa.data.palette import CLASS_IDS

__all__ = ["Element", "FacadeLayout", "make_layout", "rasterize", "PAINT_ORDER"]

#: Classes in the order they are painted (later covers earlier).
PAINT_ORDER: tuple[str, ...] = (
    "background",
    "facade",
    "molding",
    "pillar",
    "cornice",
    "shop",
    "door",
    "blind",
    "window",
    "balcony",
    "sill",
    "deco",
)


@dataclass(frozen=True)
class Element:
    """One labelled rectangle ``[y0, y1) x [x0, x1)`` in pixels; ``kind`` refines rendering."""

    cls: str
    y0: int
    y1: int
    x0: int
    x1: int
    kind: str = ""

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0


@dataclass
class FacadeLayout:
    """A building: image ``size``, sky rows, wall extent ``[left, right)``, elements in paint order."""

    size: int
    sky: int
    left: int
    right: int
    elements: list[Element] = field(default_factory=list)


def _box(cls: str, y0: float, y1: float, x0: float, x1: float, size: int, kind: str = "") -> Element | None:
    """Round a float rectangle to pixels, clip to the image; ``None`` if it vanishes."""
    iy0, iy1 = max(0, int(round(y0))), min(size, int(round(y1)))
    ix0, ix1 = max(0, int(round(x0))), min(size, int(round(x1)))
    if iy1 <= iy0 or ix1 <= ix0:
        return None
    return Element(cls, iy0, iy1, ix0, ix1, kind)


@dataclass
class _Building:
    """One building's geometry and style, in pixels of a ``size`` x ``size`` image: drawn once by
    :func:`_draw_building` (every ``rng`` draw of the upper floors, in a fixed order), then read by
    the functions that place the rectangles."""

    S: float
    sky: float
    left: float
    right: float
    roof_h: float
    top: float  # the top of the first floor (below the sky and the roof)
    ground_h: float
    ground_top: float
    n_floors: int
    fh: float  # floor height
    n_cols: int
    margin: float
    spacing: float  # column pitch
    win_w: float
    win_h: float
    win_top: float  # window top, measured from the floor's top line
    attic_scale: float
    has_molding: bool
    mold_h: float
    has_pillars: bool
    pillar_w: float
    has_heads: bool
    head_h: float
    has_sills: bool
    sill_h: float
    overhang: float
    has_shutters: bool
    has_deco: bool
    deco_h: float
    balcony_floors: np.ndarray  # (n_floors,) bool
    balcony_full: bool
    skip: np.ndarray  # (n_floors + 1, n_cols) bool: windows left out (the last row: the ground floor)
    closed: np.ndarray  # (n_floors + 1, n_cols) bool: shutters closed


def _draw_building(rng: np.random.Generator, S: float) -> _Building:
    """The outline, the floor grid and the building-wide style choices (one building = one
    style, as in a real street photo). The order of the draws fixes every seed's building."""
    u = rng.uniform
    sky = S * u(0.02, 0.14) if rng.random() < 0.85 else 0.0
    left = S * u(0.02, 0.12) if rng.random() < 0.3 else 0.0
    right = S - (S * u(0.02, 0.12) if rng.random() < 0.3 else 0.0)
    bw = right - left
    roof_h = S * u(0.025, 0.055) if rng.random() < 0.8 else 0.0
    top = sky + roof_h
    ground_h = S * u(0.17, 0.27)
    ground_top = S - ground_h
    n_floors = int(rng.integers(3, 7))
    n_floors = max(1, min(n_floors, int((ground_top - top) // (S * 0.1))))
    fh = (ground_top - top) / n_floors
    n_cols = int(rng.integers(3, 8))
    margin = bw * u(0.03, 0.1)
    spacing = (bw - 2 * margin) / n_cols
    return _Building(
        S=S, sky=sky, left=left, right=right, roof_h=roof_h, top=top, ground_h=ground_h, ground_top=ground_top,
        n_floors=n_floors, fh=fh, n_cols=n_cols, margin=margin, spacing=spacing,
        win_w=spacing * u(0.38, 0.62), win_h=fh * u(0.48, 0.68), win_top=fh * u(0.14, 0.22),
        attic_scale=u(0.55, 0.8) if rng.random() < 0.3 else 1.0,
        has_molding=rng.random() < 0.55, mold_h=S * u(0.008, 0.018),
        has_pillars=rng.random() < 0.3, pillar_w=S * u(0.025, 0.05),
        has_heads=rng.random() < 0.7, head_h=S * u(0.012, 0.025),
        has_sills=rng.random() < 0.8, sill_h=S * u(0.008, 0.02),
        overhang=spacing * u(0.02, 0.08),
        has_shutters=rng.random() < 0.35,
        has_deco=rng.random() < 0.3, deco_h=S * u(0.012, 0.025),
        balcony_floors=rng.random(n_floors) < 0.22, balcony_full=rng.random() < 0.5,
        skip=rng.random((n_floors + 1, n_cols)) < 0.04, closed=rng.random((n_floors + 1, n_cols)) < 0.06,
    )


def make_layout(rng: np.random.Generator, size: int) -> FacadeLayout:
    """Draw a random facade layout for a ``size`` x ``size`` image.

    All dimensions are fractions of ``size`` so the same seed gives the same building at any
    resolution (up to rounding). The number of draws from ``rng`` does not depend on ``size``.
    """
    b = _draw_building(rng, float(size))
    by_cls: dict[str, list[Element | None]] = {c: [] for c in PAINT_ORDER}
    _place_outline(b, by_cls, size)
    for k in range(b.n_floors):
        _place_floor(b, k, by_cls, size)
    _place_ground_floor(rng, b, by_cls, size)
    elements = [e for cls in PAINT_ORDER for e in by_cls[cls] if e is not None]
    return FacadeLayout(size=size, sky=int(round(b.sky)), left=int(round(b.left)), right=int(round(b.right)),
                        elements=elements)


def _place_outline(b: _Building, by_cls: dict[str, list[Element | None]], size: int) -> None:
    """The wall, the roof cornice, the moldings between floors and the corner pillars."""
    by_cls["facade"].append(_box("facade", b.sky, b.S, b.left, b.right, size, "wall"))
    if b.roof_h:
        by_cls["cornice"].append(_box("cornice", b.sky, b.top, b.left, b.right, size, "roof"))
    if b.has_molding:
        for k in range(1, b.n_floors + 1):
            y = b.top + k * b.fh
            thick = 1.6 if k == b.n_floors else 1.0  # the ground-floor band is heavier
            by_cls["molding"].append(_box("molding", y - b.mold_h * thick, y, b.left, b.right, size, "band"))
    if b.has_pillars:
        by_cls["pillar"].append(_box("pillar", b.top, b.S, b.left, b.left + b.pillar_w, size))
        by_cls["pillar"].append(_box("pillar", b.top, b.S, b.right - b.pillar_w, b.right, size))


def _place_floor(b: _Building, k: int, by_cls: dict[str, list[Element | None]], size: int) -> None:
    """Floor ``k`` (0: the top one, the attic when its windows are smaller): a window per column
    with its shutters, head, ornament, sill or balcony, and a balcony along the floor."""
    fy = b.top + k * b.fh
    scale = b.attic_scale if k == 0 else 1.0
    wy0 = fy + b.win_top
    wy1 = wy0 + b.win_h * scale
    win_w, overhang = b.win_w, b.overhang
    for c in range(b.n_cols):
        if b.skip[k, c]:
            continue
        cx = b.left + b.margin + (c + 0.5) * b.spacing
        wx0, wx1 = cx - win_w / 2, cx + win_w / 2
        if b.has_shutters:
            by_cls["blind"].append(_box("blind", wy0, wy1, wx0 - win_w / 2, wx0, size, "shutter"))
            by_cls["blind"].append(_box("blind", wy0, wy1, wx1, wx1 + win_w / 2, size, "shutter"))
        if b.has_shutters and b.closed[k, c]:
            by_cls["blind"].append(_box("blind", wy0, wy1, wx0, wx1, size, "closed"))
        else:
            by_cls["window"].append(_box("window", wy0, wy1, wx0, wx1, size))
        if b.has_heads:
            by_cls["cornice"].append(_box("cornice", wy0 - b.head_h, wy0, wx0 - overhang, wx1 + overhang, size,
                                          "head"))
            if b.has_deco:
                dw = win_w * 0.35
                by_cls["deco"].append(_box("deco", wy0 - b.head_h - b.deco_h, wy0 - b.head_h, cx - dw / 2,
                                           cx + dw / 2, size))
        if b.balcony_floors[k] and not b.balcony_full:
            bh = (wy1 - wy0) * 0.4
            by_cls["balcony"].append(_box("balcony", wy1 - bh, wy1 + b.sill_h, wx0 - overhang * 3,
                                          wx1 + overhang * 3, size))
        elif b.has_sills:
            by_cls["sill"].append(_box("sill", wy1, wy1 + b.sill_h, wx0 - overhang, wx1 + overhang, size))
    if b.balcony_floors[k] and b.balcony_full:
        bh = (wy1 - wy0) * 0.4
        x0 = b.left + b.margin + b.spacing * 0.1
        x1 = b.right - b.margin - b.spacing * 0.1
        by_cls["balcony"].append(_box("balcony", wy1 - bh, wy1 + b.sill_h, x0, x1, size))


def _place_ground_floor(rng: np.random.Generator, b: _Building, by_cls: dict[str, list[Element | None]],
                        size: int) -> None:
    """Ground floor: a door, shop fronts in runs of up to three columns, windows elsewhere (its
    own draws from ``rng``, after the building's)."""
    u = rng.uniform
    S, ground_h, spacing, win_w = b.S, b.ground_h, b.spacing, b.win_w
    door_col = int(rng.integers(0, b.n_cols))
    has_shops = rng.random() < 0.6
    shop_h = ground_h * u(0.6, 0.82)
    door_h = ground_h * u(0.62, 0.85)
    door_w = spacing * u(0.42, 0.65)
    g_win_y0 = b.ground_top + ground_h * u(0.15, 0.25)
    g_win_y1 = g_win_y0 + ground_h * u(0.4, 0.55)
    shop_cols = rng.random(b.n_cols) < 0.7
    c = 0
    while c < b.n_cols:
        cx = b.left + b.margin + (c + 0.5) * spacing
        if c == door_col:
            by_cls["door"].append(_box("door", S - door_h, S, cx - door_w / 2, cx + door_w / 2, size))
            c += 1
        elif has_shops and shop_cols[c]:
            run = 1
            while c + run < b.n_cols and c + run != door_col and shop_cols[c + run] and run < 3:
                run += 1
            sx0 = b.left + b.margin + c * spacing + spacing * 0.08
            sx1 = b.left + b.margin + (c + run) * spacing - spacing * 0.08
            by_cls["shop"].append(_box("shop", S - shop_h, S, sx0, sx1, size))
            c += run
        else:
            if not b.skip[b.n_floors, c]:
                by_cls["window"].append(_box("window", g_win_y0, g_win_y1, cx - win_w / 2, cx + win_w / 2, size))
                if b.has_sills:
                    by_cls["sill"].append(
                        _box("sill", g_win_y1, g_win_y1 + b.sill_h, cx - win_w / 2 - b.overhang,
                             cx + win_w / 2 + b.overhang, size)
                    )
            c += 1


def rasterize(layout: FacadeLayout) -> np.ndarray:
    """Paint a layout into class ids: (size, size) uint8, 1 (background) where nothing is drawn."""
    labels = np.full((layout.size, layout.size), CLASS_IDS["background"], dtype=np.uint8)
    for e in layout.elements:
        labels[e.y0 : e.y1, e.x0 : e.x1] = CLASS_IDS[e.cls]
    return labels
