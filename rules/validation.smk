# The sample for human coders goes out with every run, drawn with known probabilities (the design, from
# code-free methods only); their codes, once validation.annotations names them, come back as metrics weighted
# to the corpus on every run after.


rule validation_design:
    input:
        manifest="results/manifest.parquet",
        groups="results/duplicates/groups.parquet",
        scores=expand("results/clip/{scheme}.parquet", scheme=PLAN.schemes),
        ensemble=ensemble_results() if UNCERTAINTY_DESIGN else [],
    output:
        design="results/validation/design.parquet",
    log:
        "logs/validation/design.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=settings(*design_settings()),
        code=code("validation_design"),
    script:
        "../scripts/validation_design.py"


rule validation_export:
    input:
        unpack(method_results),
        design="results/validation/design.parquet",
    output:
        sample="results/validation/sample.csv",
        tasks="results/validation/label_studio/tasks.json",
        labeling_config="results/validation/label_studio/labeling_config.xml",
        sheet="results/validation/coding_sheet.csv",
    log:
        "logs/validation/export.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=settings(
            "validation.design",
            "validation.round",
            "validation.label_studio",
            "images.root",
            *variable_settings(),
        ),
        code=code("validation_export"),
    script:
        "../scripts/validation_export.py"


rule validation_metrics:
    input:
        unpack(method_results),
        annotations=list(PLAN.annotations),
        design="results/validation/design.parquet",
    output:
        metrics="results/validation/metrics.csv",
        confusion=directory("results/validation/confusion"),
        codes="results/validation/codes.csv",
        gold="results/validation/gold.csv",
        report="results/validation/import_report.csv",
    log:
        "logs/validation/metrics.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=settings(
            *coder_settings(),
            "validation.bootstrap",
            "validation.seed",
            *variable_settings(),
        ),
        code=code("validation_metrics"),
    script:
        "../scripts/validation_metrics.py"
