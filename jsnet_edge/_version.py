"""The version, in a module of its own so that any layer can read it without importing
the package root (whose lazy attributes reach the top layers)."""

__version__ = "0.1.0"
