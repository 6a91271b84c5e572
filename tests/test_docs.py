"""The docs stay true: every command, config key, results path and link they name exists.

Checked in README.md, docs/*.md and config/README.md: `make` targets against the Makefile, `snakemake`
commands against Snakemake's own argument parser and the workflow's rules, dotted config keys and YAML
examples against config/schema/config.schema.yaml, results/ paths against the paths the rules name,
relative links against the files. docs/RELIABILITY.md must name only tests that exist.

config/README.md's key tables are generated from the schema; after editing the schema, rewrite them with
    .venv/bin/python tests/test_docs.py
"""

import re
import shlex
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "config" / "schema" / "config.schema.yaml"
CONFIG_README = REPO / "config" / "README.md"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), CONFIG_README]

# Pending merge: named by the docs, arriving on other branches (the Makefile's fast test tier and store
# deletion, the store folder's setting). Remove each once it exists; the test below says when.
PENDING_TARGETS = set()
PENDING_KEYS = set()

# Written by the workflow outside any rule's output: the start-up cache of the folder listing and the run's
# settings (scripts/imagecoding/invocation.py) and the manifest's cache (a param of rules/manifest.smk).
UNRULED_RESULTS = ["results/cache/"]

FILE_ENDINGS = {"csv", "def", "html", "j2", "json", "log", "md", "parquet", "py", "smk", "sqlite", "sif", "tsv",
                "txt", "xml", "yaml", "yml", "zip"}


def doc_id(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA_FILE.read_text())


# ----- reading the docs -------------------------------------------------------------------------------------

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def inline_spans(text: str) -> list[str]:
    """Inline code spans outside fenced blocks, with line breaks inside a span folded to spaces."""
    prose = FENCE.sub("", text)
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def shell_lines(text: str) -> list[str]:
    """Command lines of bash blocks (continuations joined, comments dropped) and inline spans."""
    lines = []
    for language, body in fenced_blocks(text):
        if language in ("bash", "sh", "shell", ""):
            for line in body.replace("\\\n", " ").splitlines():
                lines.append(re.split(r"(?:^|\s)#", line, maxsplit=1)[0])
    return lines + inline_spans(text)


def commands(text: str, program: str) -> list[list[str]]:
    """The arguments of every call of `program` (a bare name or a path ending in it), up to a redirect or pipe."""
    found = []
    for line in shell_lines(text):
        try:
            tokens = shlex.split(line)
        except ValueError:
            continue
        for start, token in enumerate(tokens):
            if token == program or token.endswith("/" + program):
                arguments = []
                for argument in tokens[start + 1:]:
                    if argument in (">", "|", "&&", ";", "||") or argument.startswith(">"):
                        break
                    arguments.append(argument)
                found.append(arguments)
    return found


def every_doc():
    return pytest.mark.parametrize("doc", DOCS, ids=doc_id)


# ----- what exists -------------------------------------------------------------------------------------------

def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M))
    for phony in re.findall(r"^\.PHONY:(.*)$", text, re.M):
        targets |= set(phony.split())
    return targets


def rule_files() -> list[Path]:
    return [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]


def rule_names() -> set[str]:
    names = set()
    for path in rule_files():
        text = path.read_text()
        names |= set(re.findall(r"^rule (\w+):", text, re.M))
        names |= set(re.findall(r"^use rule \w+ as (\w+)", text, re.M))
    return names


def ruled_results() -> set[str]:
    """Every results/ path the Snakefile and rules name, wildcards as *, and the schema's default folders."""
    paths = set(re.findall(r"default: (results/[\w/.-]+)", SCHEMA_FILE.read_text()))
    for path in rule_files():
        for named in re.findall(r"\"(results/[^\"]+)\"", path.read_text()):
            paths.add(re.sub(r"\{[^}]*\}", "*", named))
    return paths


def schema_node(schema: dict, key: str) -> dict | None:
    """The schema of a dotted key, through maps (additionalProperties) too; None if the schema has no such key."""
    node = schema
    for part in key.split("."):
        if part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


# ----- the checks --------------------------------------------------------------------------------------------

def test_every_test_named_in_reliability_md_exists():
    text = (REPO / "docs" / "RELIABILITY.md").read_text()
    named = 0
    for line in text.splitlines():
        current = None
        for file, function in re.findall(r"`(test_\w+\.py)?::(test_\w+)`", line):
            current = file or current
            assert current, f"'::{function}' follows no file in: {line}"
            source = (REPO / "tests" / current).read_text()
            assert re.search(rf"^def {function}\(", source, re.M), f"{current}::{function} is named but does not exist"
            named += 1
    assert named >= 30


