# What every LLM task shares: one cost ledger, and estimates that send nothing.


rule llm_ledger:
    input:
        expand("results/llm/cost/{task}.csv", task=PLAN.llm_tasks),
    output:
        "results/llm/cost.csv",
    log:
        "logs/llm/ledger.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=code("llm_ledger"),
    script:
        "../scripts/llm_ledger.py"


# Not part of `all`: `snakemake llm_estimate` prints what every enabled LLM task would request and
# cost (frames_estimate and ensemble_estimate one task each), counting the cache; it sends nothing.
# With routing it prints the multimodal LLM with and without it (the zero-shot and learned steps run first).
rule llm_estimate:
    input:
        **routing_inputs(),
        **stability_estimate_inputs(),
        manifest="results/manifest.parquet",
        groups="results/duplicates/groups.parquet",
        signals=signal_results() if PLAN.methods.ensemble else [],
        posts=posts_table,
    log:
        "logs/llm/estimate.log",
    localrule: True
    conda:
        "../envs/llm.yaml"
    threads: 1
    resources:
        **llm_tuning(),
        mem_mb=2000,
        runtime=30,
    params:
        tasks=list(PLAN.llm_tasks),
        stability=list(PLAN.stability),
        llm=llm_params(),
        settings=estimate_settings(),
    script:
        "../scripts/llm_estimate.py"


use rule llm_estimate as frames_estimate with:
    input:
        **stability_inputs("frames"),
        manifest="results/manifest.parquet",
        groups="results/duplicates/groups.parquet",
        posts=posts_table,
    log:
        "logs/llm/frames_estimate.log",
    params:
        tasks=["frames"],
        stability=[t for t in PLAN.stability if t == "frames"],
        llm=llm_params(),
        settings=estimate_settings(),


use rule llm_estimate as ensemble_estimate with:
    input:
        **stability_inputs("ensemble"),
        manifest="results/manifest.parquet",
        signals=signal_results(),
        posts=posts_table,
    log:
        "logs/llm/ensemble_estimate.log",
    params:
        tasks=["ensemble"],
        stability=[t for t in PLAN.stability if t == "ensemble"],
        llm=llm_params(),
        settings=estimate_settings(),
