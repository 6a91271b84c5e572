rule manifest:
    input:
        posts=posts_table,
    output:
        "results/manifest.parquet",
    log:
        "logs/manifest.log",
    conda:
        "../envs/core.yaml"
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        listing=lambda wildcards: image_listing(),
        cache="results/cache/manifest-cache.parquet",
    script:
        "../scripts/manifest.py"