@every_doc()
def test_make_targets_exist(doc):
    targets = make_targets()
    named = {arguments[0] for arguments in commands(doc.read_text(), "make") if arguments}
    missing = named - targets - PENDING_TARGETS
    assert not missing, f"{doc_id(doc)} names make targets the Makefile lacks: {sorted(missing)}"


@pytest.fixture(scope="module")
def snakemake_parser():
    from snakemake.cli import get_argument_parser

    return get_argument_parser()


@every_doc()
def test_snakemake_commands_parse_and_name_real_targets(doc, snakemake_parser, capsys):
    rules, outputs = rule_names(), ruled_results()
    for arguments in commands(doc.read_text(), "snakemake"):
        try:
            parsed = snakemake_parser.parse_args(arguments)
        except SystemExit:
            pytest.fail(f"{doc_id(doc)}: Snakemake does not accept `snakemake {' '.join(arguments)}`:\n"
                        f"{capsys.readouterr().err}")
        for target in parsed.targets:
            if target.startswith("results/"):
                assert any(fnmatch(target, output) for output in outputs), \
                    f"{doc_id(doc)}: `snakemake {target}`: no rule writes it"
            else:
                assert target in rules, f"{doc_id(doc)}: `snakemake {target}`: no such rule ({sorted(rules)})"
        for profile in parsed.profile or []:
            assert (REPO / profile).is_dir(), f"{doc_id(doc)}: --profile {profile} does not exist"


@every_doc()
def test_pytest_markers_exist(doc):
    markers = set(re.findall(r"^    (\w+):", (REPO / "pytest.ini").read_text(), re.M))
    for arguments in commands(doc.read_text(), "pytest"):
        if "-m" in arguments:
            expression = arguments[arguments.index("-m") + 1]
            named = set(re.findall(r"\w+", expression)) - {"and", "or", "not"}
            assert named <= markers, f"{doc_id(doc)}: pytest -m {expression!r}: no such marker in pytest.ini"


KEY = re.compile(r"(?<![\w/.-])([a-z][a-z_]*(?:\.[a-z][a-z0-9_]*)+)(?![\w/(-])")


def dotted_keys(text: str, schema: dict) -> set[str]:
    """Dotted names in inline code whose first part is a top-level key and which are no file names."""
    sections = set(schema["properties"]) | {key.split(".")[0] for key in PENDING_KEYS}
    keys = set()
    for span in inline_spans(text):
        for key in KEY.findall(span):
            parts = key.split(".")
            if parts[0] in sections and parts[-1] not in FILE_ENDINGS:
                keys.add(key)
    return keys


@every_doc()
def test_config_keys_exist(doc, schema):
    keys = dotted_keys(doc.read_text(), schema)
    missing = {key for key in keys if schema_node(schema, key) is None} - PENDING_KEYS
    assert not missing, f"{doc_id(doc)} names config keys the schema lacks: {sorted(missing)}"


@every_doc()
def test_yaml_examples_are_valid_configuration(doc, schema):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    for language, body in fenced_blocks(doc.read_text()):
        if language not in ("yaml", "yml"):
            continue
        example = yaml.safe_load(body)
        pending = {key.split(".")[0] for key in PENDING_KEYS} - set(schema["properties"])
        if not isinstance(example, dict) or not set(example) <= set(schema["properties"]) | pending:
            continue  # not a configuration fragment (a profile, say)
        example = {key: value for key, value in example.items() if key not in pending}
        example.setdefault("images", {}).setdefault("root", "images")
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example)]
        assert not errors, f"{doc_id(doc)}: a YAML example the schema refuses:\n{body}\n" + "\n".join(errors)


RESULT = re.compile(r"results/[\w<>{}.*/-]*")


def results_paths(text: str) -> set[str]:
    return {path.rstrip(".").rstrip("/") for path in RESULT.findall(text) if path.rstrip("./")}


@every_doc()
def test_results_paths_are_written_by_the_rules(doc):
    outputs = ruled_results()
    unknown = []
    for path in results_paths(doc.read_text()):
        pattern = re.sub(r"<[^>]*>|\{[^}]*\}", "*", path)
        known = (
            any(fnmatch(output, pattern) or fnmatch(pattern, output) for output in outputs)
            or any(pattern.startswith(output + "/") for output in outputs)  # inside a directory output
            or any(output.startswith(pattern + "/") for output in outputs)  # a folder of outputs
            or any(pattern.startswith(folder) for folder in UNRULED_RESULTS)
        )
        if not known:
            unknown.append(path)
    assert not unknown, f"{doc_id(doc)} names results/ paths no rule writes: {sorted(unknown)}"


