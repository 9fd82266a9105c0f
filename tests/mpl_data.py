"""The Multi-Power Law authors' published loss curves (tests/data/mpl-loss-curves, MIT) with the LR of every step,
built from each file's name as their data loader does (see that folder's README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from schedsweep.predict import Curve

FOLDER = Path(__file__).parent / "data" / "mpl-loss-curves"
WARMUP, PEAK, END = 2160, 3e-4, 3e-5
TRAIN = ["cosine_24000", "constant_24000", "wsdcon_9"]
TEST = ["constant_72000", "cosine_72000", "wsdcon_3", "wsdcon_18", "wsd_20000_24000", "wsdld_20000_24000"]
# The source README's errors of the Multi-Power Law on TEST: mean and worst relative error.
PUBLISHED = {"25": (0.00110, 0.00409), "100": (0.00142, 0.00583)}


def lrs(name: str) -> np.ndarray:
    kind, *args = name.split("_")
    warm = np.linspace(0, PEAK, WARMUP)
    if kind == "cosine":
        total = int(args[0])
        t = np.arange(WARMUP, total)
        return np.concatenate([warm, END + 0.5 * (PEAK - END) * (1 + np.cos(np.pi * (t - WARMUP) / (total - WARMUP)))])
    if kind == "constant":
        return np.concatenate([warm, np.full(int(args[0]) - WARMUP, PEAK)])
    if kind == "wsdcon":
        return np.concatenate([warm, np.full(8000 - WARMUP, PEAK), np.full(16000 - 8000, int(args[0]) * 1e-5)])
    decay, total = int(args[0]), int(args[1])
    t = np.arange(decay, total)
    if kind == "wsd":
        tail = PEAK ** ((total - t) / (total - decay)) * END ** ((t - decay) / (total - decay))
    else:  # wsdld: linear decay
        tail = PEAK + (END - PEAK) * (t - decay) / (total - decay)
    return np.concatenate([warm, np.full(decay - WARMUP, PEAK), tail])


def curve(model: str, name: str) -> Curve:
    data = np.genfromtxt(FOLDER / model / f"{name}.csv", delimiter=",", names=True)
    lr = lrs(name)
    keep = data["step"] < len(lr)  # curves that end at 24000 are used for t < 24000 only
    return Curve(lr=lr, steps=data["step"][keep].astype(np.int64), loss=data["loss"][keep], name=name)


def relative_errors(law, model: str, names: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        c = curve(model, name)
        out[name] = np.abs(law.predict(c.lr, c.steps) - c.loss) / c.loss
    return out
