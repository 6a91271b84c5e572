rule frames_code:
    input:
        manifest="results/manifest.parquet",
        codebook=config["frames"]["codebook"],
        prompt=config["frames"]["prompt"],
        posts=posts_table,
    output:
        frames="results/llm/frames.parquet",
        ledger="results/llm/cost.csv",
    log:
        "logs/llm/frames.log",
    benchmark:
        "benchmarks/llm/frames.tsv"
    conda:
        "../envs/llm.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=1440,
    params:
        llm=llm_params(),
        frames=config["frames"],
    script:
        "../scripts/frames_code.py"


# Not part of `all`: `snakemake frames_estimate` prints what coding would request and cost.
rule frames_estimate:
    input:
        manifest="results/manifest.parquet",
        codebook=config["frames"]["codebook"],
        prompt=config["frames"]["prompt"],
        posts=posts_table,
    log:
        "logs/llm/estimate.log",
    localrule: True
    conda:
        "../envs/llm.yaml"
    params:
        llm=llm_params(),
        frames=config["frames"],
    script:
        "../scripts/frames_estimate.py"
