"""Data shared by every application: subject manifests, splits and test phantoms."""
