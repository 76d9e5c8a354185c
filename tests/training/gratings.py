"""Image folders of oriented gratings, written at test time (for the transfer-learning test).

Each class is one orientation: a sinusoidal grating at that angle with a random period,
phase and contrast, plus noise. Folders with different angles are different tasks that
share their low-level features (oriented edges), which is what transfer learning carries.
"""

import os

import numpy as np

from tests.data.images import write_image


def grating(angle_degrees, side, rng):
    """A `uint8` `(side, side, 3)` grating at `angle_degrees`, random period, phase, colour."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    theta = np.deg2rad(angle_degrees + rng.normal(0, 3))
    period = rng.uniform(4, 8)
    wave = np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period + rng.uniform(0, 2 * np.pi))
    colour = rng.uniform(0.3, 1.0, 3)
    image = 0.5 + 0.5 * wave[..., None] * colour * rng.uniform(0.5, 1.0) + rng.normal(0, 0.1, (side, side, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_gratings(root, angles, per_split, side=20, seed=0):
    """Writes `root/<split>/deg<angle>/<n>.png`, `per_split[split]` images per class; returns root."""
    rng = np.random.default_rng(seed)
    for split, count in per_split.items():
        for angle in angles:
            for index in range(count):
                path = os.path.join(root, split, f"deg{angle:03d}", f"{index:03d}.png")
                write_image(path, grating(angle, side, rng))
    return str(root)
