"""The registry's aliases against a plain model of what they should be: hypothesis drives
sets, deletes and rollbacks of several aliases on several models, and after each step
every alias, every version's alias list and each alias's history must agree with a dict
and a list per (model, alias)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from depth import examples
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from test_registry import train

from litemlops.errors import AliasNotFoundError, RegistryStateError
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.tracker import Tracker

MODELS = ("a", "b")
ALIASES = ("champion", "challenger", "shadow")
VERSIONS = 3
_template: list[Path] = []


def template() -> Path:
    """A home whose registry holds MODELS with VERSIONS versions each and no alias (built
    once; each machine works on a copy)."""
    if not _template:
        home = Path(tempfile.mkdtemp(prefix="registry-state-"))
        atexit.register(shutil.rmtree, home, True)
        with Tracker(home / "registry.db", code_dir=home) as tracker:
            registry = ModelRegistry(tracker)
            for name in MODELS:
                for _ in range(VERSIONS):
                    _, info, _, _ = train(tracker)
                    registry.register_model(info.uri, name, allow_duplicate=True)
        _template.append(home)
    return _template[0]


def rollback_stack(moves: list[tuple[str, int | None]]) -> list[int | None]:
    """The versions a rollback walks back through after `moves` (action, to_version), as
    the registry documents it: a set or a delete pushes, a rollback pops."""
    stack: list[int | None] = []
    for action, version in moves:
        if action != "rollback":
            stack.append(version)
        elif stack:
            stack.pop()
    return stack


class Aliases(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix="registry-state-"))
        shutil.copytree(template(), self.home, dirs_exist_ok=True)
        self.tracker = Tracker(
            self.home / "registry.db", code_dir=self.home, clock=lambda: datetime.now(UTC)
        )
        self.registry = ModelRegistry(self.tracker)
        self.aliases: dict[str, dict[str, int]] = {name: {} for name in MODELS}
        self.moves: dict[tuple[str, str], list[tuple[str, int | None]]] = {}

    def teardown(self) -> None:
        self.tracker.close()
        shutil.rmtree(self.home, ignore_errors=True)

    @rule(name=st.sampled_from(MODELS), alias=st.sampled_from(ALIASES),
          version=st.integers(1, VERSIONS))  # fmt: skip
    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.registry.set_alias(name, alias, version, reason="test")
        if self.aliases[name].get(alias) != version:  # a set to the same version is no move
            self.moves.setdefault((name, alias), []).append(("set", version))
        self.aliases[name][alias] = version

    @rule(name=st.sampled_from(MODELS), alias=st.sampled_from(ALIASES))
    def delete_alias(self, name: str, alias: str) -> None:
        if alias not in self.aliases[name]:
            with pytest.raises(AliasNotFoundError, match=f"has no alias '{alias}'"):
                self.registry.delete_alias(name, alias)
            return
        self.registry.delete_alias(name, alias)
        del self.aliases[name][alias]
        self.moves.setdefault((name, alias), []).append(("delete", None))

    @rule(name=st.sampled_from(MODELS), alias=st.sampled_from(ALIASES))
    def rollback(self, name: str, alias: str) -> None:
        moves = self.moves.get((name, alias), [])
        stack = rollback_stack(moves)
        if not moves:
            with pytest.raises(AliasNotFoundError, match=f"never had an alias '{alias}'"):
                self.registry.rollback(name, alias)
        elif not stack:
            with pytest.raises(AliasNotFoundError, match=f"has no alias '{alias}'"):
                self.registry.rollback(name, alias)
        elif len(stack) < 2 or stack[-2] is None:
            with pytest.raises(RegistryStateError, match="no earlier version to roll back to"):
                self.registry.rollback(name, alias)
        else:
            target = stack[-2]
            assert self.registry.rollback(name, alias).version == target
            moves.append(("rollback", target))
            self.aliases[name][alias] = target

    @invariant()
    def aliases_agree(self) -> None:
        for name in MODELS:
            assert self.registry.get_registered_model(name).aliases == self.aliases[name]
            for alias in ALIASES:
                if alias in self.aliases[name]:
                    version = self.registry.get_alias(name, alias).version
                    assert version == self.aliases[name][alias]
                else:
                    with pytest.raises(AliasNotFoundError, match="has no alias"):
                        self.registry.get_alias(name, alias)
            held = {v.version: set(v.aliases) for v in self.registry.list_versions(name)}
            assert held == {
                v: {a for a, at in self.aliases[name].items() if at == v}
                for v in range(1, VERSIONS + 1)
            }

    @invariant()
    def history_is_every_move(self) -> None:
        for (name, alias), moves in self.moves.items():
            changes = self.registry.alias_history(name, alias)
            assert [(c.action, c.to_version) for c in changes] == moves


TestAliases = Aliases.TestCase
TestAliases.settings = settings(max_examples=examples(25), stateful_step_count=12,
                                deadline=None)  # fmt: skip
