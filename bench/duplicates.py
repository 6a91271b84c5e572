"""Time and peak memory of the duplicate groups at 10^5 and 10^6 images, on synthetic thumbnails.

Each image is a smooth random 32x32 thumbnail with its colour cells; a tenth of the pictures have 1-4 copies
(re-encoding noise, a brighter copy, a banner). Every size runs in a process of its own, so the peak resident
memory (ru_maxrss) is that size's. The manifest's decode, which makes the thumbnails, is not measured here.

    python bench/duplicates.py            # 10^5 and 10^6
    python bench/duplicates.py 100000     # one size
"""

from __future__ import annotations

import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


def synthetic_images(n: int, seed: int = 0):
    import numpy as np
    import pandas as pd
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    pictures = int(n / 1.25)
    coarse = rng.integers(0, 256, size=(pictures, 8, 8)).astype(np.float32)
    grey = np.clip(zoom(coarse, (1, 4, 4), order=1), 0, 255).astype(np.uint8)
    colour = rng.integers(0, 256, size=(pictures, 48), dtype=np.uint8)
    copies = rng.choice(pictures, size=n - pictures)  # pictures reposted (some several times)
    copy_grey = grey[copies].astype(np.int16) + rng.integers(-6, 7, size=(len(copies), 32, 32))
    bright = rng.random(len(copies)) < 0.3
    copy_grey[bright] = copy_grey[bright] * 1.15
    banner = rng.random(len(copies)) < 0.3
    copy_grey[banner, 28:, :] = 20
    grey = np.concatenate([grey, np.clip(copy_grey, 0, 255).astype(np.uint8)])
    colour = np.concatenate([colour, colour[copies]])
    rows = np.concatenate([grey.reshape(n, -1), colour], axis=1)
    return pd.DataFrame({"image_id": [f"{i:07d}" for i in range(n)], "thumbnail": list(map(bytes, rows)),
                         "width": 1080, "height": 1080})


def one_size(n: int) -> None:
    from imagecoding.duplicates.groups import Settings, duplicate_groups

    images = synthetic_images(n)
    start = time.perf_counter()
    groups = duplicate_groups(images, Settings())
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with_copies = int((groups["group_size"] > 1).sum())
    print(f"| {n:>9,} | {seconds:8.1f} | {peak_mb:9.0f} | {groups.attrs['candidates']:>10,} | "
          f"{groups.attrs['verified']:>9,} | {with_copies:>12,} | {int(groups['group_size'].max()):>7} |", flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one_size(int(sys.argv[2]))
        return
    sizes = [int(s) for s in sys.argv[1:]] or [100_000, 1_000_000]
    print(f"`{' '.join(['python', *sys.argv])}` on {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; grouping only (thumbnails given), one thread")
    print("| images | seconds | peak MB | candidate pairs | verified | images in groups with copies | largest |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        subprocess.run([sys.executable, __file__, "--one", str(n)], check=True)


if __name__ == "__main__":
    main()
