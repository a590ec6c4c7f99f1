"""tinyllm: a teachable large language model on NumPy (and CuPy), with hand-written backprop."""
__version__ = "0.1.0"
