"""`make test`'s runner (scripts/run_tests.py): how it splits the end-to-end files into shards."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_tests.py"


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_tests", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_tests"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_file_lands_in_one_shard_in_pytest_order_and_the_loads_are_balanced(
    runner: ModuleType,
) -> None:
    expected = {"a.py": 600.0, "b.py": 500.0, "c.py": 300.0, "d.py": 200.0, "e.py": 100.0}
    groups = runner.plan(expected, 2)
    assert sorted(f for g in groups for f in g) == sorted(expected)
    assert all(g == sorted(g) for g in groups)
    loads = sorted(sum(expected[f] for f in g) for g in groups)
    assert loads == [800.0, 900.0]  # 1700 s can split no closer than this


def test_more_shards_than_files_leaves_no_empty_shard(runner: ModuleType) -> None:
    assert runner.plan({"a.py": 5.0, "b.py": 1.0}, 3) == [["a.py"], ["b.py"]]


def test_a_file_without_a_recorded_time_is_estimated_from_its_tests(
    runner: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    (tmp_path / "test_old.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / "test_new.py").write_text(
        "def test_x():\n    pass\n\n\nasync def test_y():\n    pass\n\ndef test_z():\n    pass\n"
    )
    got = runner.estimates(["test_old.py", "test_new.py"], {"test_old.py": 100.0})
    assert got == {"test_old.py": 100.0, "test_new.py": 150.0}  # 3 tests at 50 s


def test_the_recorded_timings_name_existing_files(runner: ModuleType) -> None:
    """A renamed file must not keep a stale entry (it would be estimated, not measured)."""
    names = {Path(f).name for f in runner.e2e_files()}
    timings = runner.load_timings()
    assert timings and set(timings) <= names
