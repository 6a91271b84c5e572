# A classifier per coded variable, learned from the human codes on the embeddings already stored: it
# reads no image, and re-fits only when the codes, the embeddings or the schemes change.


rule learned_fit:
    input:
        manifest="results/manifest.parquet",
        groups="results/duplicates/groups.parquet",
        index=expand("results/clip/embedded/{shard}.parquet", shard=SHARDS),
        weights="results/clip/weights.json",
        schemes=[config["clip"]["schemes"][s] for s in PLAN.schemes],
        codebook=[config["frames"]["codebook"]] if PLAN.methods.frames else [],
        annotations=list(PLAN.annotations),
    output:
        directory("results/learned"),
    log:
        "logs/learned/fit.log",
    benchmark:
        "benchmarks/learned/fit.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        **as_resources(device=config["clip"]["device"]),
        mem_mb=4000,
        runtime=30,
    params:
        settings=settings(
            "learned",
            "clip.top_k",
            *coder_settings(),
            "clip.schemes",
            "frames.enabled",
            "frames.codebook",
        ),
        store_dir=config["clip"]["store_dir"],
        cache_dir=config["models"]["cache_dir"],
        code=code("learned_fit"),
    script:
        "../scripts/learned_fit.py"
