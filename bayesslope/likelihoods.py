"""Links and observation models of the transfer model, for PyMC (pytensor) and numpy.

One set of formulas serves three uses: building the PyMC model (``xp=pytensor.tensor``),
computing pointwise log-likelihoods and posterior predictive draws from a saved posterior
(``xp=numpy``), and simulating data in tests. A test pins the numpy log-likelihood to the
PyMC model's logp so the two cannot drift apart.

The mean response of observation ``i`` (see docs/model.md, "Variants")::

    eta_i = intercept[t_i] + slope[t_i] * xc_i (+ condition and group terms)
    p_i   = chance_i + (1 - chance_i - lapse[t_i]) * F(eta_i)        (F the inverse link)

with ``F`` the identity (then chance = lapse = 0), the logistic or the normal CDF.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "LINKS",
    "LIKELIHOODS",
    "COUNTS",
    "successes",
    "count_logpmf",
    "beta_binomial_phi",
    "PHI_MAX",
    "inverse_link",
    "inverse_link_deriv",
    "link_function",
    "response_mean",
    "pointwise_loglik",
    "predictive_draws",
    "P_EPS",
    "linear_predictor",
    "mean_response_draws",
    "log_likelihood_draws",
    "posterior_predictive_draws",
    "SHAPES",
    "HINGE_FRACTION",
    "hinge_width",
    "smooth_hinge",
    "hinge_from_ref",
    "shape_term",
]

# Mean functions of x on the link scale (see docs/model.md, "Shapes"):
#   linear:        eta = a + b * xc
#   hockey_stick:  eta = a + b * (h_w(t - c) - h_w(-c)), h_w a smooth hinge,
#                  t = s * (x - x_ref), c = s * (x0 - x_ref): a is the mean at x_ref
#   quadratic:     eta = a + b * xc + q * xc**2
SHAPES = ("linear", "hockey_stick", "quadratic")
# Width of the hockey stick's smooth kink as a fraction of the robust sd of x.
HINGE_FRACTION = 0.05

LINKS = ("identity", "logit", "probit")
LIKELIHOODS = ("normal", "student_t", "binomial", "beta_binomial")
# How y * n_eval becomes the success count k of the count likelihoods (docs/model.md,
# "Averaged accuracies"): "whole" rounds it to the nearest integer (the binomial pmf);
# "average" keeps it as is (the continuous extension of the pmf in k).
COUNTS = ("whole", "average")
# Success probabilities are kept inside [P_EPS, 1 - P_EPS] so a k > 0 at a predicted 0
# (e.g. LAMBADA at chance 0 far out on the floor) has a finite, very low likelihood.
P_EPS = 1e-9
_SQRT2 = math.sqrt(2.0)


def _is_numpy(xp) -> bool:
    return xp is np


def hinge_width(x) -> float:
    """Width ``w`` of the hockey stick's smooth kink: ``HINGE_FRACTION`` x robust sd of x.

    The robust sd is ``min(sd, 1.4826 MAD)`` over all rows (1 if x is constant), so a long
    tail of early checkpoints does not blur the kink. Computed from the design's x alone,
    so the PyMC model and every numpy consumer (log-likelihood, predictions) agree.
    """
    x = np.asarray(x, dtype=float)
    sd = float(np.std(x))
    mad = 1.4826 * float(np.median(np.abs(x - np.median(x))))
    s = min(sd, mad) if mad > 0 else sd
    return HINGE_FRACTION * (s if s > 0 else 1.0)


def smooth_hinge(u, width: float, xp=np):
    """``w * softplus(u / w)``: 0 for ``u << -w``, ``u`` for ``u >> w``, smooth in between.

    The largest gap to the sharp hinge ``max(u, 0)`` is ``w log 2`` at ``u = 0``.
    """
    if _is_numpy(xp):
        return width * np.logaddexp(0.0, np.asarray(u, dtype=float) / width)
    return width * xp.softplus(u / width)


def hinge_from_ref(t, c, width: float, xp=np):
    """``h_w(t - c) - h_w(-c)``: the smooth hinge at threshold ``c``, zero at ``t = 0``.

    ``t = s_x (x - x_ref)`` is how far x is better than the reference, ``c = s_x (x0 -
    x_ref)`` the threshold on that scale. Subtracting the value at ``x_ref`` makes the
    intercept the mean at ``x_ref`` for every shape. It also keeps NUTS fast: with the
    threshold beyond the worst x (a straight task) the term is ``t`` and ``x0`` drops
    out, where a floor-level intercept would sit on the ridge ``a - b x0 = const``.
    """
    return smooth_hinge(t - c, width, xp) - smooth_hinge(-c, width, xp)


def shape_term(xc, design, tidx, x0=None, curvature=None, xp=np):
    """The covariate part of the mean function on the link scale, before the slope.

    Returns ``(g, extra)`` with ``eta = intercept + slope * g + extra``: ``g = xc`` and
    ``extra = 0`` for the straight line; ``g = s^y_t h_w(s_x (x - x0_t))`` for the hockey
    stick (``x0`` the thresholds per observation, data units); ``extra = q xc^2`` for the
    quadratic (``curvature`` per observation). Shared by the PyMC model
    (``xp=pytensor.tensor``) and the numpy side.

    The hockey stick is flat while x is *worse* than ``x0`` (``s_x (x - x0) < 0``, whatever
    y's orientation: weak models sit at the floor - chance for accuracies, the worst loss
    for losses) and moves in y's better direction at the oriented slope past it. With
    ``xc = s_x s^y_t (x - x_ref)``: ``s_x (x - x0) = s^y_t xc - s_x (x0 - x_ref)``.
    """
    g, extra = xc, 0.0
    if x0 is not None:
        sy = design.y_sign[tidx]
        c = design.x_sign * (x0 - design.x_ref)
        g = sy * hinge_from_ref(sy * xc, c, hinge_width(design.x), xp)
    if curvature is not None:
        extra = curvature * xc * xc
    return g, extra


def inverse_link(eta, link: str, xp=np):
    """``F(eta)``: identity, logistic or standard normal CDF."""
    if link == "identity":
        return eta
    if link == "logit":
        if _is_numpy(xp):
            from scipy.special import expit

            return expit(eta)
        return xp.sigmoid(eta)
    if link == "probit":
        if _is_numpy(xp):
            from scipy.special import ndtr

            return ndtr(eta)
        return 0.5 * xp.erfc(-eta / _SQRT2)
    raise ValueError(f"unknown link {link!r}; should be one of {list(LINKS)}")


def inverse_link_deriv(eta, link: str):
    """``F'(eta)`` in numpy (for data-scale slopes)."""
    eta = np.asarray(eta, dtype=float)
    if link == "identity":
        return np.ones_like(eta)
    if link == "logit":
        from scipy.special import expit

        p = expit(eta)
        return p * (1.0 - p)
    if link == "probit":
        return np.exp(-0.5 * eta**2) / math.sqrt(2.0 * math.pi)
    raise ValueError(f"unknown link {link!r}; should be one of {list(LINKS)}")


