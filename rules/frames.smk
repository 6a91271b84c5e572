rule frames_code:
    input:
        **stability_inputs("frames"),
        manifest="results/manifest.parquet",
        codebook=config["frames"]["codebook"],
        prompt=config["frames"]["prompt"],
        posts=posts_table,
    output:
        frames="results/llm/frames.parquet",
        ledger="results/llm/cost/frames.csv",
        **stability_outputs("frames"),
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
            "frames", *image_settings(), *post_settings(), *stability_settings("frames")
        ),
        code=code("frames_code"),
    script:
        "../scripts/frames_code.py"
