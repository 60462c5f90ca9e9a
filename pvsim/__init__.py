"""pvsim: differentiable Poisson–drift-diffusion for perovskite nanocrystal LEDs."""

__version__ = "0.1.0"
