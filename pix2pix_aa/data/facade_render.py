"""Render a :class:`~pix2pix_aa.data.facade_layout.FacadeLayout` as a photo-like RGB image.

The photo is what pix2pix must learn to produce from the label map, so it carries the things a
label map does not say and that alias when a network subsamples carelessly: brick or plaster
texture (real photographic texture from ``skimage.data.brick()/gravel()/grass()``), window
frames, mullions and glass reflections, shutter slats, balcony railings, dentils under the
cornice, shop signs, a lighting gradient, cast shadows under every overhang, per-building
colours, and sensor noise.

Written with plain numpy slicing (rather than a drawing library) because every element is an
axis-aligned rectangle; one image costs a few milliseconds.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from pix2pix_aa.data.facade_layout import Element, FacadeLayout

__all__ = ["render_photo", "sample_texture"]

_TEXTURES = ("brick", "gravel", "grass")


@cache
def _texture(name: str) -> np.ndarray:
    """A bundled scikit-image texture, mirrored to (2N, 2N) so it tiles seamlessly; zero mean, unit std."""
    if name not in _TEXTURES:
        raise ValueError(f"unknown texture {name!r}; expected one of {_TEXTURES}")
    import skimage.data

    t = getattr(skimage.data, name)().astype(np.float32)
    t = np.concatenate([t, t[::-1]], axis=0)
    t = np.concatenate([t, t[:, ::-1]], axis=1)
    t -= t.mean()
    t /= t.std() + 1e-6
    return t


def sample_texture(rng: np.random.Generator, name: str, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A (h, w) float32 window of a texture at a random offset, ``scale`` texels per pixel (bilinear)."""
    tex = _texture(name)
    n0, n1 = tex.shape
    oy, ox = rng.uniform(0, n0), rng.uniform(0, n1)
    ys = oy + np.arange(shape[0], dtype=np.float32) * scale
    xs = ox + np.arange(shape[1], dtype=np.float32) * scale
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    y0m, y1m = y0 % n0, (y0 + 1) % n0
    x0m, x1m = x0 % n1, (x0 + 1) % n1
    top = tex[np.ix_(y0m, x0m)] * (1 - fx) + tex[np.ix_(y0m, x1m)] * fx
    bot = tex[np.ix_(y1m, x0m)] * (1 - fx) + tex[np.ix_(y1m, x1m)] * fx
    return top * (1 - fy) + bot * fy


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (all in [0, 1]) -> RGB float32 (3,)."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32)


def _style(rng: np.random.Generator) -> dict:
    """Per-building colours and choices."""
    u = rng.uniform
    wall_kind = rng.choice(["brick", "plaster", "plaster", "blocks"])
    if wall_kind == "brick":
        wall = _hsv(u(0.0, 0.07), u(0.45, 0.7), u(0.45, 0.75))
    else:  # plaster / stone: beige, ochre, pink, grey, pale yellow, white
        wall = _hsv(u(0.02, 0.16), u(0.05, 0.45), u(0.6, 0.92))
    stone = _hsv(u(0.06, 0.14), u(0.03, 0.2), u(0.75, 0.95))
    frames = [(0.93, 0.93, 0.9), (0.3, 0.2, 0.13), (0.15, 0.3, 0.2), (0.45, 0.47, 0.5)]
    shutters = [(0.2, 0.38, 0.25), (0.45, 0.3, 0.18), (0.55, 0.58, 0.6), (0.85, 0.84, 0.8), (0.3, 0.4, 0.55)]
    return {
        "wall_kind": str(wall_kind),
        "wall": wall,
        "wall_contrast": u(0.06, 0.14) if wall_kind != "brick" else u(0.15, 0.25),
        "texture_scale": u(0.7, 1.4),
        "stone": stone,
        "frame": np.array(frames[rng.integers(len(frames))], dtype=np.float32),
        "shutter": np.array(shutters[rng.integers(len(shutters))], dtype=np.float32),
        "glass": _hsv(u(0.55, 0.65), u(0.2, 0.5), u(0.12, 0.3)),
        "sky_top": _hsv(u(0.55, 0.62), u(0.25, 0.6), u(0.65, 0.95)),
        "sky_bottom": _hsv(u(0.55, 0.62), u(0.05, 0.25), u(0.85, 1.0)),
        "neighbour": _hsv(u(0.0, 0.15), u(0.05, 0.3), u(0.3, 0.6)),
        "iron": _hsv(u(0.0, 1.0), u(0.0, 0.3), u(0.08, 0.25)),
        "sign": _hsv(u(0.0, 1.0), u(0.5, 0.9), u(0.4, 0.9)),
        "wood": _hsv(u(0.05, 0.1), u(0.5, 0.75), u(0.2, 0.45)),
        "light_dir": 1.0 if rng.random() < 0.5 else -1.0,  # sun from the left (+1) or right (-1)
        "shadow": u(0.35, 0.6),  # strength of cast shadows
        "noise": u(0.008, 0.03),  # sensor noise std (in [0, 1] units)
    }


