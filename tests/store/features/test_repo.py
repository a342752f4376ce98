from pathlib import Path

import pytest

import litemlops
from litemlops.errors import DefinitionError
from litemlops.store import Entity, FeatureView
from litemlops.store.features.repo import load_definitions


def test_demo_definitions_module_yields_its_entity_and_view():
    path = Path(litemlops.__file__).parent / "demo" / "definitions.py"
    objects = load_definitions(path)
    assert sorted(o.name for o in objects) == ["driver", "driver_stats"]
    assert {type(o) for o in objects} == {Entity, FeatureView}


def test_object_bound_to_two_names_is_returned_once(tmp_path):
    (tmp_path / "defs.py").write_text(
        "from litemlops.store import Entity\nd = Entity('driver')\nalias = d\n"
    )
    assert len(load_definitions(tmp_path / "defs.py")) == 1


@pytest.mark.parametrize(
    "source, message",
    [
        ("x = 1\n", "defines no Entity or FeatureView"),
        ("import nonexistent_module_xyz\n", "ModuleNotFoundError"),
        ("from litemlops.store import Field\nf = Field('a b', 'int64')\n", "invalid field name"),
    ],
)
def test_bad_definition_modules_get_clear_errors(tmp_path, source, message):
    (tmp_path / "defs.py").write_text(source)
    with pytest.raises(DefinitionError, match=message):
        load_definitions(tmp_path / "defs.py")


def test_path_that_is_not_a_python_file_is_refused(tmp_path):
    (tmp_path / "defs.txt").write_text("")
    with pytest.raises(DefinitionError, match="not a Python file"):
        load_definitions(tmp_path / "defs.txt")


def test_a_definitions_file_can_import_its_siblings(tmp_path):
    (tmp_path / "shared_entities_xyz.py").write_text(
        "from litemlops.store import Entity\ndriver = Entity('driver')\n"
    )
    (tmp_path / "views.py").write_text(
        "from litemlops.store import FeatureView, Field\n"
        "from shared_entities_xyz import driver\n"
        "stats = FeatureView('stats', entities=[driver], schema=[Field('a', 'int64')])\n"
    )
    assert sorted(o.name for o in load_definitions(tmp_path / "views.py")) == ["driver", "stats"]
