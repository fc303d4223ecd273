"""Federated averaging across sites that never share images (§8.4.3), with Flower."""
