# The only step that talks to the network: compute nodes of a cluster often have none. It resolves
# and hashes the weights without building a model. With clip.precision auto it also probes the modes,
# so it runs where embedding runs, with its threads (fetch the weights first: `snakemake models`).
if not PROBES_PRECISION:

    localrules:
        clip_weights,


rule clip_weights:
    output:
        "results/clip/weights.json",
    log:
        "logs/clip/weights.log",
    conda:
        "../envs/torch.yaml"
    # it waits on a download or a hash: it must not hold back the manifest running beside it
    threads: embedding_threads() if PROBES_PRECISION else 0
    resources:
        **as_resources(device=config["clip"]["device"]),
        mem_mb=4000 if PROBES_PRECISION else 1000,
        runtime=30,
    params:
        model=clip_model_params(),
        cache_dir=config["models"]["cache_dir"],
        store_dir=config["clip"]["store_dir"],
        code=code("clip_weights"),
    script:
        "../scripts/clip_weights.py"


# Run-only settings (batch size, device, workers, flushes) are resources, not params: tuning them
# re-runs nothing. Scheme files are warmed, not declared: editing one must not re-run embedding.
# Embeddings live once, in the store (clip.store_dir); a shard's output is its index of which
# images are embedded and which failed, so scoring reads the store part by part.
rule clip_embed:
    input:
        manifest="results/manifest.parquet",
        weights="results/clip/weights.json",
    output:
        "results/clip/embedded/{shard}.parquet",
    log:
        "logs/clip/embed_{shard}.log",
    benchmark:
        "benchmarks/clip/embed_{shard}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: embedding_threads()
    resources:
        **as_resources(
            **pick(
                config["clip"],
                "batch_size",
                "device",
                "workers",
                "flush_every",
                "flush_seconds",
            ),
            warm_schemes=sorted(config["clip"]["schemes"].values()),
        ),
        mem_mb=8000,
        runtime=runtime_minutes("clip", config["clip"]["device"], len(SHARDS)),
        gpu=gpus(config["clip"]["device"]),
    params:
        settings=settings(*image_settings()),
        store_dir=config["clip"]["store_dir"],
        cache_dir=config["models"]["cache_dir"],
        code=code("clip_embed"),
    script:
        "../scripts/clip_embed.py"


rule clip_score:
    input:
        index=expand("results/clip/embedded/{shard}.parquet", shard=SHARDS),
        weights="results/clip/weights.json",
        scheme=scheme_file,
    output:
        "results/clip/{scheme}.parquet",
    log:
        "logs/clip/score_{scheme}.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        **as_resources(device=config["clip"]["device"]),
        mem_mb=4000,
        runtime=60,
    params:
        store_dir=config["clip"]["store_dir"],
        cache_dir=config["models"]["cache_dir"],
        aggregate=config["clip"]["aggregate"],
        top_k=config["clip"]["top_k"],
        code=code("clip_score"),
    script:
        "../scripts/clip_score.py"
