"""The error a configured chat model raises when it cannot be built or reached (its own
module, so that the model factory and the local model share it without an import cycle)."""
from __future__ import annotations


class ModelUnavailable(Exception):
    """The configured chat model cannot be built or reached."""
