from snakemake.utils import min_version

min_version("9.0")


# The bundled example's configuration, unless the run names its own study: a --configfile (or
# --config images.root=...) stands alone, so the example's posts and schemes never leak into it.
if not workflow.overwrite_configfiles and "root" not in (
    workflow.config_settings.overwrite_config.get("images") or {}
):

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


# On a cluster without conda on its compute nodes: the image `snakemake --containerize` describes
# (docs/hpc.md). With --sdm conda apptainer, every job activates its env inside it.
if config["container"]:

    containerized: config["container"]


include: "rules/manifest.smk"
include: "rules/duplicates.smk"
include: "rules/clip.smk"
include: "rules/frames.smk"
include: "rules/signals.smk"
include: "rules/ensemble.smk"
include: "rules/llm.smk"
include: "rules/learned.smk"
include: "rules/multimodal.smk"
include: "rules/validation.smk"
include: "rules/estimates.smk"
include: "rules/stability.smk"
include: "rules/compact.smk"
include: "rules/merge.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "results/merged.parquet",
        "results/merged.csv",
        "results/report",
        "results/validation/label_studio/tasks.json",
        "results/validation/coding_sheet.csv",
        "results/estimates/prevalence.csv",
        "results/estimates/dsl_input.csv",
        stability_results(),


# `snakemake models` on a machine with internet (a cluster's login node) fetches every configured
# model once; every other step then runs offline.
rule models:
    input:
        model_weights(),


onsuccess:
    if os.path.exists("results/report/index.html"):
        print(f"\nReport: {os.path.abspath('results/report/index.html')}")
