"""AutoLRS (Jin et al., ICLR 2021, arXiv 2105.10762): a constant LR per stage, chosen on the fly by BO.

Followed from the authors' code, YuchenJin/autolrs @63e6ba9 (``autolrs_server.py``, the search; ``autolrs_callback.py``,
the training side), cited as ``server.py:LINE`` / ``callback.py:LINE``. The paper body itself was not read here;
its README states the defaults: "tau' = tau/10 and BO explores 10 LRs in each stage, so the number of steps for
searching LR is equal to the number of steps for actual training".

A run is a sequence of stages. Stage k:

1. **Search** (the loop's trial protocol, :mod:`schedsweep.train.trials`). From the stage's start state, BO
   proposes ``trials`` = 10 LRs one at a time (``LR_TO_EXPLORE``, server.py:100); each is trained for ``tau'``
   updates and rewound (server.py:261 'ckpt' then 312/330 'restore'; callback.py:38-52 save and restore the model
   and optimizer). Its loss series is fitted with the exponential forecasting model below and forecast ``tau``
   updates ahead; BO is told (LR, forecast) (server.py:295-302; a NaN series is told 1e6, server.py:296-297).
2. **Stage**: the state is rewound once more and the stage trains ``tau`` updates at the LR of the smallest
   forecast (server.py:305-316): it continues from the stage's start state, not from a trial's end.
3. **Growth** (server.py:217-233): while ``tau' < tau_max / 10`` both tau' and tau double; once not, the
   forecasting switches from the training loss of every trial update to the held-out loss every
   ``tau' / 16`` updates (``val_stage``, ``val_freq``, server.py:119, 225, 230).

Constants (server.py:97-101): ``tau`` = 1000 (EXPLOITATION_STEP), ``tau'`` = 100 (LR_STEPS, the ratio 0.1 is the
``trial_fraction``), ``tau_max`` = 8000 (TAU_MAX), ``trials`` = 10. LR search range: [min_lr, max_lr] log-uniform
(server.py:249, ``Real(min_lr, max_lr, 'log-uniform')``; run.sh: 0.001 to 0.1): here ``max_lr`` is the sweep's peak
LR and ``min_lr`` a ratio of it (default 0.01, run.sh's ratio), so the multiplier f is in [min_lr, 1].

BO (server.py:249): scikit-optimize ``Optimizer(GP, n_initial_points=1, acq_func='LCB', kappa=1e6)``, a new one each
stage (its history is cleared at server.py:318-320). skopt's GP (``skopt/utils.py`` ``cook_estimator``):
``ConstantKernel(1, (0.01, 1000)) * Matern(length_scale=1, bounds (0.01, 100), nu=2.5)``, ``normalize_y=True``,
Gaussian noise (a ``WhiteKernel``), 2 optimizer restarts, on log10(LR) scaled to [0, 1]. The first LR of a stage is
random (n_initial_points=1); later ones minimise LCB = mu - 1e6 sigma, which is, in effect, the LR of largest
posterior uncertainty. Departures: scikit-learn's GaussianProcessRegressor (skopt is unmaintained and not a
dependency) with the same kernel, bounds and normalisation; LCB minimised over a grid of 10 001 points of the
scaled axis instead of skopt's 10 000 random samples plus L-BFGS polishing, so it is deterministic; the first LR and
the GP's restarts are seeded from the run's seed and the stage (the authors' are unseeded).

Exponential forecasting (server.py:18-63, ``exp_forecast``): the series (x = 0 .. n-1) is cleaned by an iterative
spline (k = 2, scipy ``UnivariateSpline`` default smoothing): training losses 10 rounds dropping the 3% largest
residuals among the first half, held-out losses 1 round dropping the largest (server.py:23-51); a spline through the
rest is evaluated at every x; then ``y = a exp(b x) + c`` with ``b = -exp(beta)``, beta by Nelder-Mead from 0
(xtol = ftol = 1e-5) on the least-squares residual of (a, c), which are then solved by least squares; the forecast
is the model at x = tau (training losses) or tau / val_freq (held-out losses), server.py:273-276. In the held-out
phase a series that reaches the loss where the search began is forecast as its last value (server.py:286-288).
Departure: for a series of 16 points or fewer, 3% rounds to 0 outliers, which the authors' slice
``[int(round(-0.48)):]`` turns into *every* point (it empties the series); here it drops none. A series of fewer than 4
points (too short for a k = 2 spline) is told to BO as a diverged one (1e6).

Budget (honest compute): a run of T updates pays for its trials. The stages are laid out from T when the
schedule is built: each costs ``trials * tau'`` trial updates plus its stage; the last stage is shortened to what
is left, and a remainder too small for another search plus one update joins the previous stage. So
``kept_steps + trial_steps = T`` (less when a diverging trial stops early) and AutoLRS is ranked against fixed schedules at equal compute. ``tau`` and
``tau_max`` are updates (whole numbers >= 1, as the authors') or fractions of the budget (< 1), for budgets far
below the authors' 1000-step stages. Departures: no warm-up (the authors' optional manual warm-up,
callback.py:55-60, is left out); the first stage's search starts at update 0; each trial reads the batches the
kept run reads next (the authors' trials consume fresh data), so a restore is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from schedsweep.schedules.base import require

NAN_LOSS = 1e6  # what BO is told for a diverged trial (server.py:296-297)
KAPPA = 1e6  # LCB's kappa (server.py:249)
GRID = 10_001  # points of the scaled log-LR axis where LCB is minimised


@dataclass(frozen=True)
class Stage:
    start: int  # its first kept update
    trial: int  # tau': updates per trial
    length: int  # tau: kept updates (the last stage may be shorter)
    forecast_at: int  # tau as planned: the forecast horizon in updates
    held_out: bool  # forecast the held-out loss (every trial / 16 updates) instead of the training loss

    @property
    def every(self) -> int:
        return max(1, self.trial // 16) if self.held_out else 0


def _steps(value: float, total: int) -> int:
    return value if isinstance(value, int) else max(1, math.floor(value * total + 0.5))


def plan(total: int, tau: float, tau_max: float, trial_fraction: float, trials: int) -> list[Stage]:
    """The stages of a budget of `total` updates, trials included (see the module docstring)."""
    length, longest = _steps(tau, total), _steps(tau_max, total)
    trial = max(1, round(length * trial_fraction))
    held_out, kept, left, stages = False, 0, total, []
    while left > 0:
        cost = trials * trial
        if stages and left < cost + 1:
            last = stages.pop()
            stages.append(Stage(last.start, last.trial, last.length + left, last.forecast_at, last.held_out))
            break
        require(left > cost, "autolrs", "tau", tau,
                f"small enough that one search ({trials} trials of {trial} updates) leaves updates to train in a "
                f"budget of {total}; for small budgets give tau as a fraction of the budget (e.g. schedule.tau=0.04)")
        n = min(length, left - cost)
        stages.append(Stage(kept, trial, n, length, held_out))
        kept, left = kept + n, left - cost - n
        if trial < longest / 10:  # server.py:223-230 (LR_STEPS < TAU_MAX / 10)
            trial, length = trial * 2, length * 2
        else:
            held_out = True
    return stages


class AutoLRS:
    """AutoLRS: each stage's constant LR chosen by BO over trials that rewind (module docstring: sources).

    A :class:`schedsweep.train.trials.Controller`: ``f(t)`` is the chosen multiplier of the current stage;
    ``kept_steps`` is the budget less the trials; ``search`` runs a stage's trials; ``state_dict`` holds the
    chosen LRs and the stage's BO history (tried multipliers and their forecasts), so a run stopped mid-search
    resumes with the trials it had finished.
    """

    def __init__(self, total_steps: int, warmup_steps: int = 0, warmup_start: float = 0.0, *,  # always 0: no warm-up
                 tau: float = 1000.0, tau_max: float = 8000.0,
                 trial_fraction: float = 0.1, trials: int = 10, min_lr: float = 0.01) -> None:
        name = "autolrs"
        whole = lambda v: (isinstance(v, int) and v >= 1) or (isinstance(v, float) and 0.0 < v < 1.0)
        tau = int(tau) if isinstance(tau, float) and tau >= 1 and tau == int(tau) else tau
        tau_max = int(tau_max) if isinstance(tau_max, float) and tau_max >= 1 and tau_max == int(tau_max) else tau_max
        require(whole(tau), name, "tau", tau, "a whole number of updates >= 1 or a fraction of the budget in (0, 1)")
        require(whole(tau_max), name, "tau_max", tau_max, "a whole number of updates >= 1 or a fraction in (0, 1)")
        require(0.0 < trial_fraction <= 1.0, name, "trial_fraction", trial_fraction, "in (0, 1]")
        require(trials >= 2, name, "trials", trials, "a whole number >= 2 (the first is random, then BO)")
        require(0.0 < min_lr < 1.0, name, "min_lr", min_lr, "a ratio of the peak LR in (0, 1)")
        self.trials, self.min_lr = trials, min_lr
        self.stages = plan(total_steps, tau, tau_max, trial_fraction, trials)
        self.kept_steps = self.stages[-1].start + self.stages[-1].length
        self.chosen: list[float] = []  # the multiplier of each searched stage
        self.tried: list[tuple[float, float]] = []  # this stage's (multiplier, forecast) so far
        self.start_loss = math.nan  # the loss where the first search began (server.py:211, 286)

    # -- the schedule ------------------------------------------------------------------------------
    def __call__(self, t: Any) -> Any:
        steps = np.asarray(t, dtype=np.float64)
        starts = np.array([s.start for s in self.stages[: len(self.chosen)]], dtype=np.float64)
        levels = np.array(self.chosen or [1.0])
        index = np.clip(np.searchsorted(starts, steps, side="right") - 1, 0, len(levels) - 1)
        values = levels[index]
        return float(values) if np.ndim(t) == 0 else values

    # -- the controller ----------------------------------------------------------------------------
    def wants_search(self, step: int) -> bool:
        k = len(self.chosen)
        return k < len(self.stages) and self.stages[k].start == step

    def search(self, step: int, trials: Any) -> None:
        """Stage k's BO over `self.trials` LRs (resuming after those already in `tried`), then its choice."""
        k = len(self.chosen)
        stage = self.stages[k]
        while len(self.tried) < self.trials:
            factor = self._ask(trials.seed, k)
            result = trials.run(factor, stage.trial, stage.every)
            if math.isnan(self.start_loss) and result.losses:
                self.start_loss = result.losses[0]
            self.tried.append((factor, self._forecast(result, stage)))
        best = min(range(len(self.tried)), key=lambda i: self.tried[i][1])  # first of equals, as list.index
        self.chosen.append(self.tried[best][0])
        self.tried = []

    def _forecast(self, result: Any, stage: Stage) -> float:
        series = result.eval_losses if stage.held_out else result.losses
        if len(series) < 4 or not all(math.isfinite(v) for v in series):
            return NAN_LOSS
        if stage.held_out:
            horizon = stage.forecast_at / stage.every
            if max(series) >= self.start_loss:  # server.py:286-288
                return float(series[-1])
        else:
            horizon = stage.forecast_at
        value = exp_forecast(np.asarray(series, dtype=np.float64), horizon, training=not stage.held_out)
        return value if math.isfinite(value) else NAN_LOSS

    def _ask(self, seed: int, stage: int) -> float:
        """The next multiplier: random at a stage's first trial, then argmin of LCB on the GP posterior."""
        low = math.log10(self.min_lr)
        rng = np.random.default_rng([seed, stage, len(self.tried)])
        if not self.tried:
            return float(10.0 ** (low + (0.0 - low) * rng.uniform()))
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        x = np.array([[(math.log10(f) - low) / (0.0 - low)] for f, _ in self.tried])
        y = np.array([v for _, v in self.tried])
        kernel = ConstantKernel(1.0, (0.01, 1000.0)) * Matern(1.0, (0.01, 100.0), nu=2.5) + WhiteKernel()
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2,
                                      random_state=int(rng.integers(2**31 - 1)))
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bounds reached by the kernel fit on a handful of points
            gp.fit(x, y)
        grid = np.linspace(0.0, 1.0, GRID).reshape(-1, 1)
        mu, sigma = gp.predict(grid, return_std=True)
        z = float(grid[int(np.argmin(mu - KAPPA * sigma)), 0])
        return float(10.0 ** (low + (0.0 - low) * z))

    def state_dict(self) -> dict[str, Any]:
        return {"chosen": list(self.chosen), "tried": [list(p) for p in self.tried], "start_loss": self.start_loss}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.chosen = [float(v) for v in state["chosen"]]
        self.tried = [(float(f), float(v)) for f, v in state["tried"]]
        self.start_loss = float(state["start_loss"])

    def describe(self) -> list[dict[str, Any]]:
        """The stage layout (what `schedules show autolrs` prints)."""
        return [asdict(s) for s in self.stages]


