rule report:
    input:
        **validation_results(),
        manifest="results/manifest.parquet",
        merged="results/merged.parquet",
        scores=expand("results/clip/{scheme}.parquet", scheme=PLAN.schemes),
        schemes=[config["clip"]["schemes"][s] for s in PLAN.schemes],
        index=expand("results/clip/embedded/{shard}.parquet", shard=SHARDS),
        weights="results/clip/weights.json",
        frames=frame_results(),
        signals=signal_results(),
        ensemble=ensemble_results(),
        consensus=consensus_results(),
        learned=learned_results(),
        multimodal=multimodal_results(),
        routing=routing_results(),
        stability=stability_results(),
        ledger=ledger_results(),
        prevalence="results/estimates/prevalence.csv",
        estimates_summary="results/estimates/summary.json",
    output:
        report(
            directory("results/report"),
            htmlindex="index.html",
            caption="../report/report.rst",
            category="Report",
        ),
    log:
        "logs/report.log",
    conda:
        "../envs/core.yaml"
    threads: min(4, workflow.cores)
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=settings(
            "report",
            "posts.account_column",
            "posts.path",
            "images.root",
            "clip.schemes",
            "frames.codebook",
            "frames.prompt",
            "ensemble.prompt",
            "multimodal.prompt",
            *stability_report_settings(),
        ),
        steps=report_steps(),
        code=code("report"),
    script:
        "../scripts/report.py"
