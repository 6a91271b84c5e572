rule frames_code:
    input:
        manifest="results/manifest.parquet",
        codebook=config["frames"]["codebook"],
        prompt=config["frames"]["prompt"],
        posts=posts_table,
    output:
        frames="results/llm/frames.parquet",
        ledger="results/llm/cost/frames.csv",
    log:
        "logs/llm/frames.log",
    benchmark:
        "benchmarks/llm/frames.tsv"
    conda:
        "../envs/llm.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=llm_minutes(),
        llm=config["llm"]["max_concurrency"],
    params:
        llm=llm_params(),
        frames=config["frames"],
    script:
        "../scripts/frames_code.py"
