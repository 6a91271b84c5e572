# Scheme classification by a multimodal LLM. With route.enabled it asks about the human-coded images first,
# certifies a threshold on the cheap method's confidence with them, then asks only about the images below it.


rule multimodal_classify:
    input:
        **routing_inputs(),
        **stability_inputs("multimodal"),
        manifest="results/manifest.parquet",
        prompt=config["multimodal"]["prompt"],
        schemes=[config["clip"]["schemes"][s] for s in PLAN.schemes],
        posts=posts_table,
    output:
        **multimodal_outputs(),
        **stability_outputs("multimodal"),
    log:
        "logs/llm/multimodal.log",
    benchmark:
        "benchmarks/llm/multimodal.tsv"
    conda:
        "../envs/llm.yaml"
    threads: 1
    resources:
        **llm_tuning(),
        mem_mb=4000,
        runtime=llm_minutes(),
    params:
        llm=llm_params(),
        settings=multimodal_settings(),
        code=code("multimodal_classify"),
    script:
        "../scripts/multimodal_classify.py"