def _fine_noise(rng: np.random.Generator, shape: tuple[int, ...], amp: float) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * amp).astype(np.float32)


def _paint_wall(img: np.ndarray, rng, st: dict, e: Element, S: int) -> None:
    h, w = e.h, e.w
    scale = st["texture_scale"] * 256.0 / S  # texels per pixel: the same look at any size
    grain = sample_texture(rng, "gravel", (h, w), scale)
    yy = np.arange(h)[:, None]
    if st["wall_kind"] in ("brick", "blocks"):
        # Running bond: courses of bh pixels (a few pixels at 256, i.e. near the Nyquist
        # limit, like real brickwork), alternate courses offset by half a unit, mortar joints.
        if st["wall_kind"] == "brick":
            bh = max(2, int(round(S * rng.uniform(0.011, 0.018))))
            bw = int(round(bh * rng.uniform(2.2, 3.0)))
        else:  # ashlar stone blocks
            bh = max(3, int(round(S * rng.uniform(0.03, 0.05))))
            bw = bh * 2 + int(rng.integers(0, bh))
        xx = np.arange(w)[None, :] + (yy // bh % 2) * (bw // 2)
        unit = (yy // bh) * 7919 + xx // bw  # per-brick id -> per-brick tone
        tone = rng.standard_normal(4096).astype(np.float32)[unit % 4096]
        joint = ((yy % bh) == 0) | ((xx % bw) == 0)
        shade = 1.0 + st["wall_contrast"] * (0.5 * tone + 0.35 * grain)
        shade = np.where(joint, 1.0 + st["wall_contrast"] * (1.6 if st["wall_kind"] == "brick" else -1.6), shade)
    else:  # plaster: fine grain plus soft stains
        stains = sample_texture(rng, "grass", (h, w), scale * 0.3)
        shade = 1.0 + st["wall_contrast"] * (0.6 * grain + 0.4 * stains)
    img[e.y0 : e.y1, e.x0 : e.x1] = st["wall"] * shade[..., None] + _fine_noise(rng, (h, w, 1), 0.015)


def _paint_stone(img, rng, st, e: Element, S: int) -> None:
    """Cornice / molding / sill: light stone with a bright top edge, dark bottom edge, grain."""
    h, w = e.h, e.w
    patch = st["stone"] * (1.0 + 0.06 * sample_texture(rng, "gravel", (h, w), 0.8))[..., None]
    if h >= 3:
        patch[0] *= 1.12
        patch[-1] *= 0.6
    if e.kind == "roof" and h >= 6:
        # Profiled roof cornice: horizontal mouldings and a row of dentils (fine periodic detail).
        prof = 1.0 + 0.18 * np.sin(np.linspace(0, rng.uniform(3, 7) * np.pi, h, dtype=np.float32))
        patch *= prof[:, None, None]
        d0 = int(h * 0.55)
        d1 = min(h - 1, d0 + max(2, h // 4))
        period = max(3, int(round(S * rng.uniform(0.012, 0.02))))
        gaps = (np.arange(w) % period) >= (period * 0.6)
        patch[d0:d1, gaps] *= 0.55
    img[e.y0 : e.y1, e.x0 : e.x1] = patch


def _paint_pillar(img, rng, st, e: Element, S: int) -> None:
    h, w = e.h, e.w
    x = np.linspace(-1, 1, w, dtype=np.float32)
    shade = 0.75 + 0.35 * np.cos(x * np.pi / 2 + 0.4 * st["light_dir"])
    flutes = 1.0 - 0.15 * ((np.arange(w) % 3) == 0)
    tex = 1.0 + 0.05 * sample_texture(rng, "gravel", (h, w), 0.8)
    img[e.y0 : e.y1, e.x0 : e.x1] = st["stone"] * (tex * shade * flutes)[..., None]


def _glass(rng, st, h: int, w: int) -> np.ndarray:
    """Glass with a diagonal sky reflection and, sometimes, a curtain behind it."""
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    t = xx * rng.uniform(0.5, 1.5) - yy * rng.uniform(0.5, 1.5) + rng.uniform(-1, 1)
    refl = np.clip(np.sin(t * np.pi * rng.uniform(1, 2.5)), 0, 1) ** 2 * rng.uniform(0.2, 0.6)
    patch = st["glass"] + refl[..., None] * (st["sky_bottom"] - st["glass"])
    if rng.random() < 0.3:  # curtain: pale with vertical folds
        cw = int(w * rng.uniform(0.25, 0.5))
        folds = 0.85 + 0.15 * np.sin(np.arange(cw, dtype=np.float32) * rng.uniform(1.2, 2.2))
        curtain = _hsv(rng.uniform(0, 1), rng.uniform(0, 0.3), rng.uniform(0.6, 0.9)) * folds[None, :, None]
        patch[:, :cw] = 0.3 * patch[:, :cw] + 0.7 * curtain
    return patch


def _frame(patch: np.ndarray, color: np.ndarray, h: int, w: int, mullions: int = 1, transom: bool = True) -> None:
    t = max(1, int(round(min(h, w) * 0.07)))
    patch[:t] = color
    patch[-t:] = color
    patch[:, :t] = color
    patch[:, -t:] = color
    tm = max(1, t // 2 + 1)
    for m in range(1, mullions + 1):
        c = int(w * m / (mullions + 1))
        patch[:, c - tm // 2 : c - tm // 2 + tm] = color
    if transom and h > 12:
        r = int(h * 0.3)
        patch[r : r + tm] = color


def _paint_window(img, rng, st, e: Element, S: int) -> None:
    h, w = e.h, e.w
    patch = _glass(rng, st, h, w)
    _frame(patch, st["frame"], h, w)
    # Reveal: the window is recessed, so its top and sun-side edges are in shadow.
    r = max(1, h // 10)
    patch[:r] *= 0.55
    side = max(1, w // 10)
    if st["light_dir"] > 0:
        patch[:, :side] *= 0.7
    else:
        patch[:, -side:] *= 0.7
    img[e.y0 : e.y1, e.x0 : e.x1] = patch


def _paint_blind(img, rng, st, e: Element, S: int) -> None:
    h, w = e.h, e.w
    period = max(2, int(round(S / 256 * rng.uniform(2, 3.5))))
    slats = 1.0 - 0.3 * ((np.arange(h) % period) == period - 1)
    patch = st["shutter"] * slats[:, None, None] * np.ones((1, w, 1), np.float32)
    t = max(1, w // 10)
    patch[:, :t] *= 0.8
    patch[:, -t:] *= 0.8
    img[e.y0 : e.y1, e.x0 : e.x1] = patch


def _paint_door(img, rng, st, e: Element, S: int) -> None:
    h, w = e.h, e.w
    grain = 1.0 + 0.12 * np.repeat(rng.standard_normal((1, w)).astype(np.float32), h, axis=0)
    patch = st["wood"] * grain[..., None]
    patch += _fine_noise(rng, (h, w, 1), 0.02)
    t = max(1, w // 12)
    for (a, b) in ((0.08, 0.45), (0.55, 0.92)):  # two recessed panels per leaf
        ya, yb = int(h * a), int(h * b)
        for (c, d) in ((0.1, 0.45), (0.55, 0.9)):
            xa, xb = int(w * c), int(w * d)
            patch[ya : ya + t, xa:xb] *= 0.6
            patch[yb - t : yb, xa:xb] *= 1.3
            patch[ya:yb, xa : xa + t] *= 0.6
            patch[ya:yb, xb - t : xb] *= 1.3
    patch[:, w // 2 : w // 2 + 1] *= 0.5
    patch[: max(1, h // 15)] *= 0.5  # lintel shadow
    img[e.y0 : e.y1, e.x0 : e.x1] = patch


def _paint_shop(img, rng, st, e: Element, S: int) -> None:
    h, w = e.h, e.w
    sign_h = max(2, int(h * rng.uniform(0.15, 0.25)))
    patch = _glass(rng, st, h, w) * rng.uniform(0.8, 1.3)
    _frame(patch, st["iron"], h, w, mullions=max(1, w // max(8, int(S * 0.08))), transom=False)
    sign = np.ones((sign_h, w, 1), np.float32) * st["sign"]
    # Lettering: a row of small dark glyph blocks (high-frequency detail).
    ya, yb = int(sign_h * 0.3), max(int(sign_h * 0.3) + 1, int(sign_h * 0.75))
    gw = max(1, int(round(S / 256 * rng.uniform(1.5, 3))))
    xs = np.arange(w)
    glyphs = ((xs // gw) % 2 == 0) & (rng.random(w // gw + 1)[xs // gw] < 0.75)
    glyphs &= (xs > w * 0.12) & (xs < w * 0.88)
    sign[ya:yb, glyphs] = 0.95 - sign[ya:yb, glyphs] * 0.8
    patch[:sign_h] = sign
    img[e.y0 : e.y1, e.x0 : e.x1] = patch


def _paint_balcony(img, rng, st, e: Element, S: int) -> None:
    """A railing drawn over what is behind it: bars with gaps, top rail, slab."""
    h, w = e.h, e.w
    patch = img[e.y0 : e.y1, e.x0 : e.x1]
    period = max(3, int(round(S * rng.uniform(0.012, 0.022))))
    bar = max(1, period // 3)
    bars = (np.arange(w) % period) < bar
    patch *= 0.75  # the balcony floor shades what is behind the railing
    patch[:, bars] = st["iron"]
    rail = max(1, h // 8)
    patch[:rail] = st["iron"] * 1.3
    slab = max(1, h // 6)
    patch[-slab:] = st["stone"] * 0.9
    patch[-1] *= 0.6


def _paint_deco(img, rng, st, e: Element, S: int) -> None:
    h, w = e.h, e.w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((yy - h / 2) / max(h, 1), (xx - w / 2) / max(w, 1)) * 2
    rosette = 0.8 + 0.25 * np.cos(r * np.pi * rng.uniform(3, 6))
    img[e.y0 : e.y1, e.x0 : e.x1] = st["stone"] * rosette[..., None]


_PAINTERS = {
    "facade": _paint_wall,
    "molding": _paint_stone,
    "pillar": _paint_pillar,
    "cornice": _paint_stone,
    "shop": _paint_shop,
    "door": _paint_door,
    "blind": _paint_blind,
    "window": _paint_window,
    "balcony": _paint_balcony,
    "sill": _paint_stone,
    "deco": _paint_deco,
}

#: Classes that overhang the wall and cast a shadow below themselves.
_CASTS_SHADOW = {"cornice": 1.0, "sill": 0.6, "balcony": 1.2, "molding": 0.5}


def _background(rng, st, layout: FacadeLayout) -> np.ndarray:
    """Sky gradient with faint clouds above, a darker neighbouring building at the sides."""
    S = layout.size
    t = np.linspace(0, 1, S, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(st["sky_top"] * (1 - t) + st["sky_bottom"] * t, (S, S, 3)).copy()
    # Textures only where background stays visible (the sky rows and the side strips).
    sky = max(layout.sky, 1)
    img[:sky] += 0.05 * sample_texture(rng, "gravel", (sky, S), 0.15)[..., None]
    for x0, x1 in ((0, layout.left), (layout.right, S)):
        if x1 > x0:
            tex = sample_texture(rng, "brick", (S - layout.sky, x1 - x0), 0.8)
            img[layout.sky :, x0:x1] = st["neighbour"] * (1 + 0.1 * tex)[..., None]
    return img


def _shadows(rng, st, layout: FacadeLayout) -> np.ndarray:
    """Multiplicative (S, S) shading: cast shadows under overhangs, a lighting gradient."""
    S = layout.size
    shade = np.ones((S, S), np.float32)
    s = st["shadow"]
    for e in layout.elements:
        depth = _CASTS_SHADOW.get(e.cls)
        if depth is None:
            continue
        n = max(1, int(round(e.h * depth + S * 0.006)))
        dx = int(round(st["light_dir"] * n * 0.7))
        y0, y1 = e.y1, min(S, e.y1 + n)
        x0, x1 = max(0, e.x0 + dx), min(S, e.x1 + dx)
        if y1 <= y0 or x1 <= x0:
            continue
        fall = 1.0 - s * np.exp(-2.5 * np.arange(y1 - y0, dtype=np.float32) / n)
        shade[y0:y1, x0:x1] = np.minimum(shade[y0:y1, x0:x1], fall[:, None])
    yy = np.linspace(-0.5, 0.5, S, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, S, dtype=np.float32)[None, :]
    light = 1.0 + rng.uniform(0.1, 0.35) * st["light_dir"] * -xx + rng.uniform(-0.15, 0.1) * yy
    if rng.random() < 0.3:  # a neighbour's shadow falls diagonally across part of the facade
        edge = (xx * rng.uniform(0.5, 1.5) + yy) * st["light_dir"]
        light = light * np.where(edge < rng.uniform(-0.6, -0.1), rng.uniform(0.55, 0.75), 1.0)
    return shade * light


def render_photo(rng: np.random.Generator, layout: FacadeLayout) -> np.ndarray:
    """Render ``layout`` to an RGB photo (size, size, 3) uint8, deterministic given ``rng``."""
    S = layout.size
    st = _style(rng)
    img = _background(rng, st, layout)
    for e in layout.elements:
        _PAINTERS[e.cls](img, rng, st, e, S)
    img *= _shadows(rng, st, layout)[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * st["noise"]
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
