"""What runs in a study (methods, LLM tasks, steps), decided from the validated configuration alone.

The plan is the one place that says which methods code which variables, which LLM tasks ask, and which
steps the report reads. rules/common.smk builds it once per invocation (`PLAN = study_plan(config)`) and
the rules read their jobs and inputs from it; the library reads the methods from it. It only reads the
configuration: it lists no image and imports nothing heavy, since every cluster job builds it again.

Not to be confused with the census (imagecoding/invocation.py): what the main process counts on disk
(images, shards, code keys) and hands to its jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

# What the coded variables and the methods coding them read: a step that lists the variables takes these
# settings, so it re-runs when a method is switched on or off, and rebuilds its Methods from them alone.
VARIABLE_KEYS = (
    "clip.schemes",
    "frames.enabled",
    "frames.codebook",
    "ensemble.enabled",
    "ensemble.classify",
    "consensus.frames",
    "learned.enabled",
    "multimodal.enabled",
    "route.enabled",
    "validation.annotations",
)


def annotation_files(config: dict) -> list[str]:
    """validation.annotations as a list: one file or several may be named."""
    annotations = config["validation"]["annotations"] or []
    return [annotations] if isinstance(annotations, str) else list(annotations)


def learns(config: dict) -> bool:
    """The learned classifier runs when it is enabled and there are human codes to learn from."""
    return bool(config["learned"]["enabled"] and config["validation"]["annotations"])


def asks_multimodal(config: dict) -> bool:
    """The multimodal LLM runs when it is enabled, and when routing needs it."""
    return bool(config["multimodal"]["enabled"] or config["route"]["enabled"])


@dataclass(frozen=True)
class Methods:
    """Which methods code the study's variables: what validation, the estimates and the consensus compare."""

    frames: bool  # the multimodal LLM codes the codebook's variables (frame coding)
    ensemble: bool  # the ensemble LLM classifies the schemes from the signals
    learned: bool  # a classifier learns every variable from the human codes
    multimodal: bool  # the multimodal LLM classifies the schemes (on every image, or where routing sends it)
    routed: bool  # routing combines the multimodal LLM with a cheap method
    mapped_frames: tuple[str, ...]  # schemes whose categories a codebook variable is mapped onto (consensus.frames)

    @property
    def consensus(self) -> bool:
        """The consensus runs when a scheme has more than CLIP's code to compare."""
        return self.ensemble or self.learned or self.multimodal or bool(self.mapped_frames)

    @property
    def of_schemes(self) -> tuple[str, ...]:
        """The methods that code every scheme, in the order the metrics and the report list them."""
        others = {"ensemble": self.ensemble, "multimodal": self.multimodal, "routed": self.routed,
                  "consensus": self.consensus}
        return ("clip",) + (("learned",) if self.learned else ()) + tuple(m for m, used in others.items() if used)

    @property
    def of_codebook(self) -> tuple[str, ...]:
        """The methods that code every categorical or boolean codebook variable (when frame coding runs)."""
        return ("frames",) + (("learned",) if self.learned else ())


def methods_of(config: dict) -> Methods:
    """The methods of a configuration; it reads only VARIABLE_KEYS, so a step given just those builds the same."""
    frames = bool(config["frames"]["enabled"])
    ensemble = config["ensemble"]
    return Methods(
        frames=frames,
        ensemble=bool(ensemble["enabled"] and ensemble["classify"]),
        learned=learns(config),
        multimodal=asks_multimodal(config),
        routed=bool(config["route"]["enabled"]),
        mapped_frames=tuple(config["consensus"]["frames"]) if frames else (),
    )


@dataclass(frozen=True)
class Plan:
    """What one study runs: the rules read their jobs and inputs from it, the library its methods."""

    schemes: tuple[str, ...]  # sorted, as every per-scheme input and output lists them
    methods: Methods
    signals: tuple[str, ...]  # ensemble.signals when the ensemble is on, else none
    captions_by_llm: bool  # signals.captions.method is llm: captions are an LLM task, with no model weights
    annotations: tuple[str, ...]  # validation.annotations as files: the human codes
    stability: tuple[str, ...] = ()  # the coding LLM tasks asked again (stability.enabled), in llm_tasks' order
    vote: str = "first"  # stability.vote: majority makes the majority across repeats and variants the task's code

    @property
    def llm_tasks(self) -> tuple[str, ...]:
        """The LLM tasks that ask (each with its own cost ledger), in the order the cost table lists them."""
        tasks = {"frames": self.methods.frames, "ensemble": self.methods.ensemble,
                 "multimodal": self.methods.multimodal, "captions": "captions" in self.signals and self.captions_by_llm}
        return tuple(task for task, asked in tasks.items() if asked)

    @property
    def weight_steps(self) -> tuple[str, ...]:
        """The steps fetching a signal model's weights (results/signals/<step>.json)."""
        steps = ("objects_weights",) if "objects" in self.signals else ()
        return steps + (("captions_weights",) if "captions" in self.signals and not self.captions_by_llm else ())

    @property
    def report_steps(self) -> tuple[str, ...]:
        """The rules whose results the report reads, directly or not (its provenance lists each). It reads the
        validation sample's design through the estimates."""
        methods = self.methods
        steps = ["manifest", "duplicates", "clip_weights", "clip_embed", "clip_score", "merge"]
        steps += ["frames_code"] if methods.frames else []
        steps += [f"signals_{signal}" for signal in self.signals]
        steps += list(self.weight_steps)
        steps += ["ensemble_classify"] if methods.ensemble else []
        steps += ["learned_fit"] if methods.learned else []
        steps += ["multimodal_classify"] if methods.multimodal else []
        steps += ["consensus"] if methods.consensus else []
        steps += ["llm_ledger"] if self.llm_tasks else []
        steps += ["validation_metrics"] if self.annotations else []
        steps += ["stability_metrics"] if self.stability else []
        return tuple(steps + ["validation_design", "validation_export", "estimates"])


def stability_tasks(methods: Methods, config: dict) -> tuple[str, ...]:
    """The LLM tasks that code and are asked again for their stability (captions code nothing)."""
    if not config["stability"]["enabled"]:
        return ()
    coding = {"frames": methods.frames, "ensemble": methods.ensemble, "multimodal": methods.multimodal}
    return tuple(task for task, asked in coding.items() if asked)


def study_plan(config: dict) -> Plan:
    """The plan of a validated configuration (defaults filled in)."""
    ensemble = config["ensemble"]
    methods = methods_of(config)
    stability = stability_tasks(methods, config)
    return Plan(
        schemes=tuple(sorted(config["clip"]["schemes"])),
        methods=methods,
        signals=tuple(ensemble["signals"]) if ensemble["enabled"] else (),
        captions_by_llm=config["signals"]["captions"]["method"] == "llm",
        annotations=tuple(annotation_files(config)),
        stability=stability,
        vote=config["stability"]["vote"] if stability else "first",
    )
