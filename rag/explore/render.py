"""The embedding map as a PNG image: a scatter of the points coloured by cluster, each
cluster's first terms written at its centre."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rag.explore.maps import CollectionMap

# Twelve colours apart in hue and readable on white (Tableau's palette, extended by cycling).
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295",
)  # fmt: skip


def render_png(built: CollectionMap, path: Path, *, size: int = 1200, points: int = 50_000) -> int:
    """Draw at most ``points`` points (the first of the map's random order) into ``path``;
    the number drawn."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    n = min(points, len(built.ids))
    if n:
        xy = built.xy[:n]
        low, high = np.percentile(xy, [0.5, 99.5], axis=0)
        span = np.maximum(high - low, 1e-9)
        margin = size * 0.05
        scaled = margin + (xy - low) / span * (size - 2 * margin)
        scaled[:, 1] = size - scaled[:, 1]  # y grows upwards on the map
        for (x, y), cluster in zip(scaled.tolist(), built.cluster[:n].tolist(), strict=True):
            colour = PALETTE[cluster % len(PALETTE)]
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        for info in built.meta.clusters:
            members = scaled[built.cluster[:n] == info.id]
            if len(members) and info.terms:
                x, y = np.median(members, axis=0).tolist()
                draw.text((x, y), ", ".join(info.terms[:3]), fill="black", anchor="mm")
    image.save(path, format="PNG")
    return n
