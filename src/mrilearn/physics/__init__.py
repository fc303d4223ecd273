"""MRI physics: linear operators, NUFFT, phantoms, acquisition and the Multitasking MRI
reconstruction (issue 5)."""
