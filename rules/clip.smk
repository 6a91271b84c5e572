localrules:
    clip_weights,


# The only step that talks to the network: compute nodes of a cluster often have none.
rule clip_weights:
    output:
        "results/clip/weights.json",
    log:
        "logs/clip/weights.log",
    conda:
        "../envs/clip.yaml"
    params:
        model=clip_model_params(),
        cache_dir=config["models"]["cache_dir"],
    script:
        "../scripts/clip_weights.py"


rule clip_embed:
    input:
        manifest="results/manifest.parquet",
        weights="results/clip/weights.json",
    output:
        "results/clip/embeddings/{shard}.parquet",
    log:
        "logs/clip/embed_{shard}.log",
    benchmark:
        "benchmarks/clip/embed_{shard}.tsv"
    conda:
        "../envs/clip.yaml"
    threads: config["clip"]["workers"] + 1
    resources:
        mem_mb=8000,
        runtime=720,
    params:
        store_dir=config["clip"]["store_dir"],
        cache_dir=config["models"]["cache_dir"],
        batch_size=config["clip"]["batch_size"],
        device=config["clip"]["device"],
        workers=config["clip"]["workers"],
        flush_every=config["clip"]["flush_every"],
    script:
        "../scripts/clip_embed.py"


rule clip_score:
    input:
        shards=expand("results/clip/embeddings/{shard}.parquet", shard=SHARDS),
        weights="results/clip/weights.json",
        scheme=scheme_file,
    output:
        "results/clip/{scheme}.parquet",
    log:
        "logs/clip/score_{scheme}.log",
    conda:
        "../envs/clip.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cache_dir=config["models"]["cache_dir"],
        device=config["clip"]["device"],
        aggregate=config["clip"]["aggregate"],
        top_k=config["clip"]["top_k"],
    script:
        "../scripts/clip_score.py"