def link_function(p, link: str):
    """``F^{-1}(p)`` in numpy (used for data-scaled default priors)."""
    p = np.asarray(p, dtype=float)
    if link == "identity":
        return p
    if link == "logit":
        from scipy.special import logit

        return logit(p)
    if link == "probit":
        from scipy.special import ndtri

        return ndtri(p)
    raise ValueError(f"unknown link {link!r}; should be one of {list(LINKS)}")


def response_mean(eta, link: str, chance=0.0, lapse=0.0, xp=np):
    """``p = chance + (1 - chance - lapse) * F(eta)``; plain ``eta`` for the identity link."""
    if link == "identity":
        return eta
    return chance + (1.0 - chance - lapse) * inverse_link(eta, link, xp)


def _clip_p(p, xp=np):
    return xp.clip(p, P_EPS, 1.0 - P_EPS)


def successes(y, n, counts: str = "whole") -> np.ndarray:
    """Success counts ``k`` of the count likelihoods (float).

    ``round(y * n)``, or for averaged accuracies (``counts="average"``) ``y * n`` as is.
    """
    k = np.asarray(y, dtype=float) * np.asarray(n, dtype=float)
    return np.round(k) if counts == "whole" else k


def _gammaln(z, xp):
    if _is_numpy(xp):
        from scipy.special import gammaln

        return gammaln(z)
    return xp.gammaln(z)


# The beta-binomial's concentration is capped smoothly: phi = 1 / (d^2 + 1 / PHI_MAX). The
# log pmf is a difference of log-gammas of size phi log phi, rounding noise once phi passes
# ~1e12 (scipy's betabinom is off by ~200 at 1e16); a chain that wandered toward the
# binomial limit during warmup found a flat, noisy density there and its step size
# collapsed (Pythia, one nutpie chain of four stuck at overdispersion e^-16). At phi = 1e8
# the log-gammas are accurate to ~1e-6 and the model is the binomial to within a variance
# inflation of n / 1e8; for any overdispersion above 1e-3 phi moves by less than 1%.
PHI_MAX = 1e8


def beta_binomial_phi(overdispersion, xp=np):
    """Beta-binomial concentration ``phi = 1 / (d^2 + 1 / PHI_MAX)``, ``d`` the overdispersion.

    One definition for the PyMC models and the numpy log-likelihood and predictive draws.
    """
    return 1.0 / (xp.square(overdispersion) + 1.0 / PHI_MAX)


