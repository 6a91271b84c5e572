localrules:
    clip_weights,


# The only step that talks to the network: compute nodes of a cluster often have none.
rule clip_weights:
    output:
        "results/clip/weights.json",
    params:
        model=clip_model_params(),
        cache_dir=config["clip"]["cache_dir"],
    log:
        "logs/clip/weights.log",
    conda:
        "../envs/clip.yaml"
    script:
        "../scripts/clip_weights.py"


rule clip_embed:
    input:
        manifest="results/manifest.parquet",
        weights="results/clip/weights.json",
    output:
        "results/clip/embeddings/{shard}.parquet",
    params:
        store_dir=config["clip"]["store_dir"],
        cache_dir=config["clip"]["cache_dir"],
        batch_size=config["clip"]["batch_size"],
        device=config["clip"]["device"],
        workers=config["clip"]["workers"],
        flush_every=config["clip"]["flush_every"],
    log:
        "logs/clip/embed_{shard}.log",
    benchmark:
        "benchmarks/clip/embed_{shard}.tsv"
    threads: config["clip"]["workers"] + 1
    resources:
        mem_mb=8000,
        runtime=720,
    conda:
        "../envs/clip.yaml"
    script:
        "../scripts/clip_embed.py"


rule clip_score:
    input:
        shards=expand("results/clip/embeddings/{shard}.parquet", shard=SHARDS),
        weights="results/clip/weights.json",
        scheme=scheme_file,
    output:
        "results/clip/{scheme}.parquet",
    params:
        cache_dir=config["clip"]["cache_dir"],
        device=config["clip"]["device"],
        aggregate=config["clip"]["aggregate"],
        top_k=config["clip"]["top_k"],
    log:
        "logs/clip/score_{scheme}.log",
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/clip.yaml"
    script:
        "../scripts/clip_score.py"
