localrules:
    objects_weights,
    captions_weights,


# Like clip_weights: the only networked steps of the signals, run where Snakemake runs.
rule objects_weights:
    output:
        "results/signals/objects_weights.json",
    log:
        "logs/signals/objects_weights.log",
    conda:
        "../envs/torch.yaml"
    threads: 0  # it waits on a download or a hash
    params:
        model=config["signals"]["objects"]["model"],
        weights=config["signals"]["objects"]["weights"],
        cache_dir=config["models"]["cache_dir"],
        code=code("objects_weights"),
    script:
        "../scripts/objects_weights.py"


rule captions_weights:
    output:
        "results/signals/captions_weights.json",
    log:
        "logs/signals/captions_weights.log",
    conda:
        "../envs/torch.yaml"
    threads: 0  # it waits on a download or a hash
    params:
        model=captions_model_params(),
        cache_dir=config["models"]["cache_dir"],
        code=code("clip_weights"),
    script:
        "../scripts/clip_weights.py"


rule signals_ocr:
    input:
        manifest="results/manifest.parquet",
    output:
        "results/signals/ocr.parquet",
    log:
        "logs/signals/ocr.log",
    benchmark:
        "benchmarks/signals/ocr.tsv"
    conda:
        "../envs/signals_ocr.yaml"
    threads: workflow.cores
    resources:
        **signal_tuning(),
        mem_mb=4000,
        runtime=lambda wildcards, threads: runtime_minutes("ocr", processes=threads),
    params:
        settings=settings(*image_settings()),
        ocr=config["signals"]["ocr"],
        store_dir=config["signals"]["store_dir"],
        code=code("signals_ocr"),
    script:
        "../scripts/signals_ocr.py"


rule signals_objects:
    input:
        manifest="results/manifest.parquet",
        weights="results/signals/objects_weights.json",
    output:
        "results/signals/objects.parquet",
    log:
        "logs/signals/objects.log",
    benchmark:
        "benchmarks/signals/objects.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["signals"]["objects"]["workers"] + 1
    resources:
        **signal_tuning(config["signals"]["objects"]),
        mem_mb=8000,
        runtime=runtime_minutes("objects", config["signals"]["objects"]["device"]),
        gpu=gpus(config["signals"]["objects"]["device"]),
    params:
        settings=settings(*image_settings()),
        objects=without(config["signals"]["objects"], *MODEL_RUN_ONLY),
        cache_dir=config["models"]["cache_dir"],
        store_dir=config["signals"]["store_dir"],
        code=code("signals_objects"),
    script:
        "../scripts/signals_objects.py"


rule signals_tags:
    input:
        index=expand("results/clip/embedded/{shard}.parquet", shard=SHARDS),
        weights="results/clip/weights.json",
        vocabulary=config["signals"]["tags"]["vocabulary"],
    output:
        "results/signals/tags.parquet",
    log:
        "logs/signals/tags.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        **as_resources(device=config["clip"]["device"]),
        mem_mb=4000,
        runtime=60,
    params:
        template=config["signals"]["tags"]["template"],
        top_k=config["signals"]["tags"]["top_k"],
        min_prob=config["signals"]["tags"]["min_prob"],
        cache_dir=config["models"]["cache_dir"],
        store_dir=config["clip"]["store_dir"],
        code=code("signals_tags"),
    script:
        "../scripts/signals_tags.py"


rule signals_captions:
    input:
        unpack(caption_inputs),
    output:
        table="results/signals/captions.parquet",
        ledger="results/llm/cost/captions.csv",
    log:
        "logs/signals/captions.log",
    benchmark:
        "benchmarks/signals/captions.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["signals"]["captions"]["workers"] + 1
    resources:
        **(llm_tuning() if PLAN.captions_by_llm else {}),
        **signal_tuning(config["signals"]["captions"]),
        mem_mb=8000,
        runtime=(
            llm_minutes()
            if PLAN.captions_by_llm
            else runtime_minutes("captions", config["signals"]["captions"]["device"])
        ),
        gpu=0 if PLAN.captions_by_llm else gpus(config["signals"]["captions"]["device"]),
    params:
        settings=settings(*image_settings()),
        captions=without(config["signals"]["captions"], *MODEL_RUN_ONLY),
        llm=llm_params() if PLAN.captions_by_llm else {},
        cache_dir=config["models"]["cache_dir"],
        store_dir=config["signals"]["store_dir"],
        code=code("signals_captions"),
    script:
        "../scripts/signals_captions.py"


rule signals_vision:
    input:
        manifest="results/manifest.parquet",
    output:
        "results/signals/vision.parquet",
    log:
        "logs/signals/vision.log",
    conda:
        "../envs/signals_vision.yaml"
    threads: 1
    resources:
        **as_resources(max_concurrency=config["signals"]["vision"]["max_concurrency"]),
        mem_mb=2000,
        runtime=1440,
    params:
        settings=settings(*image_settings()),
        vision=without(config["signals"]["vision"], "max_concurrency"),
        cache=config["llm"]["cache"],
        code=code("signals_vision"),
    script:
        "../scripts/signals_vision.py"
