"""One BLAS thread while fitting.

A fit solves thousands of tiny problems (a few parameters, tens of points). Since SciPy 1.15,
L-BFGS-B calls BLAS, and OpenBLAS's threads cost more than they give at that size: on 2 cores a
joint fit took 3.5x longer with its default threads than with one, more on a busy machine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(func: Callable[P, R]) -> Callable[P, R]:
    """Return ``func`` running with BLAS limited to one thread (restored afterwards)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper
