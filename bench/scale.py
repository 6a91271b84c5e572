"""What every invocation pays before any job runs, at 10^4, 10^5 and 10^6 image files.

Makes N empty files in 1,000 folders (tiny synthetic files: the listing stats them, nothing decodes
them), then measures, each as a whole process:
  - the listing: configured_image_paths + listing_fingerprint, the two calls every run makes;
  - a dry run, `snakemake -n` to the CLIP scores with clip.shard_size 20,000: parse, config checks,
    listing and DAG, Snakemake's start-up included;
  - a cluster job's parse: the command a SLURM job runs (`--mode remote --target-jobs clip_score:...`,
    as a dry run so that nothing executes), and the same command on an empty one-rule workflow,
    which is Snakemake's own start-up; the difference is what this workflow costs each job;
and the peak resident memory of each (the process's own ru_maxrss). Prints a table and the growth
per 10x step, which stays near 10x (linear) when nothing is worse than linear. A job must not list
the image folder: the bench fails if the job says it had to.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

LISTING = textwrap.dedent(
    """
    import resource, sys, time
    sys.path.insert(0, sys.argv[2])
    from imagecoding.manifest import configured_listing, listing_fingerprint
    started = time.perf_counter()
    config = {"images": {"root": sys.argv[1], "extensions": ["jpg", "jpeg", "png"]}, "posts": {}}
    paths, scanned = configured_listing(config)
    listing_fingerprint(paths, sys.argv[1], (), scanned)
    print(len(paths), time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def make_files(root: Path, count: int) -> None:
    """count empty .jpg files, 1,000 folders; reuses what an earlier size made."""
    for index in range(count):
        folder = root / f"d{index % 1000:03d}"
        if index < 1000:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img{index:07d}.jpg"
        if not path.exists():
            path.touch()


def write_config(workdir: Path, root: Path) -> None:
    import yaml

    scheme = workdir / "scheme.yaml"
    shutil.copy(REPO / "config" / "schemes" / "image_types.yaml", scheme)
    config = {"images": {"root": str(root)}, "posts": {"path": None},
              "clip": {"schemes": {"image_type": str(scheme)}, "shard_size": 20_000}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


JOB = ["--mode", "remote", "--target-jobs", "clip_score:scheme=image_type", "--allowed-rules", "clip_score",
       "--force", "--nolock", "--cores", "1", "--dry-run"]


def timed(command: list[str], repeats: int) -> tuple[float, str]:
    """Median wall time of a whole process over repeats, and its last stderr."""
    times, stderr = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        stderr = result.stderr
    return sorted(times)[len(times) // 2], stderr


def empty_workflow(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "Snakefile").write_text('rule clip_score:\n    output: "results/clip/{scheme}.parquet"\n    shell: "touch {output}"\n')
    return folder / "Snakefile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--keep", help="keep the files here (reused by a later run)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each job command (the median is shown)")
    args = parser.parse_args()
    scratch = Path(args.keep or tempfile.mkdtemp(prefix="scale-"))
    rows = []
    for count in [int(n) for n in args.sizes.split(",")]:
        root = scratch / f"images-{count}"
        started = time.perf_counter()
        make_files(root, count)
        made = time.perf_counter() - started
        listed = subprocess.run([sys.executable, "-c", LISTING, str(root), str(REPO / "scripts")],
                                capture_output=True, text=True, check=True).stdout.split()
        paths, listing_s, listing_kb = int(listed[0]), float(listed[1]), int(listed[2])
        workdir = scratch / f"workflow-{count}"
        workdir.mkdir(exist_ok=True)
        write_config(workdir, root)
        command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
                   "--configfile", str(workdir / "config.yaml"), "--cores", "2", "-n", "results/clip/image_type.parquet"]
        started = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True,
                                env=dict(os.environ, HF_HUB_OFFLINE="1"))
        dry_s = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"dry run failed at {count}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        dry_kb = int(result.stderr.strip().splitlines()[-1])
        jobs = [line for line in result.stdout.splitlines() if line.startswith("clip_embed")]
        shards = int(jobs[0].split()[1]) if jobs else 0
        job_s, job_log = timed(command[:7] + JOB, args.repeats)
        if "lists the image folder itself" in job_log:
            raise SystemExit(f"the cluster job listed the image folder at {count} files:\n{job_log[-2000:]}")
        empty = empty_workflow(scratch / "empty")
        bare_s, _ = timed([SNAKEMAKE, "--snakefile", str(empty), "--directory", str(empty.parent), *JOB], args.repeats)
        rows.append((count, paths, made, listing_s, listing_kb / 1024, dry_s, dry_kb / 1024, shards, job_s, bare_s))
    print(f"{os.cpu_count()} cores; empty files in 1,000 folders; one run each")
    print("| files | listed | listing + fingerprint | its peak memory | dry run (snakemake -n) | its peak memory | embedding jobs |")
    print("|---|---|---|---|---|---|---|")
    for count, paths, _, listing_s, listing_mb, dry_s, dry_mb, shards, *_ in rows:
        print(f"| {count:,} | {paths:,} | {listing_s:.2f} s | {listing_mb:.0f} MB | {dry_s:.1f} s | {dry_mb:.0f} MB | {shards} |")
    print(f"\nOne cluster job's start (clip_score, as the SLURM executor runs it), median of {args.repeats}:")
    print("| files | job command | Snakemake alone (empty workflow) | this workflow's parse |")
    print("|---|---|---|---|")
    for count, *_, job_s, bare_s in rows:
        print(f"| {count:,} | {job_s:.2f} s | {bare_s:.2f} s | {job_s - bare_s:.2f} s |")
    if len(rows) > 1:
        print("\n| step | listing time | dry-run time | dry-run memory |")
        print("|---|---|---|---|")
        for before, after in zip(rows, rows[1:]):
            print(f"| {before[0]:,} -> {after[0]:,} | {after[3] / before[3]:.1f}x | {after[5] / before[5]:.1f}x | "
                  f"{after[6] / before[6]:.1f}x |")
    print(f"\ncommand: {' '.join([Path(sys.executable).relative_to(REPO).as_posix() if sys.executable.startswith(str(REPO)) else sys.executable, 'bench/scale.py', '--sizes', args.sizes, '--repeats', str(args.repeats)])}")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