def count_logpmf(k, n, p, phi=None, xp=np):
    """Binomial (or, with ``phi``, beta-binomial) log pmf, continuous in ``k``.

    The binomial coefficient is written with log-gamma functions,
    ``lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)``, so the same expression is the
    pmf at whole ``k`` and its smooth extension between them (averaged accuracies,
    ``counts="average"``). ``p`` must lie in ``(0, 1)`` (clip it first), ``0 <= k <= n``.
    Beta-binomial: ``p ~ Beta(p phi, (1 - p) phi)``. Shared by the PyMC model
    (``xp=pytensor.tensor``) and the numpy side.
    """
    log_choose = _gammaln(n + 1.0, xp) - _gammaln(k + 1.0, xp) - _gammaln(n - k + 1.0, xp)
    if phi is None:
        return log_choose + k * xp.log(p) + (n - k) * xp.log1p(-p)
    a, b = p * phi, (1.0 - p) * phi

    def betaln(u, v):
        return _gammaln(u, xp) + _gammaln(v, xp) - _gammaln(u + v, xp)

    return log_choose + betaln(k + a, n - k + b) - betaln(a, b)


def pointwise_loglik(likelihood: str, y, mean, *, sigma=None, nu=None, n=None,
                     overdispersion=None, counts: str = "whole"):
    """Log-likelihood of each observation (numpy; broadcasts over leading draw dims).

    Parameters
    ----------
    likelihood : {"normal", "student_t", "binomial", "beta_binomial"}
    y : ndarray
        Observed scores (for the count likelihoods, the proportions ``k / n``).
    mean : ndarray
        Mean response ``p`` (data scale), shape ``(..., n_obs)``.
    sigma, nu : ndarray, optional
        Noise scale (broadcastable to ``mean``) and Student-t degrees of freedom.
    n : ndarray of int, optional
        Test-set sizes (count likelihoods).
    overdispersion : ndarray, optional
        ``1 / sqrt(phi)`` of the beta-binomial, broadcastable to ``mean``.
    counts : {"whole", "average"}, default "whole"
        ``k = round(y * n)`` and the pmf, or ``k = y * n`` and its continuous extension
        (:func:`count_logpmf`; equal to the pmf at whole ``k``).

    Returns
    -------
    ndarray
        Same shape as ``mean``. Counts are on the count scale (log pmf of ``k``).
    """
    from scipy import stats

    if likelihood == "normal":
        return stats.norm.logpdf(y, loc=mean, scale=sigma)
    if likelihood == "student_t":
        return stats.t.logpdf(y, df=nu, loc=mean, scale=sigma)
    if likelihood not in ("binomial", "beta_binomial"):
        raise ValueError(f"unknown likelihood {likelihood!r}; should be one of "
                         f"{list(LIKELIHOODS)}")
    k = successes(y, n, counts)
    p = _clip_p(mean)
    phi = None if likelihood == "binomial" else beta_binomial_phi(overdispersion)
    if counts == "average":
        return count_logpmf(k, np.asarray(n, dtype=float), p, phi)
    # Whole counts: scipy's pmf, as before the averaged option (the same numbers).
    if phi is None:
        return stats.binom.logpmf(k, n, p)
    return stats.betabinom.logpmf(k, n, p * phi, (1.0 - p) * phi)


def predictive_draws(rng, likelihood: str, mean, *, sigma=None, nu=None, n=None,
                     overdispersion=None):
    """Posterior (or prior) predictive draws of y on the data scale (proportions for counts).

    Same arguments as :func:`pointwise_loglik` (without ``y``); ``rng`` a numpy Generator.
    """
    mean = np.asarray(mean, dtype=float)
    if likelihood == "normal":
        return mean + sigma * rng.standard_normal(mean.shape)
    if likelihood == "student_t":
        return mean + sigma * rng.standard_t(nu, size=mean.shape)
    n_b = np.broadcast_to(n, mean.shape)
    p = _clip_p(mean)
    if likelihood == "binomial":
        return rng.binomial(n_b, p) / n_b
    if likelihood == "beta_binomial":
        phi = beta_binomial_phi(overdispersion)
        q = rng.beta(p * phi, (1.0 - p) * phi)
        return rng.binomial(n_b, _clip_p(q)) / n_b
    raise ValueError(f"unknown likelihood {likelihood!r}; should be one of {list(LIKELIHOODS)}")


# -- numpy side: from a saved posterior to linear predictors, log-likelihoods, predictions --


def _post_draws(post, name: str) -> np.ndarray:
    return post[name].transpose("chain", "draw", ...).values


