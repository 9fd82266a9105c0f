"""The Multi-Power Law authors' protocol on their published curves (tests/data/mpl-loss-curves, MIT):
fit on cosine_24000, constant_24000 and wsdcon_9, predict the six others.

Errors as the source's evaluation computes them: PredE = mean over the six curves of each curve's mean
|L - L_hat| / L, WorstE = mean over the curves of each curve's maximum.
Measured here (law="mpl", the authors' fitting protocol): 25M 0.00096 / 0.00362, 100M 0.00130 / 0.00571
(published 0.00110 / 0.00409 and 0.00142 / 0.00583); law="tissue": 25M 0.00130 / 0.00474, 100M 0.00144 / 0.00699.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import mpl_data as M
from schedsweep.predict import Law, fit
from schedsweep.predict import fitting
from schedsweep.predict.laws import from_units

# (PredE, WorstE) bounds: the published figures for mpl; for tissue, what it reaches with a 4% margin.
BOUNDS = {("25", "mpl"): M.PUBLISHED["25"], ("100", "mpl"): M.PUBLISHED["100"],
          ("25", "tissue"): (0.00135, 0.0049), ("100", "tissue"): (0.0015, 0.0073)}
# The authors' fitted parameters [L0, A, alpha, B, C, beta, gamma] (their src/config.py; LR in its own units).
AUTHORS = {"25": [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257],
           "100": [2.6514477, 0.60115152, 0.45295811, 437.9464276, 2.13245612, 0.59785199, 0.65523644]}


def published_errors(model: str, law: str) -> tuple[float, float, float, Law]:
    cpu = time.process_time()
    fitted = fit([M.curve(model, name) for name in M.TRAIN], law=law)
    cpu = time.process_time() - cpu
    errors = M.relative_errors(fitted, model, M.TEST)
    return np.mean([e.mean() for e in errors.values()]), np.mean([e.max() for e in errors.values()]), cpu, fitted


@pytest.mark.parametrize("model,law", list(BOUNDS))
def test_the_published_protocol_reaches_the_published_errors(model: str, law: str) -> None:
    pred_e, worst_e, cpu, fitted = published_errors(model, law)
    assert pred_e <= BOUNDS[model, law][0] and worst_e <= BOUNDS[model, law][1], (pred_e, worst_e)
    assert fitted.fit_error < 1.2e-3 and not fitted.notes
    if law == "mpl":  # the authors' protocol lands where theirs did (their L0 is B x peak lower: laws.py)
        l0, *rest = AUTHORS[model]
        assert np.allclose(list(fitted.params.values()), [l0 + rest[2] * M.PEAK, *rest], rtol=0.05), fitted.params
        assert fitted.params["L0"] == pytest.approx(l0 + rest[2] * M.PEAK, abs=0.01)
    assert cpu < 30  # CPU seconds: on a shared machine the wall time is the load's, not the fit's


def test_run_to_convergence_the_law_fits_the_published_curves_better_and_predicts_them_worse(monkeypatch) -> None:
    authors = published_errors("25", "mpl")
    monkeypatch.setattr(fitting, "AUTHORS_FIT", 0.0)  # step 3 (L-BFGS to convergence) after the authors' AdamW
    converged = published_errors("25", "mpl")
    assert converged[3].fit_error < 0.75 * authors[3].fit_error
    assert converged[0] > M.PUBLISHED["25"][0] > authors[0]


@pytest.mark.parametrize("model", ["25", "100"])
def test_the_authors_fitted_parameters_give_the_published_errors(model: str) -> None:
    l0, a, alpha, b, c, beta, gamma = AUTHORS[model]
    theirs = dict(L0=l0 + b * M.PEAK, A=a, alpha=alpha, B=b, C=c, beta=beta, gamma=gamma)  # their L0 + B x peak
    law = Law("mpl", from_units("mpl", theirs, M.PEAK), M.PEAK)
    errors = M.relative_errors(law, model, M.TEST)
    assert np.mean([e.mean() for e in errors.values()]) == pytest.approx(M.PUBLISHED[model][0], abs=1e-5)
    assert np.mean([e.max() for e in errors.values()]) == pytest.approx(M.PUBLISHED[model][1], abs=1e-5)  # 0.0040954: their README truncates
