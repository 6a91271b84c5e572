rule merge:
    input:
        manifest="results/manifest.parquet",
        groups="results/duplicates/groups.parquet",
        scores=expand("results/clip/{scheme}.parquet", scheme=PLAN.schemes),
        frames=frame_results(),
        signals=signal_results(),
        ensemble=ensemble_results(),
        learned=learned_results(),
        multimodal=multimodal_results(),
        routing=routing_results(),
        consensus=consensus_results(),
        posts=posts_table,
    output:
        parquet="results/merged.parquet",
        csv=report(
            "results/merged.csv", caption="../report/merged.rst", category="Results"
        ),
    log:
        "logs/merge.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=settings("clip.schemes", "images.root", *post_settings()),
        code=code("merge"),
    script:
        "../scripts/merge.py"
