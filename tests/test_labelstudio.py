"""The validation round trip against a real Label Studio: tasks and labeling config out, two coders, export back in."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from label_studio import LabelStudio
from workflow_helpers import snakemake

pytestmark = pytest.mark.labelstudio  # it codes a copy of conftest.py's finished_run

ADMIN, CODER = ("ann@lab.example", "an-annotator-pw-1"), ("bob@lab.example", "another-coder-pw-2")


@pytest.fixture(scope="module")
def studio(tmp_path_factory, finished_run):
    workdir = tmp_path_factory.mktemp("validation")
    shutil.copytree(finished_run, workdir, symlinks=True, dirs_exist_ok=True)  # mtimes and metadata kept: nothing re-runs
    data = tmp_path_factory.mktemp("label-studio-data")
    server = LabelStudio(data, workdir, *ADMIN)  # the document root is the folder above images.root, as by default
    try:
        server.wait()
        yield server, workdir
    finally:
        server.stop()


def test_tasks_go_to_label_studio_and_two_coders_codes_come_back_as_metrics(studio):
    server, workdir = studio
    again = snakemake(workdir)
    assert "Nothing to be done" in again.stdout + again.stderr  # the copied run is finished: the tasks are out already
    folder = workdir / "results" / "validation" / "label_studio"
    admin = server.session(*ADMIN)
    project = admin.post(f"{server.url}/api/projects", json={"title": "image types",
                         "label_config": (folder / "labeling_config.xml").read_text()}, timeout=60)
    project.raise_for_status()
    project_id = project.json()["id"]
    storage = admin.post(f"{server.url}/api/storages/localfiles", json={"project": project_id, "title": "images",
                         "path": str(workdir / "images"), "use_blob_urls": True}, timeout=60)
    storage.raise_for_status()  # local files are served only inside a storage of the project
    imported = admin.post(f"{server.url}/api/projects/{project_id}/import", json=json.loads((folder / "tasks.json").read_text()), timeout=120)
    imported.raise_for_status()
    sample = pd.read_csv(workdir / "results" / "validation" / "sample.csv")
    tasks = admin.get(f"{server.url}/api/tasks", params={"project": project_id, "page_size": 1000, "fields": "all"}, timeout=60).json()
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    assert len(tasks) == len(sample) and all(task["data"]["image_id"] in set(sample["image_id"]) for task in tasks)
    image = admin.get(server.url + tasks[0]["data"]["image"], timeout=60)  # local-files serving finds the image
    assert image.ok and image.headers["Content-Type"].startswith("image/")

    coder = server.session(*CODER, signup=True)
    clip = pd.read_parquet(workdir / "results" / "clip" / "image_type.parquet").set_index("image_id")["image_type"]
    for task in tasks:
        for session, value in ((admin, clip[task["data"]["image_id"]]), (coder, "Collage")):
            result = [{"from_name": "image_type", "to_name": "image", "type": "choices", "value": {"choices": [value]}}]
            session.post(f"{server.url}/api/tasks/{task['id']}/annotations/", json={"result": result, "project": project_id},
                         timeout=60).raise_for_status()
    export = admin.get(f"{server.url}/api/projects/{project_id}/export", params={"exportType": "JSON"}, timeout=120)
    export.raise_for_status()
    (workdir / "export.json").write_text(export.text)

    config = yaml.safe_load((workdir / "config.yaml").read_text())
    ids = {who: session.get(f"{server.url}/api/current-user/whoami", timeout=30).json()["id"] for who, session in
           (("ann", admin), ("bob", coder))}  # the export names coders by their Label Studio user id
    config.setdefault("validation", {}).update({"annotations": str(workdir / "export.json"), "coders": {ids["ann"]: "ann", ids["bob"]: "bob"},
                                 "adjudicator": "ann", "bootstrap": 100})  # the design that drew the sample stays
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir)
    metrics = pd.read_csv(workdir / "results" / "validation" / "metrics.csv")
    gold = metrics[(metrics["method"] == "clip") & (metrics["against"] == "gold") & metrics["class"].isna()].set_index("metric")
    assert gold.loc["accuracy", "value"] == 1.0 and gold.loc["accuracy", "n"] == len(sample)  # ann followed CLIP, and settles ties
    coders = metrics[(metrics["method"] == "coders") & (metrics["metric"] == "krippendorff_alpha")]
    assert len(coders) == 1 and coders["n"].item() == len(sample)
    versus_bob = metrics[(metrics["method"] == "clip") & (metrics["against"] == "coder:bob") & (metrics["metric"] == "percent_agreement")]
    assert versus_bob["value"].item() == pytest.approx((clip[sample["image_id"]] == "Collage").mean() * 100)
    html = (workdir / "results" / "report" / "index.html").read_text()
    assert (f"CLIP image_type agrees with the human gold standard on an estimated 100% of the corpus "
            f"({len(sample)} codes weighted by their inclusion probabilities)") in html


def test_the_cached_venv_is_named_by_the_locks_content(tmp_path, monkeypatch):
    import label_studio

    monkeypatch.setattr(label_studio, "CACHE", tmp_path)
    lock = tmp_path / "a.lock"
    lock.write_text(label_studio.LOCK.read_text())
    assert label_studio.venv_path(lock) == label_studio.venv_path()  # the name follows the content, not the path
    lock.write_text(label_studio.LOCK.read_text().replace("sentry-sdk==2.", "sentry-sdk==3."))
    assert label_studio.venv_path(lock) != label_studio.venv_path()  # a changed lock never reuses a drifted venv
    assert label_studio.venv_path().parent == tmp_path
