"""Model URIs: which model a caller means, parsed once into a `ModelURI` value.

Accepted spellings: `name@alias`, `name/3`, `models:/name@alias`, `models:/name/3`
and `runs:/<run id>/<model>` (a model logged in a run). `str()` gives the one
canonical form (`name@alias`, `name/3`, `runs:/<run id>/<model>`), which parses
back to the same value. Registered names and aliases follow the registry's rules,
which live here so the value and the registry cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from litemlops.errors import ValidationError
from litemlops.store.tracking.tracking_types import check_key

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_RESERVED = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
# 18 digits at most: every such number fits the registry's 64-bit version column.
_VERSION = re.compile(r"[0-9]{1,18}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
#: What a bare `name` means where a service names its model: its champion.
DEFAULT_ALIAS = "champion"
FORMS = (
    "'name@alias', 'name/3', 'models:/name@alias', 'models:/name/3' or "
    "'runs:/<run_id>/<model name>'"
)


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise ValidationError(
            f"invalid model name {name!r}: letters, digits, '_', '.', '-', starting with a "
            "letter or digit, at most 128 characters"
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or _RESERVED.fullmatch(alias):
        raise ValidationError(
            f"invalid alias {alias!r}: a letter then letters, digits, '_' or '-' (at most 64); "
            "'latest' and 'v<number>' are reserved"
        )
    return alias


@dataclass(frozen=True)
class ModelURI:
    """A registered model by alias or version, or a model logged in a run.

    name: the registered model's name, or the logged model's name in its run.
    Exactly one of `alias`, `version` and `run_id` is set.
    """

    name: str
    alias: str | None = None
    version: int | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        if sum(part is not None for part in (self.alias, self.version, self.run_id)) != 1:
            raise ValidationError(
                f"a model URI names exactly one of alias, version and run_id, got {self!r}"
            )
        if self.run_id is not None:
            if not isinstance(self.run_id, str) or not _RUN_ID.fullmatch(self.run_id):
                raise ValidationError(f"run id {self.run_id!r} is not 32 hex characters")
            check_key(self.name, "logged model")
            return
        check_model_name(self.name)
        if self.alias is not None:
            check_alias(self.alias)
        elif (
            isinstance(self.version, bool)
            or not isinstance(self.version, int)
            or not 0 < self.version < 2**63
        ):
            raise ValidationError(f"model version must be a number from 1, got {self.version!r}")

    @classmethod
    def parse(cls, text: object, *, default_alias: str | None = None) -> ModelURI:
        """The model `text` names, in any accepted spelling.

        default_alias: what a bare `name` means (`name@<default_alias>`); without it a
        bare name is refused.
        """
        forms = FORMS if default_alias is None else f"'name' (name@{default_alias}), {FORMS}"
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(f"model URI must be one of {forms}, got {text!r}")
        if text.startswith("runs:/"):
            return cls._parse_run(text)
        if text.startswith("models:/"):
            ref = text.removeprefix("models:/")
        elif scheme := _SCHEME.match(text):
            raise ValidationError(
                f"model URI {text!r} has an unknown scheme {scheme.group(1)!r}: use {forms}"
            )
        else:
            ref = text
        name, at, alias = ref.partition("@")
        if at:
            return cls._part(text, forms, name, alias=alias)
        name, slash, number = ref.rpartition("/")
        if slash:
            if not _VERSION.fullmatch(number) or int(number) == 0:
                raise ValidationError(
                    f"model version in {text!r} must be a number from 1, got {number!r}; "
                    f"use {forms}"
                )
            return cls._part(text, forms, name, version=int(number))
        if default_alias is not None and ref == text:
            return cls._part(text, forms, text, alias=default_alias)
        raise ValidationError(f"cannot read model URI {text!r}: use {forms}")

    @classmethod
    def _parse_run(cls, text: str) -> ModelURI:
        run_id, slash, name = text.removeprefix("runs:/").partition("/")
        if not slash or not _RUN_ID.fullmatch(run_id):
            raise ValidationError(
                f"model URI {text!r} is not 'runs:/<run_id>/<model name>' (32 hex "
                "characters, '/', then the model's name in its run)"
            )
        try:
            return cls(name=name, run_id=run_id)
        except ValidationError as exc:
            raise ValidationError(
                f"model URI {text!r} is not 'runs:/<run_id>/<model name>': {exc}"
            ) from None

    @classmethod
    def _part(
        cls, text: str, forms: str, name: str, alias: str | None = None, version: int | None = None
    ) -> ModelURI:
        try:
            return cls(name, alias=alias, version=version)
        except ValidationError as exc:
            raise ValidationError(f"cannot read model URI {text!r}: {exc}; use {forms}") from None

    @property
    def by_alias(self) -> bool:
        return self.alias is not None

    @property
    def by_version(self) -> bool:
        return self.version is not None

    @property
    def from_run(self) -> bool:
        return self.run_id is not None

    def at_version(self, version: int) -> ModelURI:
        """The same registered model at `version` (what an alias names now)."""
        if self.from_run:
            raise ValidationError(f"{self} is a model logged in a run, not a registered model")
        return ModelURI(self.name, version=version)

    def __str__(self) -> str:
        if self.run_id is not None:
            return f"runs:/{self.run_id}/{self.name}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{self.version}"
