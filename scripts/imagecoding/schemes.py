"""Classification schemes: YAML files mapping each category to the phrases that describe it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


class SchemeError(ValueError):
    """A scheme file that cannot be used; the message names the file, the category and the fix."""


@dataclass(frozen=True)
class Scheme:
    name: str
    categories: tuple[str, ...]
    phrases: tuple[str, ...]
    # phrase_category[i] is the index into `categories` of phrase i
    phrase_category: tuple[int, ...]

    def phrases_of(self, category: str) -> list[str]:
        index = self.categories.index(category)
        return [p for p, c in zip(self.phrases, self.phrase_category) if c == index]


def scheme_from_mapping(name: str, mapping: object, source: str = "<scheme>") -> Scheme:
    if not isinstance(mapping, dict) or not mapping:
        raise SchemeError(
            f"{source}: a scheme must map each category name to a list of phrases, e.g.\n"
            "  Portrait:\n    - a close-up photo of one person's face\n"
        )
    categories, phrases, owners = [], [], []
    seen: dict[str, str] = {}
    for category, category_phrases in mapping.items():
        category = str(category)
        if isinstance(category_phrases, str):
            category_phrases = [category_phrases]
        if not isinstance(category_phrases, list) or not category_phrases:
            raise SchemeError(f"{source}: category '{category}' needs a non-empty list of phrases.")
        categories.append(category)
        for phrase in category_phrases:
            if not isinstance(phrase, str) or not phrase.strip():
                raise SchemeError(f"{source}: category '{category}' has an empty or non-text phrase: {phrase!r}.")
            phrase = phrase.strip()
            if phrase in seen:
                raise SchemeError(
                    f"{source}: the phrase '{phrase}' appears under both '{seen[phrase]}' and "
                    f"'{category}'; a phrase must describe one category only."
                )
            seen[phrase] = category
            phrases.append(phrase)
            owners.append(len(categories) - 1)
    if len(categories) < 2:
        raise SchemeError(f"{source}: a scheme needs at least two categories to choose between.")
    return Scheme(name, tuple(categories), tuple(phrases), tuple(owners))


def read_yaml(path: str | Path, key: str, error: type[ValueError]):
    """A researcher-edited YAML file; a missing file or a syntax error names the config key that points to it."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{key}: no file at '{path}'.") from None
    except yaml.YAMLError as exc:
        raise error(f"{key}: '{path}' is not valid YAML: {exc}") from None


def load_scheme(name: str, path: str | Path) -> Scheme:
    mapping = read_yaml(path, f"clip.schemes.{name}", SchemeError)
    return scheme_from_mapping(name, mapping, source=str(path))
