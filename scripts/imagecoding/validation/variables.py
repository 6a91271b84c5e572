"""What coders code: every CLIP scheme (its categories) and every categorical or boolean codebook variable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodedVariable:
    """One thing a coder decides per image, with the values allowed and the methods that predict it."""

    name: str  # the scheme's name, or the codebook's Group_Variable column
    values: tuple[str, ...]
    methods: tuple[str, ...]  # clip, ensemble, consensus for schemes; frames for codebook variables
    description: str = ""


def coded_variables(schemes: dict, codebook=None, ensemble: bool = False, consensus: bool = False) -> list[CodedVariable]:
    """schemes: name -> Scheme; codebook: the frames codebook when frame coding runs."""
    found = []
    for name, scheme in schemes.items():
        methods = ("clip",) + (("ensemble",) if ensemble else ()) + (("consensus",) if consensus else ())
        found.append(CodedVariable(name, tuple(scheme.categories), methods, f"CLIP scheme {name}"))
    for variable in codebook.variables if codebook is not None else []:
        if variable.type == "categorical":
            found.append(CodedVariable(variable.column, tuple(variable.values), ("frames",), variable.description))
        elif variable.type == "boolean":
            found.append(CodedVariable(variable.column, ("true", "false"), ("frames",), variable.description))
    return found


def coded_variables_of(config: dict) -> list[CodedVariable]:
    """The coded variables of a configuration: its schemes, and its codebook when frame coding runs."""
    from ..schemes import load_scheme

    schemes = {name: load_scheme(name, path) for name, path in sorted(config["clip"]["schemes"].items())}
    codebook = None
    if config["frames"]["enabled"]:
        from ..tasks.codebook import load_codebook

        codebook = load_codebook(config["frames"]["codebook"])
    ensemble = config["ensemble"]["enabled"] and config["ensemble"]["classify"]
    consensus = ensemble or bool(config["consensus"]["frames"] and config["frames"]["enabled"])
    return coded_variables(schemes, codebook, ensemble, consensus)


def as_code(value) -> str | None:
    """Codes are compared as text; booleans as 'true' and 'false' whatever wrote them."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return str(value).lower()
    text = str(value).strip()
    return text or None
