# Whether each coding LLM task agrees with itself: its rule asks the repeats and prompt variants
# (stability.*); this rule gathers every task's figures into one table.


rule stability_metrics:
    input:
        expand("results/stability/{task}_metrics.csv", task=PLAN.stability),
    output:
        "results/stability/metrics.csv",
    log:
        "logs/stability/metrics.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=settings("stability"),
        code=code("stability_metrics"),
    script:
        "../scripts/stability_metrics.py"
