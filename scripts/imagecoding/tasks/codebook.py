"""Codebooks for LLM tasks: variables grouped as the researcher likes, their JSON schema, and answer checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..schemes import read_yaml

TYPES = ("categorical", "boolean", "integer", "string")


class CodebookError(ValueError):
    """A codebook that cannot be used; the message names the file, the variable and the fix."""


@dataclass(frozen=True)
class Variable:
    group: str
    name: str
    type: str
    description: str = ""
    values: dict[str, str] = field(default_factory=dict)
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def column(self) -> str:
        return f"{self.group}_{self.name}"

    @property
    def type_label(self) -> str:
        if self.type == "categorical":
            return "one of the values below"
        if self.type == "boolean":
            return "true or false"
        if self.type == "integer":
            low = "" if self.minimum is None else f" from {self.minimum}"
            high = "" if self.maximum is None else f" to {self.maximum}"
            return f"whole number{low}{high}"
        return "text" + (f", at most {self.max_length} characters" if self.max_length else "")

    def schema(self) -> dict:
        """JSON schema of this variable, limited to keywords strict structured outputs accept."""
        described = {"description": self.description} if self.description else {}
        if self.type == "categorical":
            return {"type": "string", "enum": list(self.values), **described}
        return {"type": self.type if self.type != "string" else "string", **described}

    def check(self, value) -> str | None:
        """Why a value does not fit this variable, or None when it does. Nothing is coerced."""
        if self.type == "categorical":
            if not isinstance(value, str) or value not in self.values:
                return f"{self.column}: {value!r} is not one of {', '.join(self.values)}"
        elif self.type == "boolean":
            if not isinstance(value, bool):
                return f"{self.column}: {value!r} is not true or false"
        elif self.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{self.column}: {value!r} is not a whole number"
            if self.minimum is not None and value < self.minimum:
                return f"{self.column}: {value} is below the minimum {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"{self.column}: {value} is above the maximum {self.maximum}"
        elif self.type == "string":
            if not isinstance(value, str):
                return f"{self.column}: {value!r} is not text"
            if self.max_length is not None and len(value) > self.max_length:
                return f"{self.column}: the text is longer than {self.max_length} characters"
        return None


@dataclass(frozen=True)
class Group:
    name: str
    variables: tuple[Variable, ...]


@dataclass(frozen=True)
class Codebook:
    name: str
    groups: tuple[Group, ...]
    instructions: str = ""

    @property
    def variables(self) -> list[Variable]:
        return [variable for group in self.groups for variable in group.variables]

    @property
    def columns(self) -> list[str]:
        return [variable.column for variable in self.variables]

    @property
    def dtypes(self) -> dict[str, str]:
        """Nullable pandas types, so an invalid (missing) value does not turn integers into floats."""
        kinds = {"integer": "Int64", "boolean": "boolean"}
        return {v.column: kinds[v.type] for v in self.variables if v.type in kinds}

    def json_schema(self) -> dict:
        """The answer's schema: an object per group with every variable required, nothing else allowed."""
        properties = {}
        for group in self.groups:
            properties[group.name] = {
                "type": "object",
                "properties": {v.name: v.schema() for v in group.variables},
                "required": [v.name for v in group.variables],
                "additionalProperties": False,
            }
        return {
            "type": "object",
            "properties": properties,
            "required": [g.name for g in self.groups],
            "additionalProperties": False,
        }

    def check_answer(self, answer) -> tuple[dict, list[str]]:
        """The codes as flat `Group_Variable` columns (None where invalid) and every problem found."""
        codes = {column: None for column in self.columns}
        if not isinstance(answer, dict):
            return codes, [f"the answer is a JSON {type(answer).__name__}, not an object"]
        problems = []
        known_groups = {g.name for g in self.groups}
        problems += [f"unexpected group '{key}'" for key in answer if key not in known_groups]
        for group in self.groups:
            part = answer.get(group.name)
            if not isinstance(part, dict):
                problems.append(f"group '{group.name}' is missing" if part is None else f"'{group.name}' is not an object")
                continue
            known = {v.name for v in group.variables}
            problems += [f"unexpected key '{group.name}.{key}'" for key in part if key not in known]
            for variable in group.variables:
                if variable.name not in part:
                    problems.append(f"{variable.column}: missing")
                    continue
                problem = variable.check(part[variable.name])
                if problem:
                    problems.append(problem)
                else:
                    codes[variable.column] = part[variable.name]
        return codes, problems

    def example_images(self) -> list[tuple[Variable, str, str]]:
        """(variable, value, image path) for every few-shot example."""
        return [(v, value, path) for v in self.variables for value, paths in v.examples.items() for path in paths]


def _variable(group: str, entry: dict, source: str) -> Variable:
    if not isinstance(entry, dict) or "variable" not in entry:
        raise CodebookError(f"{source}: every entry of group '{group}' needs 'variable:' and 'type:'.")
    name = str(entry["variable"])
    where = f"{source}: {group}.{name}"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", group):
        raise CodebookError(f"{where}: group and variable names must be letters and digits (they become columns).")
    kind = entry.get("type")
    if kind not in TYPES:
        raise CodebookError(f"{where}: type must be one of {', '.join(TYPES)}, not {kind!r}.")
    values = entry.get("values") or {}
    if isinstance(values, list):
        values = {str(v): "" for v in values}
    values = {str(k): (v or "") for k, v in values.items()}
    if kind == "categorical" and len(values) < 2:
        raise CodebookError(f"{where}: a categorical variable needs at least two values.")
    if kind != "categorical" and values:
        raise CodebookError(f"{where}: only categorical variables take values.")
    examples = entry.get("examples") or {}
    for value, paths in examples.items():
        if kind == "categorical" and str(value) not in values:
            raise CodebookError(f"{where}: example for '{value}', which is not one of its values.")
        for path in paths if isinstance(paths, list) else [paths]:
            if not Path(path).is_file():
                raise CodebookError(f"{where}: example image '{path}' does not exist.")
    return Variable(
        group=group,
        name=name,
        type=kind,
        description=str(entry.get("description", "")).strip(),
        values=values,
        minimum=entry.get("minimum"),
        maximum=entry.get("maximum"),
        max_length=entry.get("max_length"),
        examples={str(k): (v if isinstance(v, list) else [v]) for k, v in examples.items()},
    )


def codebook_from_mapping(mapping: dict, source: str = "<codebook>") -> Codebook:
    if not isinstance(mapping, dict) or not isinstance(mapping.get("groups"), dict) or not mapping["groups"]:
        raise CodebookError(f"{source}: a codebook needs 'groups:', each a list of variables.")
    groups = []
    for group_name, entries in mapping["groups"].items():
        if not isinstance(entries, list) or not entries:
            raise CodebookError(f"{source}: group '{group_name}' needs a list of variables.")
        variables = tuple(_variable(str(group_name), entry, source) for entry in entries)
        names = [v.name for v in variables]
        if len(set(names)) != len(names):
            raise CodebookError(f"{source}: group '{group_name}' names a variable twice.")
        groups.append(Group(str(group_name), variables))
    return Codebook(str(mapping.get("name", Path(source).stem)), tuple(groups), str(mapping.get("instructions", "")).strip())


def load_codebook(path: str | Path) -> Codebook:
    return codebook_from_mapping(read_yaml(path, "frames.codebook", CodebookError), str(path))
