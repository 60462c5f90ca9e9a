"""pvsim: differentiable Poisson–drift-diffusion for perovskite nanocrystal LEDs."""

import os as _os

# GPU: JAX would take 75 % of the device memory at start, leaving too little for the sparse
# factors of the cuDSS back end (allocated outside JAX); allocate on demand unless the user
# chose otherwise. Read when JAX starts its GPU client, so it must be set before that.
_os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

__version__ = "0.1.0"
