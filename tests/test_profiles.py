"""Static checks of what a cluster run relies on: every rule sized, the SLURM profile complete and the user's parts left open."""

import re

import yaml

from workflow_helpers import REPO


def rules():
    """(file, rule name, body, local?) for every rule of the workflow."""
    for path in sorted((REPO / "rules").glob("*.smk")):
        text = path.read_text()
        local = {name for block in re.findall(r"^localrules:\n((?:    \w+,\n)+)", text, re.M) for name in re.findall(r"\w+", block)}
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, re.M | re.S):  # `use rule` inherits
            yield path.name, match.group(1), match.group(2), match.group(1) in local


def test_every_rule_declares_threads_and_every_cluster_job_its_memory_and_time():
    checked = 0
    for file, name, body, local in rules():
        assert re.search(r"^    threads:", body, re.M), f"{file}: rule {name} declares no threads"
        if not local:
            assert "mem_mb=" in body and "runtime=" in body, f"{file}: rule {name} lacks mem_mb or runtime"
        checked += 1
    assert checked >= 20


def test_model_rules_ask_for_a_gpu_through_the_plugins_resource_and_llm_rules_share_one_budget():
    bodies = {name: body for _, name, body, _ in rules()}
    for name in ("clip_embed", "signals_objects", "signals_captions"):
        assert "gpu=" in bodies[name] and "slurm_extra" not in bodies[name], name
    for name in ("frames_code", "ensemble_classify", "signals_captions"):
        assert "llm_tuning()" in bodies[name], name
    common = (REPO / "rules" / "common.smk").read_text()
    assert 'llm=llm["max_concurrency"]' in common.split("def llm_tuning")[1].split("\ndef ")[0]


def test_the_slurm_profile_leaves_account_and_partition_to_the_user():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["jobs"] >= 1 and profile["latency-wait"] >= 5
    assert "slurm_account" not in profile["default-resources"] and "slurm_partition" not in profile["default-resources"]
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    assert "# slurm_account:" in text and "# slurm_partition:" in text  # the profile says where they go
    assert profile["resources"]["llm"] >= 1 and "gres" not in text.replace("--gres", "")
