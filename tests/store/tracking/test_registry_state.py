"""The registry against a plain model of what it should hold: hypothesis drives creations,
registrations (of new and known names, of bytes a version already holds, with and without
`allow_duplicate`, from failed and unfinished runs) and sets, deletes and rollbacks of
aliases, on several models; after each step every listing (the models, their latest
version and aliases, each model's versions with the aliases on them, each alias's
history) must agree with the model, and each refused call must raise the documented error."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from depth import examples
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)
from test_registry import log_bytes

from litemlops.errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryStateError,
    ValidationError,
)
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.tracker import Tracker

NAMES = ("a", "b")
ALIASES = ("champion", "challenger")
BAD_ALIASES = ("latest", "V2", "2nd")
BAD_NAMES = ("../evil", "", "-a")
MAX_VERSION = 4  # versions asked for run past those registered, to reach the missing ones
# The models the template's runs logged: finished runs, two pairs of them with the same
# bytes, then a run still running and a failed one.
FINISHED = (0, 1, 2, 0, 1)
RUNNING, FAILED = 2, 3
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Logged:
    """A model logged in a template's run: what registering its URI should give."""

    uri: str
    run_id: str
    sha256: str
    content: dict[str, int]
    status: str


@dataclass(frozen=True)
class Version:
    run_id: str
    sha256: str
    description: str
    created: datetime


@dataclass
class Expected:
    """What the registry should hold for one registered model."""

    description: str
    tags: dict[str, str]
    created: datetime
    updated: datetime
    versions: list[Version] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)


_template: list[tuple[Path, list[Logged]]] = []


def template() -> tuple[Path, list[Logged]]:
    """A home whose runs logged the models of FINISHED, RUNNING and FAILED, and an empty
    registry (built once; each machine works on a copy)."""
    if not _template:
        home = Path(tempfile.mkdtemp(prefix="registry-state-"))
        atexit.register(shutil.rmtree, home, True)
        pool = []
        with Tracker(home / "registry.db", code_dir=home) as tracker:
            for content in FINISHED:
                info = log_bytes(tracker, {"w": content})
                pool.append(Logged(info.uri, info.run_id, info.sha256, {"w": content}, "finished"))
            for content, status in ((RUNNING, "running"), (FAILED, "failed")):
                run = tracker.start_run("driver")
                info = run.log_model({"w": content}, "model")
                if status == "failed":
                    run.end("failed", error="diverged")
                pool.append(Logged(info.uri, run.id, info.sha256, {"w": content}, status))
        _template.append((home, pool))
    return _template[0]


# An alias's move as its history should show it: action, to_version, reason.
Move = tuple[str, int | None, str]


def rollback_stack(moves: list[Move]) -> list[int | None]:
    """The versions a rollback walks back through after `moves`, as the registry documents
    it: a set or a delete pushes, a rollback pops."""
    stack: list[int | None] = []
    for action, version, _ in moves:
        if action != "rollback":
            stack.append(version)
        elif stack:
            stack.pop()
    return stack


def missing_model(name: str) -> pytest.RaisesExc[ModelNotFoundError]:
    return pytest.raises(ModelNotFoundError, match=f"^no registered model named '{name}'$")


