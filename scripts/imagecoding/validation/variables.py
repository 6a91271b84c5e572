"""What coders code: every CLIP scheme (its categories) and every categorical or boolean codebook variable."""

from __future__ import annotations

from dataclasses import dataclass

from ..plan import asks_multimodal, learns


@dataclass(frozen=True)
class CodedVariable:
    """One thing a coder decides per image, with the values allowed and the methods that predict it."""

    name: str  # the scheme's name, or the codebook's Group_Variable column
    values: tuple[str, ...]
    methods: tuple[str, ...]  # clip, learned, ensemble, multimodal, routed, consensus for schemes; frames, learned for codebook variables
    description: str = ""


def coded_variables(schemes: dict, codebook=None, ensemble: bool = False, consensus: bool = False,
                    learned: bool = False, multimodal: bool = False, routed: bool = False) -> list[CodedVariable]:
    """schemes: name -> Scheme; codebook: the frames codebook when frame coding runs; learned: codes exist to learn
    from; multimodal: the multimodal LLM classifies the schemes; routed: routing combines it with a cheap method."""
    found = []
    also = ("learned",) if learned else ()
    scheme_methods = {"ensemble": ensemble, "multimodal": multimodal, "routed": routed, "consensus": consensus}
    for name, scheme in schemes.items():
        methods = ("clip",) + also + tuple(method for method, used in scheme_methods.items() if used)
        found.append(CodedVariable(name, tuple(scheme.categories), methods, f"CLIP scheme {name}"))
    for variable in codebook.variables if codebook is not None else []:
        if variable.type == "categorical":
            found.append(CodedVariable(variable.column, tuple(variable.values), ("frames",) + also, variable.description))
        elif variable.type == "boolean":
            found.append(CodedVariable(variable.column, ("true", "false"), ("frames",) + also, variable.description))
    return found


def load_variables(config: dict, **methods: bool) -> list[CodedVariable]:
    """The variables of the configured schemes, and of the codebook when frame coding runs (clip.schemes,
    frames.enabled, frames.codebook); `methods` as coded_variables takes them."""
    from ..schemes import load_scheme

    schemes = {name: load_scheme(name, path) for name, path in sorted(config["clip"]["schemes"].items())}
    codebook = None
    if config["frames"]["enabled"]:
        from ..tasks.codebook import load_codebook

        codebook = load_codebook(config["frames"]["codebook"])
    return coded_variables(schemes, codebook, **methods)


def coded_variables_of(config: dict) -> list[CodedVariable]:
    """The coded variables of a configuration, each with the methods that code it."""
    ensemble = config["ensemble"]["enabled"] and config["ensemble"]["classify"]
    learned = learns(config)
    multimodal = asks_multimodal(config)
    consensus = ensemble or learned or multimodal or bool(config["consensus"]["frames"] and config["frames"]["enabled"])
    return load_variables(config, ensemble=ensemble, consensus=consensus, learned=learned, multimodal=multimodal,
                          routed=bool(config["route"]["enabled"]))


def as_code(value) -> str | None:
    """Codes are compared as text; booleans as 'true' and 'false' whatever wrote them."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return str(value).lower()
    text = str(value).strip()
    return text or None
