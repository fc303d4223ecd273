"""Linear operators on NumPy complex arrays, in the style of SigPy's ``Linop``.

Every operator maps arrays of ``ishape`` to arrays of ``oshape`` and has an exact adjoint, so
solvers (CG, ADMM) and the reconstruction are written once against ``forward``/``adjoint``
(§2.3.2: the encoding E, its adjoint E*, the sparsifying transform Ψ). ``A @ B`` composes,
``A + B`` adds, ``c * A`` scales, ``A.H`` is the adjoint and ``A.normal()`` is A*A (operators
may override it with a faster equivalent, e.g. the Toeplitz-embedded subspace normal).
Arrays are complex64 in production and complex128 in the adjointness tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Shape = tuple[int, ...]


class Linop:
    """A linear map ``forward: ishape → oshape`` with its adjoint ``oshape → ishape``."""

    def __init__(self, oshape: Sequence[int], ishape: Sequence[int]) -> None:
        self.oshape: Shape = tuple(int(n) for n in oshape)
        self.ishape: Shape = tuple(int(n) for n in ishape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    @property
    def H(self) -> Linop:  # noqa: N802  (mathematical notation, as in SigPy)
        return Adjoint(self)

    def normal(self) -> Linop:
        """A*A (override with a cheaper equivalent where one exists)."""
        return Compose(self.H, self)

    def __matmul__(self, other: Linop) -> Linop:
        return Compose(self, other)

    def __add__(self, other: Linop) -> Linop:
        return Sum(self, other)

    def __rmul__(self, scale: float) -> Linop:
        return Scale(self, scale)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.ishape} -> {self.oshape})"


class Adjoint(Linop):
    """The adjoint of a Linop as an operator of its own."""

    def __init__(self, op: Linop) -> None:
        super().__init__(op.ishape, op.oshape)
        self.op = op

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.op.adjoint(x)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.op.forward(y)

    @property
    def H(self) -> Linop:  # noqa: N802
        return self.op


class Compose(Linop):
    """``(A @ B)(x) = A(B(x))``; shapes must chain."""

    def __init__(self, a: Linop, b: Linop) -> None:
        if a.ishape != b.oshape:
            raise ValueError(f"cannot compose {a} after {b}: {b.oshape} != {a.ishape}")
        super().__init__(a.oshape, b.ishape)
        self.a, self.b = a, b

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.a.forward(self.b.forward(x))

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.b.adjoint(self.a.adjoint(y))


class Sum(Linop):
    """``(A + B)(x) = A(x) + B(x)``."""

    def __init__(self, a: Linop, b: Linop) -> None:
        if a.ishape != b.ishape or a.oshape != b.oshape:
            raise ValueError(f"cannot add {a} and {b}")
        super().__init__(a.oshape, a.ishape)
        self.a, self.b = a, b

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.a.forward(x) + self.b.forward(x)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.a.adjoint(y) + self.b.adjoint(y)


class Scale(Linop):
    """``(c A)(x) = c A(x)`` for a real scalar c."""

    def __init__(self, op: Linop, scale: float) -> None:
        super().__init__(op.oshape, op.ishape)
        self.op, self.scale = op, float(scale)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.scale * self.op.forward(x)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.scale * self.op.adjoint(y)


class FiniteDifference(Linop):
    """Ψ: circular forward differences of (..., X, Y) images along the last two axes.

    Output (2, ..., X, Y): the x and y differences (the anisotropic total variation of §B2's
    sparsifying transform is ``|Ψ U|_1``).
    """

    def __init__(self, ishape: Sequence[int]) -> None:
        super().__init__((2, *ishape), ishape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.stack([np.roll(x, -1, axis=-2) - x, np.roll(x, -1, axis=-1) - x])

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return (np.roll(y[0], 1, axis=-2) - y[0]) + (np.roll(y[1], 1, axis=-1) - y[1])


def inner(a: np.ndarray, b: np.ndarray) -> complex:
    """<a, b> = Σ conj(a) b."""
    return complex(np.vdot(a, b))
