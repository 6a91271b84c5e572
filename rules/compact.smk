localrules:
    compact,


# Maintenance, run by name while no other job runs: `snakemake compact`. Many small parts (a
# cluster's flushes) and duplicates (two runs sharing a store) become few parts, each image once.
rule compact:
    log:
        "logs/compact.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        stores=[config["clip"]["store_dir"], config["signals"]["store_dir"]],
        rows_per_part=100000,
        code=code("compact"),
    script:
        "../scripts/compact.py"
