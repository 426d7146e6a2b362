"""`pipeline.card`, the import path users hold: the same module as pipeline.runtime.card."""

import sys

from .runtime import card

sys.modules[__name__] = card
