# Reposts as one picture: near-duplicate groups from the thumbnails the manifest's decode kept. It opens no
# image, and re-runs only when the images or the duplicates.* settings change.


rule duplicates:
    input:
        manifest="results/manifest.parquet",
        thumbnails="results/thumbnails.parquet",
    output:
        groups="results/duplicates/groups.parquet",
    log:
        "logs/duplicates.log",
    benchmark:
        "benchmarks/duplicates.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=settings(*duplicate_settings()),
        code=code("duplicates"),
    script:
        "../scripts/duplicates.py"
