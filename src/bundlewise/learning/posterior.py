"""A Bayesian price-response posterior per segment, shrunk across bundles, updated per event.

Model of one offer (customer in segment :math:`g`, bundle :math:`B` with list total :math:`L`,
price :math:`p`, the trained pricer's appeal :math:`a` for the customer and bundle):

.. math::

    P(\\text{accept}) = \\sigma\\big(a + \\delta_g + \\omega_B - \\beta_g\\, p / L\\big)

- :math:`(\\delta_g, \\beta_g)`: the segment's appeal offset and price sensitivity, a 2-d
  Gaussian with prior mean :math:`(0, b_g)` (:math:`b_g` the trained pricer's sensitivity of the
  segment) and prior standard deviations ``prior_sd_appeal``, ``prior_sd_sensitivity``;
- :math:`\\omega_B`: the bundle's appeal offset, prior :math:`N(0, \\texttt{bundle\\_sd}^2)`: a
  bundle with little feedback keeps an offset near 0 and is priced by its segment's parameters
  (shrinkage across bundles), while acceptance feedback moves each bundle's own appeal.

**Update** (one accepted/rejected event). The joint prior of :math:`\\theta = (\\delta_g,
\\beta_g, \\omega_B)` is block-diagonal (the segment's 2x2 block and the bundle's variance).
With :math:`x = (1, -p/L, 1)` the log posterior :math:`y\\,\\eta - \\log(1 + e^\\eta) -
\\tfrac12 (\\theta - \\mu)^\\top \\Sigma^{-1} (\\theta - \\mu)`, :math:`\\eta = a + x^\\top\\theta`,
has its maximum on the line :math:`\\theta = \\mu + k\\,\\Sigma x`, where :math:`k` solves the
scalar equation :math:`k = y - \\sigma(\\eta_0 + s k)` (:math:`\\eta_0 = a + x^\\top\\mu`,
:math:`s = x^\\top \\Sigma x`). Newton's method on it (bracketed in :math:`[y - 1, y]`, at most
``MAX_NEWTON`` steps) gives the exact MAP; the Laplace covariance is the rank-one downdate
:math:`\\Sigma - \\frac{w}{1 + w s} \\Sigma x x^\\top \\Sigma` with
:math:`w = \\hat\\sigma (1 - \\hat\\sigma)` at the MAP. The marginals are kept (the segment's 2x2
block, the bundle's variance): the cross-covariance of this event is dropped, so the posterior
stays one small Gaussian per segment and per bundle and an update costs O(1).

**Forgetting** (``forgetting = f``, ``0 < f <= 1``). Before each update the touched segment's
and bundle's Gaussians are replaced by :math:`p^f\\,p_0^{1-f}` (:math:`p_0` the prior): the
precision is multiplied by :math:`f` (the covariance divided by it) and topped up with
:math:`(1 - f)` times the prior's precision, the mean moves accordingly. Old feedback fades with
a memory of about :math:`1 / (1 - f)` events, so a demand shift is followed; the top-up keeps
the covariance below the prior's in every direction the data does not inform (plain division
would grow it without bound there). ``f = 1`` is no forgetting.

The same events in the same order give the same posterior, bit for bit (pure float arithmetic
in a fixed order); :meth:`ResponsePosterior.to_json` is canonical (sorted) and
:meth:`ResponsePosterior.from_json` restores it exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from bundlewise.config import LearningConfig
from bundlewise.pricing.pricer import BundleKey, Pricer

#: Most Newton steps of one update (it converges in a handful; the bracket bounds the rest).
MAX_NEWTON = 50
#: Identifies the posterior's JSON.
JSON_FORMAT = "bundlewise.response_posterior"
JSON_VERSION = 1

FloatArray = npt.NDArray[np.float64]
# (mean delta, mean beta, var delta, cov, var beta, n events)
_Segment = tuple[float, float, float, float, float, int]
# (mean omega, var omega, n events)
_Bundle = tuple[float, float, int]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _solve_k(y: float, eta0: float, s: float) -> float:
    """The root of ``k - y + sigmoid(eta0 + s k)`` (increasing in k, root in [y - 1, y])."""
    lo, hi = y - 1.0, y
    k = 0.0
    for _ in range(MAX_NEWTON):
        p = _sigmoid(eta0 + s * k)
        h = k - y + p
        if h == 0.0:
            return k
        if h > 0.0:
            hi = k
        else:
            lo = k
        k_new = k - h / (1.0 + s * p * (1.0 - p))
        if not lo < k_new < hi:
            k_new = 0.5 * (lo + hi)
        if abs(k_new - k) <= 1e-13 * (1.0 + abs(k)):
            return k_new
        k = k_new
    return k


def _key(bundle_key: Sequence[str]) -> BundleKey:
    if isinstance(bundle_key, str):
        raise TypeError("bundle_key must be a sequence of item ids, not a string.")
    return tuple(sorted(str(i) for i in bundle_key))


class ResponsePosterior:
    """The price-response posterior (see the module docstring).

    Build it with :meth:`from_pricer` (the trained pricer is the prior) or :meth:`from_json`.
    :meth:`update` changes it in place; :meth:`copy` is cheap (the per-segment and per-bundle
    states are immutable tuples, so a copy shares them).
    """

    def __init__(
        self,
        *,
        prior_sensitivity: dict[str, float],
        default_sensitivity: float,
        prior_sd_appeal: float,
        prior_sd_sensitivity: float,
        bundle_sd: float,
        forgetting: float,
        segments: dict[str, _Segment] | None = None,
        bundles: dict[BundleKey, _Bundle] | None = None,
        n_updates: int = 0,
    ) -> None:
        for name, value in (
            ("default_sensitivity", default_sensitivity),
            ("prior_sd_appeal", prior_sd_appeal),
            ("prior_sd_sensitivity", prior_sd_sensitivity),
            ("bundle_sd", bundle_sd),
        ):
            if not math.isfinite(value):
                raise ValueError(f"{name}={value!r} must be finite.")
        if prior_sd_appeal <= 0 or prior_sd_sensitivity <= 0 or bundle_sd <= 0:
            raise ValueError("prior standard deviations must be > 0.")
        if not 0.0 < forgetting <= 1.0:
            raise ValueError(f"forgetting={forgetting!r} should be in (0, 1].")
        self.prior_sensitivity = {str(k): float(v) for k, v in prior_sensitivity.items()}
        self.default_sensitivity = float(default_sensitivity)
        self.prior_sd_appeal = float(prior_sd_appeal)
        self.prior_sd_sensitivity = float(prior_sd_sensitivity)
        self.bundle_sd = float(bundle_sd)
        self.forgetting = float(forgetting)
        self._segments: dict[str, _Segment] = dict(segments or {})
        self._bundles: dict[BundleKey, _Bundle] = dict(bundles or {})
        self._n_updates = int(n_updates)

    @classmethod
    def from_pricer(cls, pricer: Pricer, cfg: LearningConfig) -> ResponsePosterior:
        """The prior: each segment's sensitivity from the trained pricer, every offset 0."""
        return cls(
            prior_sensitivity=dict(pricer.sensitivity),
            default_sensitivity=pricer.pricing.sensitivity_prior,
            prior_sd_appeal=cfg.prior_sd_appeal,
            prior_sd_sensitivity=cfg.prior_sd_sensitivity,
            bundle_sd=cfg.bundle_sd,
            forgetting=cfg.forgetting,
        )

    # -- reading ----------------------------------------------------------------------------

    @property
    def n_updates(self) -> int:
        """Events the posterior has been updated with."""
        return self._n_updates

    def segments(self) -> Iterator[str]:
        """Segments with feedback (sorted)."""
        return iter(sorted(self._segments))

    def bundles(self) -> Iterator[BundleKey]:
        """Bundles with feedback (sorted)."""
        return iter(sorted(self._bundles))

    def _prior_segment(self, segment: str) -> _Segment:
        b = self.prior_sensitivity.get(segment, self.default_sensitivity)
        return (0.0, b, self.prior_sd_appeal**2, 0.0, self.prior_sd_sensitivity**2, 0)

    def _segment(self, segment: str) -> _Segment:
        state = self._segments.get(segment)
        return state if state is not None else self._prior_segment(segment)

    def _bundle(self, key: BundleKey) -> _Bundle:
        state = self._bundles.get(key)
        return state if state is not None else (0.0, self.bundle_sd**2, 0)

    def segment_state(self, segment: str) -> tuple[FloatArray, FloatArray, int]:
        """A segment's posterior ``(mean (delta, beta), 2x2 covariance, events seen)``."""
        m0, m1, s00, s01, s11, n = self._segment(segment)
        return np.array([m0, m1]), np.array([[s00, s01], [s01, s11]]), n

    def bundle_state(self, bundle_key: Sequence[str]) -> tuple[float, float, int]:
        """A bundle's posterior ``(mean omega, variance, events seen)``."""
        return self._bundle(_key(bundle_key))

    def mean(self, segment: str, bundle_key: Sequence[str]) -> tuple[float, float, float]:
        """Posterior means ``(delta, beta, omega)`` for an offer of this bundle to this segment."""
        m0, m1, *_ = self._segment(segment)
        return m0, m1, self._bundle(_key(bundle_key))[0]

    def sample(
        self, rng: np.random.Generator, segment: str, bundle_key: Sequence[str], n: int
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``n`` posterior draws of ``(delta, beta, omega)`` (three arrays of length ``n``)."""
        m0, m1, s00, s01, s11, _ = self._segment(segment)
        w, v, _ = self._bundle(_key(bundle_key))
        l00 = math.sqrt(s00)
        l10 = s01 / l00
        l11 = math.sqrt(max(s11 - l10 * l10, 0.0))
        z = rng.standard_normal((int(n), 3))
        delta = m0 + l00 * z[:, 0]
        beta = m1 + l10 * z[:, 0] + l11 * z[:, 1]
        omega = w + math.sqrt(v) * z[:, 2]
        return delta, beta, omega

    # -- updating ---------------------------------------------------------------------------

    def _forget_segment(self, segment: str, state: _Segment) -> _Segment:
        f = self.forgetting
        m0, m1, s00, s01, s11, n = state
        # precision of the current state, times f, plus (1 - f) times the prior's (diagonal)
        det = s00 * s11 - s01 * s01
        p00, p01, p11 = s11 / det, -s01 / det, s00 / det
        _, b0, v0a, _, v0b, _ = self._prior_segment(segment)
        q00 = f * p00 + (1.0 - f) / v0a
        q01 = f * p01
        q11 = f * p11 + (1.0 - f) / v0b
        # information vector: f P m + (1 - f) P0 m0
        h0 = f * (p00 * m0 + p01 * m1)
        h1 = f * (p01 * m0 + p11 * m1) + (1.0 - f) * b0 / v0b
        qdet = q00 * q11 - q01 * q01
        c00, c01, c11 = q11 / qdet, -q01 / qdet, q00 / qdet
        return (c00 * h0 + c01 * h1, c01 * h0 + c11 * h1, c00, c01, c11, n)

    def _forget_bundle(self, state: _Bundle) -> _Bundle:
        f = self.forgetting
        w, v, n = state
        precision = f / v + (1.0 - f) / self.bundle_sd**2
        return (f * w / v / precision, 1.0 / precision, n)

    def update(
        self,
        segment: str,
        bundle_key: Sequence[str],
        appeal: float,
        rel_price: float,
        accepted: bool,
    ) -> None:
        """Update with one offer's outcome: ``rel_price`` is price / list total, ``appeal`` the
        trained pricer's appeal of the (customer, bundle), ``accepted`` the outcome.

        Raises
        ------
        ValueError
            For a non-finite appeal or a relative price that is not finite and positive.
        """
        if not math.isfinite(appeal):
            raise ValueError(f"appeal={appeal!r} must be finite.")
        if not (math.isfinite(rel_price) and rel_price > 0):
            raise ValueError(f"rel_price={rel_price!r} must be finite and > 0.")
        if not isinstance(accepted, bool | np.bool_) and accepted not in (0, 1):
            raise ValueError(f"accepted={accepted!r} must be true or false.")
        key = _key(bundle_key)
        seg = self._segments.get(segment)
        bun = self._bundles.get(key)
        forget = self.forgetting < 1.0
        seg = (
            self._prior_segment(segment)
            if seg is None
            else (self._forget_segment(segment, seg) if forget else seg)
        )
        bun = (
            (0.0, self.bundle_sd**2, 0)
            if bun is None
            else (self._forget_bundle(bun) if forget else bun)
        )
        m0, m1, s00, s01, s11, n_seg = seg
        w, v, n_bun = bun
        r = float(rel_price)
        y = 1.0 if accepted else 0.0
        # u = Sigma x with x = (1, -r, 1), Sigma block-diagonal
        u0 = s00 - r * s01
        u1 = s01 - r * s11
        s = u0 - r * u1 + v
        eta0 = float(appeal) + m0 - r * m1 + w
        k = _solve_k(y, eta0, s)
        p_hat = _sigmoid(eta0 + s * k)
        c = p_hat * (1.0 - p_hat) / (1.0 + p_hat * (1.0 - p_hat) * s)
        self._segments[segment] = (
            m0 + k * u0,
            m1 + k * u1,
            s00 - c * u0 * u0,
            s01 - c * u0 * u1,
            s11 - c * u1 * u1,
            n_seg + 1,
        )
        self._bundles[key] = (w + k * v, v - c * v * v, n_bun + 1)
        self._n_updates += 1

    def copy(self) -> ResponsePosterior:
        """An independent copy (later updates of either do not reach the other)."""
        return ResponsePosterior(
            prior_sensitivity=self.prior_sensitivity,
            default_sensitivity=self.default_sensitivity,
            prior_sd_appeal=self.prior_sd_appeal,
            prior_sd_sensitivity=self.prior_sd_sensitivity,
            bundle_sd=self.bundle_sd,
            forgetting=self.forgetting,
            segments=self._segments,
            bundles=self._bundles,
            n_updates=self._n_updates,
        )

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready state (sorted: equal posteriors give equal dicts)."""
        return {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "prior": {
                "sensitivity": {
                    k: self.prior_sensitivity[k] for k in sorted(self.prior_sensitivity)
                },
                "default_sensitivity": self.default_sensitivity,
                "sd_appeal": self.prior_sd_appeal,
                "sd_sensitivity": self.prior_sd_sensitivity,
                "bundle_sd": self.bundle_sd,
                "forgetting": self.forgetting,
            },
            "n_updates": self._n_updates,
            "segments": [[name, *self._segments[name]] for name in sorted(self._segments)],
            "bundles": [[list(key), *self._bundles[key]] for key in sorted(self._bundles)],
        }

    def to_json(self) -> str:
        """Canonical JSON of the posterior; :meth:`from_json` restores it exactly."""
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ResponsePosterior:
        """The posterior :meth:`to_json` wrote.

        Raises
        ------
        ValueError
            When the text is not a saved posterior (the message says what is wrong).
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the saved posterior is not valid JSON: {exc}.") from None
        if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
            raise ValueError("the saved posterior is not a bundlewise response posterior.")
        if data.get("version") != JSON_VERSION:
            raise ValueError(
                f"the saved posterior has version {data.get('version')!r}; this bundlewise reads "
                f"version {JSON_VERSION}: run `bundlewise learn` again."
            )
        try:
            prior = data["prior"]
            segments: dict[str, _Segment] = {
                str(row[0]): (
                    float(row[1]),
                    float(row[2]),
                    float(row[3]),
                    float(row[4]),
                    float(row[5]),
                    int(row[6]),
                )
                for row in data["segments"]
            }
            bundles: dict[BundleKey, _Bundle] = {
                tuple(str(i) for i in row[0]): (float(row[1]), float(row[2]), int(row[3]))
                for row in data["bundles"]
            }
            return cls(
                prior_sensitivity={str(k): float(v) for k, v in prior["sensitivity"].items()},
                default_sensitivity=float(prior["default_sensitivity"]),
                prior_sd_appeal=float(prior["sd_appeal"]),
                prior_sd_sensitivity=float(prior["sd_sensitivity"]),
                bundle_sd=float(prior["bundle_sd"]),
                forgetting=float(prior["forgetting"]),
                segments=segments,
                bundles=bundles,
                n_updates=int(data["n_updates"]),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"the saved posterior is malformed: {exc!r}.") from None


__all__ = ["MAX_NEWTON", "ResponsePosterior"]