def _clean(xs: np.ndarray, ys: np.ndarray, training: bool) -> tuple[np.ndarray, np.ndarray]:
    """server.py:23-51: drop outliers of an iterative k=2 spline fit among the first half of the series."""
    from scipy.interpolate import UnivariateSpline

    bound = xs[int((len(xs) - 1) * 0.5)]
    for _ in range(10 if training else 1):
        if len(xs) <= 3:
            break
        residual = np.abs(ys - UnivariateSpline(xs, ys, k=2)(xs))
        order = np.argsort(residual, kind="stable")
        drop = round(len(residual) * 0.03) if training else 1
        worst = set(order[len(order) - drop:].tolist()) if drop else set()
        # the authors compare an outlier's index (not its x) with the x at mid-series: kept as they wrote it
        keep = np.array([not (i in worst and i < bound) for i in range(len(xs))])
        xs, ys = xs[keep], ys[keep]
    return xs, ys


def exp_forecast(series: np.ndarray, horizon: float, training: bool) -> float:
    """server.py:53-63 and 84-92: smooth the series, fit a exp(b x) + c (b < 0), return it at x = horizon."""
    from scipy import optimize
    from scipy.interpolate import UnivariateSpline

    xs = np.arange(len(series), dtype=np.float64)
    cx, cy = _clean(xs, series, training)
    ys = UnivariateSpline(cx, cy, k=2)(xs) if len(cx) > 3 else series

    def residual(beta: np.ndarray) -> float:
        a = np.vstack([np.exp(-np.exp(beta[0]) * xs), np.ones(len(xs))]).T
        coef = np.linalg.lstsq(a, ys, rcond=None)[0]
        return float(np.sum((a @ coef - ys) ** 2))

    beta = optimize.fmin(residual, np.zeros(1), xtol=1e-5, ftol=1e-5, disp=False)[0]
    b = -math.exp(beta)
    a_, c_ = np.linalg.lstsq(np.vstack([np.exp(b * xs), np.ones(len(xs))]).T, ys, rcond=None)[0]
    return float(a_ * math.exp(b * horizon) + c_)
