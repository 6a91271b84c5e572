rule ensemble_classify:
    input:
        **stability_inputs("ensemble"),
        manifest="results/manifest.parquet",
        signals=signal_results(),
        prompt=config["ensemble"]["prompt"],
        schemes=[config["clip"]["schemes"][s] for s in PLAN.schemes],
        posts=posts_table,
    output:
        **stability_outputs("ensemble"),
        table="results/ensemble/categories.parquet",
        ledger="results/llm/cost/ensemble.csv",
    log:
        "logs/ensemble/classify.log",
    benchmark:
        "benchmarks/ensemble/classify.tsv"
    conda:
        "../envs/llm.yaml"
    threads: 1
    resources:
        **llm_tuning(),
        mem_mb=4000,
        runtime=llm_minutes(),
    params:
        llm=llm_params(),
        settings=ensemble_settings(),
        code=code("ensemble_classify"),
    script:
        "../scripts/ensemble_classify.py"


rule consensus:
    input:
        scores=expand("results/clip/{scheme}.parquet", scheme=PLAN.schemes),
        schemes=[config["clip"]["schemes"][s] for s in PLAN.schemes],
        ensemble=ensemble_results(),
        learned=learned_results(),
        multimodal=multimodal_results(),
        frames=frame_results() if PLAN.methods.mapped_frames else [],
    output:
        tables=expand("results/consensus/{scheme}.parquet", scheme=PLAN.schemes),
        agreement="results/consensus/agreement.csv",
    log:
        "logs/consensus.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=settings("clip.schemes", "consensus.frames"),
        code=code("consensus"),
    script:
        "../scripts/consensus.py"
