"""Order-and-payment backend for an online shop."""

__version__ = "0.1.0"
