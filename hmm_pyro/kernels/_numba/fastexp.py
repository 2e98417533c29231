"""An exponential that numba can vectorise: ``exp`` inlined into the loops that call it.

numba compiles ``math.exp`` to a call into the C library (there is no SVML here), which stops
the loop around it from being vectorised: a scalar exponential per entry cost about 4 ns
against about 0.8 ns for this one inside a vectorised loop (measured over 10**5 entries). The
method is the textbook one: ``exp(x) = 2**k exp(r)`` with ``k = round(x / log 2)`` and
``r = x - k log 2`` (``log 2`` split in two parts, Cody and Waite 1980, so that ``r`` is exact
to about 1e-20), ``exp(r)`` by its Taylor polynomial of degree 13 (``|r| <= log(2) / 2``:
remainder below 4e-18 relative), and ``2**k`` built from its IEEE-754 bits, as two factors so
that results down to the smallest subnormal number come out right. Branch-free: the input is
clamped to ``[-746, 710]`` (beyond which the result is ``0`` or ``inf`` anyway) and NaN is
passed through. Tested against ``numpy.exp`` to 1 unit in the last place
(``tests/kernels/_numba/test_fastexp.py``).
"""

from __future__ import annotations

import math

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["fast_exp"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # log 2 rounded to 33 bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10  # log 2 - _LN2_HI
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = (
    1.0 / math.factorial(n) for n in range(2, 14)
)


@intrinsic
def _float_from_bits(typingctx, bits):  # noqa: ANN001, ANN202
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (a bit cast, no conversion)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@numba.njit(inline="always", nogil=True, error_model="numpy", fastmath={"contract"})
def fast_exp(x):  # noqa: ANN001, ANN202
    """``exp(x)`` for a float64, within 1 unit in the last place; NaN gives NaN."""
    y = min(max(x, -746.0), 710.0)
    k = math.floor(y * _LOG2E + 0.5)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = _C13 * r + _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + 1.0
    p = p * r + 1.0
    exponent = numba.int64(k)
    half = exponent >> 1
    # 2**k as 2**half * 2**(k - half): each factor stays a normal number for k in [-1076, 1024]
    result = (
        p * _float_from_bits((half + 1023) << 52) * _float_from_bits((exponent - half + 1023) << 52)
    )
    return result if x == x else x
