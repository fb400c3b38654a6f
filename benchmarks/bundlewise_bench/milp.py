"""Exact mixed bundling as a mixed-integer linear program (Hanson & Martin, 1990).

Given shoppers with known values :math:`v_{cS}` for every subset :math:`S` of a bundle's items,
choose one (non-personalized) price :math:`P_S` per subset to maximize profit, when each shopper
buys the subset of highest surplus (or nothing):

.. math::

    \\max \\sum_{c,S} (r_{cS} - \\text{cost}_S\\,x_{cS}) \\quad\\text{s.t.}\\quad
    \\sum_S x_{cS} \\le 1,\\;
    u_c = \\sum_S (v_{cS} x_{cS} - r_{cS}) \\ge \\max(0, \\max_{S'} v_{cS'} - P_{S'}),

    r_{cS} \\le P_S,\\; r_{cS} \\le M x_{cS},\\; r_{cS} \\ge P_S - M (1 - x_{cS}),\\;
    P_{A \\cup B} \\le P_A + P_B \\text{ for disjoint } A, B,

with :math:`x` binary and :math:`r_{cS} = P_S x_{cS}` linearized by big-M. Solved exactly with
:func:`scipy.optimize.milp` (HiGHS); only small instances are practical.

References
----------
Hanson & Martin (1990), "Optimal bundle pricing", Management Science 36(2).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

FloatArray = npt.NDArray[np.float64]


def mixed_bundling_milp(
    values: FloatArray,
    costs: FloatArray,
    subsets: Sequence[tuple[int, ...]],
    time_limit: float = 60.0,
) -> FloatArray:
    """Profit-maximizing subset prices for shoppers with known ``values`` (n, n_subsets).

    Returns the prices, shape (n_subsets,), in the order of ``subsets``.

    Raises
    ------
    RuntimeError
        When the solver finds no solution within ``time_limit``.

    Examples
    --------
    >>> v = np.array([[8.0, 2.0, 10.0], [2.0, 8.0, 10.0]])
    >>> mixed_bundling_milp(v, np.zeros(3), [(0,), (1,), (0, 1)]).round(3).tolist()
    [8.0, 8.0, 10.0]
    """
    v = np.asarray(values, dtype=np.float64)
    n, m = (int(d) for d in v.shape)
    cost = np.asarray(costs, dtype=np.float64)
    big = float(max(v.max(), 0.0)) + 1.0
    n_var = m + 2 * n * m + n

    def P(s: int) -> int:
        return s

    def X(c: int, s: int) -> int:
        return m + c * m + s

    def R(c: int, s: int) -> int:
        return m + n * m + c * m + s

    def U(c: int) -> int:
        return m + 2 * n * m + c

    rows: list[dict[int, float]] = []
    lb: list[float] = []
    ub: list[float] = []

    def add(coefs: dict[int, float], lo: float, hi: float) -> None:
        rows.append(coefs)
        lb.append(lo)
        ub.append(hi)

    for c in range(n):
        add({X(c, s): 1.0 for s in range(m)}, -np.inf, 1.0)
        # u_c - sum_S (v x - r) == 0
        coefs = {U(c): 1.0}
        for s in range(m):
            coefs[X(c, s)] = -v[c, s]
            coefs[R(c, s)] = 1.0
        add(coefs, 0.0, 0.0)
        for s in range(m):
            add({U(c): 1.0, P(s): 1.0}, v[c, s], np.inf)  # u >= v - P
            add({R(c, s): 1.0, P(s): -1.0}, -np.inf, 0.0)  # r <= P
            add({R(c, s): 1.0, X(c, s): -big}, -np.inf, 0.0)  # r <= M x
            add({R(c, s): 1.0, P(s): -1.0, X(c, s): -big}, -big, np.inf)  # r >= P - M(1-x)
    index = {tuple(sorted(s)): i for i, s in enumerate(subsets)}
    for s, members in enumerate(subsets):
        for r in range(1, len(members)):
            for part in itertools.combinations(sorted(members), r):
                rest = tuple(sorted(set(members) - set(part)))
                if part < rest and part in index and rest in index:
                    add({P(s): 1.0, P(index[part]): -1.0, P(index[rest]): -1.0}, -np.inf, 0.0)

    matrix = lil_matrix((len(rows), n_var))
    for i, coefs in enumerate(rows):
        for j, value in coefs.items():
            matrix[i, j] = value
    objective = np.zeros(n_var)
    for c in range(n):
        for s in range(m):
            objective[R(c, s)] = -1.0
            objective[X(c, s)] = cost[s]
    integrality = np.zeros(n_var)
    integrality[m : m + n * m] = 1
    lower = np.zeros(n_var)
    upper = np.full(n_var, np.inf)
    upper[:m] = big
    upper[m : m + n * m] = 1.0
    result = milp(
        objective,
        constraints=LinearConstraint(matrix.tocsr(), lb, ub),
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={"time_limit": time_limit, "disp": False},
    )
    if result.x is None:
        raise RuntimeError(f"mixed bundling MILP: no solution ({result.message}).")
    return np.asarray(result.x[:m], dtype=np.float64)


__all__ = ["mixed_bundling_milp"]
