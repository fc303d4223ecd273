"""Linear operators in the style of SigPy's ``Linop``, on PyTorch complex tensors on any device
(the reconstruction) or on NumPy complex arrays (the NumPy reference they are checked against).

Every operator maps arrays of ``ishape`` to arrays of ``oshape`` and has an exact adjoint, so
solvers (CG, ADMM) and the reconstruction are written once against ``forward``/``adjoint``
(§2.3.2: the encoding E, its adjoint E*, the sparsifying transform Ψ). ``A @ B`` composes,
``A + B`` adds, ``c * A`` scales, ``A.H`` is the adjoint and ``A.N`` (``A.normal()``) is A*A
(operators may override it with a faster equivalent, e.g. the Toeplitz-embedded subspace
normal). The algebra, Ψ and the solvers are array-agnostic, as SigPy's are over NumPy and
CuPy: an operator computes with the array type of its own data (tensors stay on their device),
and torch operators are differentiable. Arrays are complex64 in production and complex128 in
the adjointness tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch

Shape = tuple[int, ...]
Array = np.ndarray | torch.Tensor


def array_module(x: Array) -> ModuleType:
    """``torch`` for a tensor, ``numpy`` otherwise (SigPy's ``get_array_module``)."""
    return torch if isinstance(x, torch.Tensor) else np


def to_backend(x: Array, device: torch.device | None) -> Array:
    """``x`` (NumPy array or tensor) as the array type of a back end: a NumPy array for
    ``device=None``, else a tensor on ``device`` (sharing memory on the CPU where it can)."""
    if device is None:
        return to_numpy(x)
    return torch.as_tensor(x).to(device)


def to_numpy(x: Array) -> np.ndarray:
    """A tensor (any device) or array as a NumPy array; no gradient is kept."""
    if isinstance(x, torch.Tensor):
        return x.detach().resolve_conj().cpu().numpy()
    return np.asarray(x)


def clone_like(x: Array, like: Array) -> Array:
    """A copy of ``x`` (NumPy array or tensor) with ``like``'s array type, dtype and device."""
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(x).to(device=like.device, dtype=like.dtype, copy=True)
    return np.array(to_numpy(x), dtype=like.dtype)


def inner(a: Array, b: Array) -> Array:
    """<a, b> = Σ conj(a) b, a 0-d array (a tensor keeps its gradient and its device)."""
    if isinstance(a, torch.Tensor):
        return torch.vdot(a.reshape(-1), b.reshape(-1))
    return np.vdot(a, b)


def norm(a: Array) -> float:
    """The Euclidean norm of all entries, as a float."""
    if isinstance(a, torch.Tensor):
        return to_float(torch.linalg.vector_norm(a))
    return float(np.linalg.norm(a))


def to_float(x: Array | float) -> float:
    """A real 0-d array or tensor as a float, without its gradient (logs, stopping tests)."""
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


class Linop:
    """A linear map ``forward: ishape → oshape`` with its adjoint ``oshape → ishape``."""

    def __init__(self, oshape: Sequence[int], ishape: Sequence[int]) -> None:
        self.oshape: Shape = tuple(int(n) for n in oshape)
        self.ishape: Shape = tuple(int(n) for n in ishape)

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def adjoint(self, y: Array) -> Array:
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        return self.forward(x)

    @property
    def H(self) -> Linop:  # noqa: N802  (mathematical notation, as in SigPy)
        return Adjoint(self)

    @property
    def N(self) -> Linop:  # noqa: N802
        return self.normal()

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

    def forward(self, x: Array) -> Array:
        return self.op.adjoint(x)

    def adjoint(self, y: Array) -> Array:
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

    def forward(self, x: Array) -> Array:
        return self.a.forward(self.b.forward(x))

    def adjoint(self, y: Array) -> Array:
        return self.b.adjoint(self.a.adjoint(y))


class Sum(Linop):
    """``(A + B)(x) = A(x) + B(x)``."""

    def __init__(self, a: Linop, b: Linop) -> None:
        if a.ishape != b.ishape or a.oshape != b.oshape:
            raise ValueError(f"cannot add {a} and {b}")
        super().__init__(a.oshape, a.ishape)
        self.a, self.b = a, b

    def forward(self, x: Array) -> Array:
        return self.a.forward(x) + self.b.forward(x)

    def adjoint(self, y: Array) -> Array:
        return self.a.adjoint(y) + self.b.adjoint(y)


class Scale(Linop):
    """``(c A)(x) = c A(x)`` for a real scalar c."""

    def __init__(self, op: Linop, scale: float) -> None:
        super().__init__(op.oshape, op.ishape)
        self.op, self.scale = op, float(scale)

    def forward(self, x: Array) -> Array:
        return self.scale * self.op.forward(x)

    def adjoint(self, y: Array) -> Array:
        return self.scale * self.op.adjoint(y)


class FiniteDifference(Linop):
    """Ψ: circular forward differences of (..., X, Y) images along the last two axes.

    Output (2, ..., X, Y): the x and y differences (the anisotropic total variation of §B2's
    sparsifying transform is ``|Ψ U|_1``).
    """

    def __init__(self, ishape: Sequence[int]) -> None:
        super().__init__((2, *ishape), ishape)

    def forward(self, x: Array) -> Array:
        xp = array_module(x)
        return xp.stack([xp.roll(x, -1, -2) - x, xp.roll(x, -1, -1) - x])

    def adjoint(self, y: Array) -> Array:
        xp = array_module(y)
        return (xp.roll(y[0], 1, -2) - y[0]) + (xp.roll(y[1], 1, -1) - y[1])
