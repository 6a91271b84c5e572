"""The coded variables of a configuration: its schemes, and its codebook when frame coding runs."""

from __future__ import annotations

from ..schemes import load_scheme
from .variables import CodedVariable, coded_variables


def coded_variables_of(config: dict) -> list[CodedVariable]:
    schemes = {name: load_scheme(name, path) for name, path in sorted(config["clip"]["schemes"].items())}
    codebook = None
    if config["frames"]["enabled"]:
        from ..tasks.codebook import load_codebook

        codebook = load_codebook(config["frames"]["codebook"])
    ensemble = config["ensemble"]["enabled"] and config["ensemble"]["classify"]
    consensus = ensemble or bool(config["consensus"]["frames"] and config["frames"]["enabled"])
    return coded_variables(schemes, codebook, ensemble, consensus)