class Registry(RuleBasedStateMachine):
    versions = Bundle("versions")  # (name, version) that registering gave

    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix="registry-state-"))
        base, self.pool = template()
        shutil.copytree(base, self.home, dirs_exist_ok=True)
        self.now = T0  # a step's writes all happen at one instant, a second after the last
        self.tracker = Tracker(
            self.home / "registry.db", code_dir=self.home, clock=lambda: self.now
        )
        self.registry = ModelRegistry(self.tracker)
        self.models: dict[str, Expected] = {}
        self.moves: dict[str, list[tuple[str, Move]]] = {}  # a model's (alias, move), in order

    def teardown(self) -> None:
        self.tracker.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def tick(self) -> None:
        self.now += timedelta(seconds=1)

    def alias_moves(self, name: str, alias: str) -> list[Move]:
        return [move for moved, move in self.moves.get(name, []) if moved == alias]

    # -- models and versions ----------------------------------------------------------------

    @initialize(target=versions, steps=st.lists(
        st.tuples(st.sampled_from(NAMES), st.integers(0, len(FINISHED) - 1), st.booleans()),
        max_size=4))  # fmt: skip
    def seed(self, steps: list[tuple[str, int, bool]]) -> MultipleResults[tuple[str, int]]:
        """Register a few finished runs' models first, so aliases have versions to move
        between in most runs of the machine, however few registrations its rules draw."""
        held = [self.register(name, entry, dup, False, "") for name, entry, dup in steps]
        return multiple(*(version for results in held for version in results.values))

    @rule(name=st.sampled_from(NAMES), description=st.sampled_from(("", "ranks drivers")),
          tags=st.sampled_from(({}, {"team": "pricing"})))  # fmt: skip
    def create(self, name: str, description: str, tags: dict[str, str]) -> None:
        self.tick()
        created = self.registry.create_registered_model(name, description, tags)
        model = self.models.setdefault(name, Expected(description, tags, self.now, self.now))
        assert (created.description, created.tags) == (model.description, model.tags)

    @rule(target=versions, name=st.sampled_from(NAMES), entry=st.integers(0, len(FINISHED) + 1),
          duplicate=st.booleans(), unfinished=st.booleans(),
          description=st.sampled_from(("", "retrained")))  # fmt: skip
    def register(
        self, name: str, entry: int, duplicate: bool, unfinished: bool, description: str
    ) -> MultipleResults[tuple[str, int]]:
        """Registers, or refuses the model of a failed or (without the flag) running run; the
        version it gives goes to `versions`, for aliases to be set on."""
        self.tick()
        logged = self.pool[entry]
        call = partial(self.registry.register_model, logged.uri, name, description,
                       allow_unfinished=unfinished, allow_duplicate=duplicate)  # fmt: skip
        if logged.status == "failed":
            with pytest.raises(RegistryStateError, match=f"run {logged.run_id} failed"):
                call()
            return multiple()
        if logged.status == "running" and not unfinished:
            with pytest.raises(RegistryStateError, match=f"run {logged.run_id} is still running"):
                call()
            return multiple()
        model = self.models.setdefault(name, Expected("", {}, self.now, self.now))
        held = [n for n, v in enumerate(model.versions, 1) if v.sha256 == logged.sha256]
        if held and not duplicate:
            expected = held[-1]  # the version holding these bytes (the newest, if several)
        else:
            model.versions.append(Version(logged.run_id, logged.sha256, description, self.now))
            model.updated = self.now
            expected = len(model.versions)
        got = call()
        assert got == self.registry.get_model_version(name, expected)
        assert got.sha256 == logged.sha256
        return multiple((name, expected))

    @rule(name=st.sampled_from(BAD_NAMES))
    def refuse_bad_name(self, name: str) -> None:
        with pytest.raises(ValidationError, match="invalid model name"):
            self.registry.register_model(self.pool[0].uri, name)
        with pytest.raises(ValidationError, match="invalid model name"):
            self.registry.create_registered_model(name)

    # -- aliases ------------------------------------------------------------------------

    @rule(alias=st.sampled_from(ALIASES), held=versions)
    def set_alias(self, alias: str, held: tuple[str, int]) -> None:
        self.move(held[0], alias, held[1])

    @rule(name=st.sampled_from(NAMES), alias=st.sampled_from(ALIASES + BAD_ALIASES),
          version=st.integers(1, MAX_VERSION))  # fmt: skip
    def set_any_alias(self, name: str, alias: str, version: int) -> None:
        """Mostly refused: a bad alias, a model or version not registered (yet)."""
        self.move(name, alias, version)

    def move(self, name: str, alias: str, version: int) -> None:
        self.tick()
        call = partial(self.registry.set_alias, name, alias, version, reason="test")
        if alias in BAD_ALIASES:
            with pytest.raises(ValidationError, match=f"invalid alias '{alias}'"):
                call()
        elif name not in self.models:
            with missing_model(name):
                call()
        elif version > len(self.models[name].versions):
            with pytest.raises(
                ModelVersionNotFoundError, match=f"'{name}' has no version {version}$"
            ):
                call()
        else:
            assert alias in call().aliases
            if self.models[name].aliases.get(alias) != version:  # the same version is no move
                self.moves.setdefault(name, []).append((alias, ("set", version, "test")))
            self.models[name].aliases[alias] = version

    @rule(name=st.sampled_from(NAMES), alias=st.sampled_from(ALIASES))
    def delete_alias(self, name: str, alias: str) -> None:
        self.tick()
        if name not in self.models:
            with missing_model(name):
                self.registry.delete_alias(name, alias)
        elif alias not in self.models[name].aliases:
            with pytest.raises(AliasNotFoundError, match=f"has no alias '{alias}'"):
                self.registry.delete_alias(name, alias)
        else:
            self.registry.delete_alias(name, alias)
            del self.models[name].aliases[alias]
            self.moves.setdefault(name, []).append((alias, ("delete", None, "deleted")))

    @rule(name=st.sampled_from(NAMES), alias=st.sampled_from(ALIASES))
    def rollback(self, name: str, alias: str) -> None:
        self.tick()
        moves = self.alias_moves(name, alias)
        stack = rollback_stack(moves)
        if name not in self.models:
            with missing_model(name):
                self.registry.rollback(name, alias)
        elif not moves:
            with pytest.raises(AliasNotFoundError, match=f"never had an alias '{alias}'"):
                self.registry.rollback(name, alias)
        elif len(stack) < 2 or stack[-2] is None:
            with pytest.raises(RegistryStateError, match="no earlier version to roll back to"):
                self.registry.rollback(name, alias)
        else:
            target = stack[-2]
            assert self.registry.rollback(name, alias).version == target
            move = ("rollback", target, f"rollback from version {stack[-1]}")
            self.moves[name].append((alias, move))
            self.models[name].aliases[alias] = target

    # -- what the listings must say ---------------------------------------------------------

    @invariant()
    def models_agree(self) -> None:
        listed = self.registry.list_registered_models()
        assert [m.name for m in listed] == sorted(self.models)
        for got in listed:
            model = self.models[got.name]
            assert (got.description, got.tags, got.created_at, got.updated_at) == (
                model.description, model.tags, model.created, model.updated
            )  # fmt: skip
            assert (got.latest_version, got.aliases) == (len(model.versions) or None, model.aliases)
            assert self.registry.get_registered_model(got.name) == got
        for name in set(NAMES) - set(self.models):
            for call in (self.registry.get_registered_model, self.registry.list_versions,
                         partial(self.registry.get_model_version, version=1)):  # fmt: skip
                with missing_model(name):
                    call(name)

    @invariant()
    def versions_agree(self) -> None:
        for name, model in self.models.items():
            listed = self.registry.list_versions(name)
            assert [(v.version, v.run_id, v.sha256, v.description, v.created_at, v.aliases)
                    for v in listed] == [
                (n, v.run_id, v.sha256, v.description, v.created,
                 tuple(sorted(a for a, at in model.aliases.items() if at == n)))
                for n, v in reversed(list(enumerate(model.versions, 1)))
            ]  # fmt: skip
            for version in listed:
                lineage = version.lineage
                assert (lineage["run_id"], lineage["model"]["sha256"]) == (
                    version.run_id, version.sha256
                )  # fmt: skip
                assert self.registry.get_model_version(name, version.version) == version
            beyond = len(model.versions) + 1
            with pytest.raises(ModelVersionNotFoundError, match=f"has no version {beyond}$"):
                self.registry.get_model_version(name, beyond)

    @invariant()
    def aliases_agree(self) -> None:
        """Each alias names its version, and loading through it gives that version's model."""
        contents = {logged.sha256: logged.content for logged in self.pool}
        for name, model in self.models.items():
            for alias in ALIASES:
                if alias not in model.aliases:
                    with pytest.raises(AliasNotFoundError, match=f"has no alias '{alias}'"):
                        self.registry.get_alias(name, alias)
                    continue
                version = model.aliases[alias]
                assert self.registry.get_alias(name, alias).version == version
                sha256 = model.versions[version - 1].sha256
                assert self.registry.load_model(f"{name}@{alias}").model == contents[sha256]

    @invariant()
    def history_is_every_move(self) -> None:
        """A model's history lists every move of its aliases in order; an alias's history,
        its own, each move starting where the one before it ended."""
        for name in self.models:
            changes = self.registry.alias_history(name)
            moves = self.moves.get(name, [])
            assert [(c.alias, (c.action, c.to_version, c.reason)) for c in changes] == moves
            for alias in ALIASES:
                moves_of = self.alias_moves(name, alias)
                if not moves_of:
                    with pytest.raises(AliasNotFoundError, match=f"never had an alias '{alias}'"):
                        self.registry.alias_history(name, alias)
                    continue
                changes = self.registry.alias_history(name, alias)
                assert [(c.action, c.to_version, c.reason) for c in changes] == moves_of
                froms = [None, *(to for _, to, _ in moves_of[:-1])]
                assert [c.from_version for c in changes] == froms


TestRegistry = pytest.mark.slow(Registry.TestCase)
TestRegistry.settings = settings(max_examples=examples(50), stateful_step_count=30,
                                 deadline=None)  # fmt: skip
