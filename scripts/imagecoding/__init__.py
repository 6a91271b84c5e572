"""Library code of the image-coding workflow; the entry scripts in scripts/ call it, tests import it."""

__version__ = "0.1.0"
