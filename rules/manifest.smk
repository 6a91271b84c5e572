rule manifest:
    input:
        posts=posts_table,
    output:
        "results/manifest.parquet",
    params:
        listing=lambda wildcards: image_listing(),
        cache="results/cache/manifest-cache.parquet",
    log:
        "logs/manifest.log",
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=120,
    conda:
        "../envs/core.yaml"
    script:
        "../scripts/manifest.py"