def linear_predictor(post, design, variants, x=None, task_idx=None, condition_idx=None,
                     group_idx=None) -> np.ndarray:
    """``eta`` per posterior draw and observation, shape (chain, draw, n_obs).

    Parameters
    ----------
    post : xarray.Dataset or DataTree node
        The posterior group.
    design : TransferDesign
    variants : VariantData
    x, task_idx, condition_idx, group_idx : ndarray, optional
        Evaluate at new points (x in data units; no latent x then) instead of the
        observations; without codes, new points get the reference condition and no
        group effect.
    """
    new = x is not None
    tidx = design.task_idx if task_idx is None else np.asarray(task_idx)
    a = _post_draws(post, "intercept")[..., tidx]
    b = _post_draws(post, "slope")[..., tidx]
    if new:
        xc = design.task_sign[tidx] * (np.asarray(x, dtype=float) - design.x_ref)
    elif variants.x_point is not None and "x_true" in post:
        xt = _post_draws(post, "x_true")
        pidx = np.where(variants.x_point >= 0, variants.x_point, 0)
        x_row = np.where(variants.x_point >= 0, xt[..., pidx], design.x)
        xc = design.task_sign[tidx] * (x_row - design.x_ref)
    else:
        xc = design.xc
    # New points without condition/group codes: reference condition, no group effect.
    if variants.condition_idx is not None and not (new and condition_idx is None):
        cidx = variants.condition_idx if condition_idx is None else np.asarray(condition_idx)
        a = a + (_post_draws(post, "intercept_mu_condition")
                 - _post_draws(post, "intercept_mu")[..., None])[..., cidx]
        b = b + (_post_draws(post, "slope_mu_condition")
                 - _post_draws(post, "slope_mu")[..., None])[..., cidx]
    if variants.group_idx is not None and not (new and group_idx is None):
        gidx = variants.group_idx if group_idx is None else np.asarray(group_idx)
        a = a + _post_draws(post, "group_intercept")[..., gidx]
        b = b + _post_draws(post, "group_slope")[..., gidx]
    # The shape of the fit is read off its posterior (x0: hockey stick, curvature:
    # quadratic), so every consumer of this function gets it without new arguments.
    x0 = _post_draws(post, "x0")[..., tidx] if "x0" in post else None
    q = _post_draws(post, "curvature")[..., tidx] if "curvature" in post else None
    g, extra = shape_term(xc, design, tidx, x0=x0, curvature=q)
    return a + b * g + extra


def _lapse_obs(post, variants, tidx):
    if variants.lapse is True:
        return _post_draws(post, "lapse")[..., tidx]
    return float(variants.lapse)


def mean_response_draws(post, design, variants, **new) -> np.ndarray:
    """Mean score ``p`` per draw and observation (data scale); see :func:`linear_predictor`.

    At new points (``x=``, ``task_idx=``) pass ``chance=`` for them too.
    """
    new = dict(new)
    chance_new = new.pop("chance", None)
    eta = linear_predictor(post, design, variants, **new)
    if variants.link == "identity":
        return eta
    tidx = new.get("task_idx")
    tidx = design.task_idx if tidx is None else np.asarray(tidx)
    if variants.chance is None:
        chance = 0.0
    else:
        chance = variants.chance if chance_new is None else np.asarray(chance_new)
    return response_mean(eta, variants.link, chance, _lapse_obs(post, variants, tidx))


def _obs_params(post, design, variants) -> dict:
    out: dict = {}
    tidx = design.task_idx
    if variants.likelihood in ("normal", "student_t"):
        s = _post_draws(post, "sigma")
        out["sigma"] = s[..., tidx] if s.ndim == 3 else s[..., None]
        if variants.likelihood == "student_t":
            out["nu"] = _post_draws(post, "nu")[..., None]
    else:
        out["n"] = variants.n_eval
        if variants.likelihood == "beta_binomial":
            out["overdispersion"] = _post_draws(post, "overdispersion")[..., tidx]
    return out


def log_likelihood_draws(post, design, variants) -> np.ndarray:
    """Pointwise log-likelihood of the scores, shape (chain, draw, n_obs).

    Count likelihoods give the log pmf of ``k = round(y * n)`` (or its continuous extension
    at ``k = y * n`` for ``counts="average"``); add ``log(n)`` to put it on the density
    scale of ``y = k / n`` (for comparisons with continuous models).
    """
    mean = mean_response_draws(post, design, variants)
    return pointwise_loglik(variants.likelihood, design.y, mean, counts=variants.counts,
                            **_obs_params(post, design, variants))


def posterior_predictive_draws(post, design, variants, *, random_seed=None) -> np.ndarray:
    """Posterior predictive scores (data scale), shape (chain, draw, n_obs)."""
    rng = np.random.default_rng(random_seed)
    mean = mean_response_draws(post, design, variants)
    params = _obs_params(post, design, variants)
    params = {k: np.broadcast_to(v, mean.shape) if k != "nu" else v for k, v in params.items()}
    return predictive_draws(rng, variants.likelihood, mean, **params)
