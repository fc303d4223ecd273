"""MRI physics: linear operators, NUFFT, coils, phantoms, acquisition, subspace models, solvers."""
