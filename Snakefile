from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/manifest.smk"
include: "rules/clip.smk"
include: "rules/frames.smk"
include: "rules/merge.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "results/merged.parquet",
        "results/merged.csv",
        "results/report",


onsuccess:
    print(f"\nReport: {os.path.abspath('results/report/index.html')}")