def test_the_results_written_outside_rules_are_still_written_there():
    assert 'Path("results/cache")' in (REPO / "scripts" / "imagecoding" / "invocation.py").read_text()
    assert "results/cache/" in (REPO / "rules" / "manifest.smk").read_text()


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@every_doc()
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (doc.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{doc_id(doc)} links to files that do not exist: {broken}"


def test_every_doc_is_linked_from_the_readme():
    readme = (REPO / "README.md").read_text()
    linked = {(REPO / target.split("#")[0]).resolve() for target in LINK.findall(readme)}
    unlinked = [doc_id(doc) for doc in DOCS[1:] if doc.resolve() not in linked]
    assert not unlinked, f"README.md links none of: {unlinked}"


def test_the_readme_stays_a_five_minute_read():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to docs/"


def test_pending_names_are_still_pending(schema):
    """Once the lead merges the branches that add them, these names leave the allow-lists above."""
    arrived = (PENDING_TARGETS & make_targets()) | {key for key in PENDING_KEYS if schema_node(schema, key)}
    if arrived:
        pytest.skip(f"arrived, remove from the PENDING lists in tests/test_docs.py: {sorted(arrived)}")


# ----- config/README.md's key tables, generated from the schema --------------------------------------------

BEGIN = "<!-- keys: generated from schema/config.schema.yaml by tests/test_docs.py; edit the schema, not this -->"
END = "<!-- end of keys -->"
ROW = re.compile(r"^\| `([^`]+)` \| .* \| (.*) \|$")


def type_of(node: dict) -> str:
    if "enum" in node:
        return " or ".join("`null`" if value is None else f"`{value}`" for value in node["enum"])
    if "anyOf" in node:
        return " or ".join(type_of(option) for option in node["anyOf"])
    kinds = node.get("type", "object")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    names = []
    for kind in kinds:
        if kind == "array":
            items = node.get("items", {})
            names.append(f"list of {type_of(items)}" if items else "list")
        elif kind == "object":
            names.append("map" if "additionalProperties" in node and "properties" not in node else "object")
        else:
            names.append(kind)
    return " or ".join(names)


def default_of(node: dict) -> str:
    if "default" not in node:
        return "required"
    text = yaml.safe_dump(node["default"], default_flow_style=True, width=10**6, sort_keys=False, allow_unicode=True)
    return "`" + text.strip().removesuffix("...").strip() + "`"


def leaves(node: dict, prefix: str):
    for name, child in node.get("properties", {}).items():
        key = prefix + name
        if "properties" in child:
            yield from leaves(child, key + ".")
        else:
            yield key, child


def config_reference(schema: dict, current: str) -> str:
    """The generated block: a table per top-level section. Keys the schema leaves undescribed keep the
    meaning written in `current`; describe them in the schema and it takes their place."""
    kept = {}
    for line in current.splitlines():
        match = ROW.match(line)
        if match:
            kept[match.group(1)] = match.group(2)
    out = [BEGIN]
    for section, node in schema["properties"].items():
        out += ["", f"### `{section}`", ""]
        if node.get("description"):
            out += [node["description"][0].upper() + node["description"][1:] + ".", ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        rows = list(leaves(node, section + ".")) if "properties" in node else [(section, node)]
        for key, child in rows:
            meaning = child.get("description") or kept.get(key, "")
            cells = [type_of(child), default_of(child), meaning.replace("\n", " ")]
            out.append(f"| `{key}` | " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(out + ["", END])


def current_block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def test_config_readme_lists_every_key_as_the_schema_defines_it(schema):
    text = CONFIG_README.read_text()
    assert BEGIN in text and END in text, "config/README.md lost its generated-keys markers"
    block = current_block(text)
    expected = config_reference(schema, block)
    assert block == expected, ("config/README.md's key tables differ from the schema: run "
                               "`.venv/bin/python tests/test_docs.py` to rewrite them")
    undescribed = [match.group(1) for line in block.splitlines() if (match := ROW.match(line)) and not match.group(2).strip()]
    assert not undescribed, f"describe these keys in the schema (or in config/README.md's table): {undescribed}"


def write_config_reference() -> None:
    schema = yaml.safe_load(SCHEMA_FILE.read_text())
    text = CONFIG_README.read_text()
    if BEGIN not in text:
        text = text.rstrip() + "\n\n" + BEGIN + "\n" + END + "\n"
    block = current_block(text)
    CONFIG_README.write_text(text.replace(block, config_reference(schema, block)))
    print(f"rewrote the key tables of {doc_id(CONFIG_README)}")


if __name__ == "__main__":
    sys.exit(write_config_reference())
