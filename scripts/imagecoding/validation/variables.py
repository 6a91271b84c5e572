"""What coders code: every CLIP scheme (its categories) and every categorical or boolean codebook variable."""

from __future__ import annotations

from dataclasses import dataclass

from ..plan import Methods, methods_of


@dataclass(frozen=True)
class CodedVariable:
    """One thing a coder decides per image, with the values allowed and the methods that predict it."""

    name: str  # the scheme's name, or the codebook's Group_Variable column
    values: tuple[str, ...]
    methods: tuple[str, ...]  # clip, learned, ensemble, multimodal, routed, consensus for schemes; frames, learned for codebook variables
    description: str = ""


def coded_variables(schemes: dict, codebook=None, methods: Methods | None = None) -> list[CodedVariable]:
    """schemes: name -> Scheme; codebook: the frames codebook when frame coding runs; methods: the plan's (None:
    CLIP alone codes the schemes, frame coding the codebook)."""
    found = []
    scheme_methods = methods.of_schemes if methods else ("clip",)
    codebook_methods = methods.of_codebook if methods else ("frames",)
    for name, scheme in schemes.items():
        found.append(CodedVariable(name, tuple(scheme.categories), scheme_methods, f"CLIP scheme {name}"))
    for variable in codebook.variables if codebook is not None else []:
        if variable.type == "categorical":
            found.append(CodedVariable(variable.column, tuple(variable.values), codebook_methods, variable.description))
        elif variable.type == "boolean":
            found.append(CodedVariable(variable.column, ("true", "false"), codebook_methods, variable.description))
    return found


def load_variables(config: dict, methods: Methods | None = None) -> list[CodedVariable]:
    """The variables of the configured schemes, and of the codebook when frame coding runs (clip.schemes,
    frames.enabled, frames.codebook); `methods` as coded_variables takes them."""
    from ..schemes import load_scheme

    schemes = {name: load_scheme(name, path) for name, path in sorted(config["clip"]["schemes"].items())}
    codebook = None
    if config["frames"]["enabled"]:
        from ..tasks.codebook import load_codebook

        codebook = load_codebook(config["frames"]["codebook"])
    return coded_variables(schemes, codebook, methods)


def coded_variables_of(config: dict) -> list[CodedVariable]:
    """The coded variables of a configuration, each with the methods the plan says code it; `config` needs only
    the plan's VARIABLE_KEYS, the settings the validation and estimates steps are given."""
    return load_variables(config, methods_of(config))


def as_code(value) -> str | None:
    """Codes are compared as text; booleans as 'true' and 'false' whatever wrote them."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return str(value).lower()
    text = str(value).strip()
    return text or None
