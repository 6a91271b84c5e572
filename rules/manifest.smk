rule manifest:
    input:
        posts=posts_table,
    output:
        manifest="results/manifest.parquet",
        thumbnails="results/thumbnails.parquet",
    log:
        "logs/manifest.log",
    conda:
        "../envs/core.yaml"
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        settings=settings(*image_settings(), "images.extra_roots"),
        listing=CENSUS["listing"],  # named by the fingerprint of the files found: new files re-run it
        cache="results/cache/manifest-cache.parquet",
        code=code("manifest"),
    script:
        "../scripts/manifest.py"
