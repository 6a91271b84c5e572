# The shares a study publishes, on every run: the machine's, and once human codes exist, corrected by them
# with valid intervals (prediction-powered inference over the validation sample's known probabilities).


rule estimates:
    input:
        unpack(method_results),
        design="results/validation/design.parquet",
        groups="results/duplicates/groups.parquet",
        annotations=list(PLAN.annotations),
        posts=posts_table,
    output:
        prevalence="results/estimates/prevalence.csv",
        dsl="results/estimates/dsl_input.csv",
        summary="results/estimates/summary.json",
    log:
        "logs/estimates.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=settings(
            "estimates",
            "validation.design",
            *coder_settings(),
            "images.root",
            "posts.account_column",
            "posts.date_column",
            *post_settings(),
            *variable_settings(),
        ),
        code=code("estimates"),
    script:
        "../scripts/estimates.py"
