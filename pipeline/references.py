"""`pipeline.references`, the path that specs and cards name (`pipeline.references:water`): the same module as
pipeline.build.references."""

import sys

from .build import references

sys.modules[__name__] = references
