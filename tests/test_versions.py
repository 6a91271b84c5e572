"""Settings reach a step only through its rule, and each step's params carry a key of the library code it runs."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagecoding.invocation import config_digest
from imagecoding.tuning import as_resources, from_resources
from imagecoding.versions import code_version, modules_of

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


def test_no_script_reads_the_config():
    """Snakemake's params trigger sees only params: a script reading snakemake.config would go stale unseen."""
    readers = []
    for path in sorted(SCRIPTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "config" and getattr(node.value, "id", None) == "snakemake":
                readers.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert readers == []


def test_every_rule_with_a_script_passes_its_code_key():
    rules = "\n".join(path.read_text() for path in sorted((REPO / "rules").glob("*.smk")))
    scripts = {Path(line.split('"')[1]).stem for line in rules.splitlines() if line.strip().startswith('"../scripts/')}
    keyed = {line.split('code("')[1].split('"')[0] for line in rules.splitlines() if 'code("' in line}
    assert scripts - keyed <= {"llm_estimate"}  # an estimate writes no file that could go stale


def make_package(root: Path) -> Path:
    """An entry script using imagecoding.a directly and imagecoding.b lazily, with a template folder."""
    package = root / "imagecoding"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import helper\n\nVALUE = 1\n")
    (package / "b.py").write_text("def helper():\n    from .c import deep\n    return deep()\n")
    (package / "c.py").write_text("def deep():\n    return 2\n")
    (package / "unused.py").write_text("X = 1\n")
    (package / "templates" / "page.j2").write_text("<p>{{ x }}</p>\n")
    script = root / "step.py"
    script.write_text("import sys\n\nfrom imagecoding.a import VALUE\n")
    return script


def key_after(script: Path, path: Path, text: str) -> str:
    from imagecoding import versions

    path.write_text(text)
    versions._parsed.cache_clear()
    versions._data_digest.cache_clear()
    return code_version(script)


def test_a_behavioural_change_anywhere_the_script_reaches_changes_its_key(tmp_path):
    script = make_package(tmp_path)
    package = tmp_path / "imagecoding"
    assert {p.name for p in modules_of(script)} == {"step.py", "__init__.py", "a.py", "b.py", "c.py"}
    before = code_version(script)
    # A lazy import two levels down, then a template of an imported package.
    changed = key_after(script, package / "c.py", "def deep():\n    return 3\n")
    assert changed != before
    assert key_after(script, package / "templates" / "page.j2", "<p>{{ y }}</p>\n") != changed


def test_a_module_the_script_does_not_import_changes_nothing(tmp_path):
    script = make_package(tmp_path)
    before = code_version(script)
    assert key_after(script, tmp_path / "imagecoding" / "unused.py", "X = 2\n") == before


@pytest.mark.parametrize("module", ["imagecoding.report.build", "imagecoding.tasks.frames", "imagecoding.validation.metrics"])
def test_the_modules_found_include_every_module_python_imports(module):
    """The text scan finds at least what the interpreter loads (it also counts lazy imports)."""
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('imagecoding')))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, capture_output=True, text=True, check=True).stdout.split()
    path = SCRIPTS.joinpath(*module.split(".")).with_suffix(".py")
    found = {p.relative_to(SCRIPTS).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__") for p in modules_of(path, SCRIPTS)}
    assert set(loaded) <= found


def test_run_only_settings_survive_the_trip_through_resources():
    values = {"batch_size": None, "device": "auto", "workers": 2, "retry": [6, 1.0, 60, 120.0, 60]}
    resources = type("Resources", (), as_resources(**values))
    assert all(isinstance(v, (int, str)) for v in as_resources(**values).values())  # what Snakemake accepts
    assert from_resources(resources, *values) == values


def test_the_run_census_is_named_by_the_whole_configuration():
    config = {"images": {"root": "a"}, "clip": {"top_k": 3}}
    assert config_digest(config) == config_digest(json.loads(json.dumps(config)))
    assert config_digest(config) != config_digest({"images": {"root": "a"}, "clip": {"top_k": 4}})
