"""`pipeline.loader`, the import path users and solver scripts hold: the same module as pipeline.runtime.loader."""

import sys

from .runtime import loader

sys.modules[__name__] = loader
