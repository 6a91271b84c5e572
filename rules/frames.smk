rule frames_code:
    input:
        manifest="results/manifest.parquet",
        groups="results/duplicates/groups.parquet",
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
        **llm_tuning(),
        mem_mb=4000,
        runtime=llm_minutes(),
    params:
        llm=llm_params(),
        settings=settings(
            "frames", "duplicates.reuse_answers", *image_settings(), *post_settings()
        ),
        code=code("frames_code"),
    script:
        "../scripts/frames_code.py"
