"""A workflow version is its content (I13), in the embedded runtime: the same content is
accepted from any folder, any number of times, across restarts; different content under a
registered id@version is refused every time, and what runs is what was registered."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from tools import add_one, double

from tether import Runtime, WorkflowVersionConflict
from tether.ir import (
    Workflow,
    compile_yaml_file,
    compile_yaml_text,
    decode_workflow,
    workflow_from_ir,
)
from tether.ir.identity import canonical_ir, workflow_digest
from tether.testing.strategies import random_workflows

pytestmark = pytest.mark.anyio

TOOLS = [add_one, double]


@contextmanager
def cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def edited_counter(path: Path) -> Path:
    """A copy of counter.yaml with its last node changed from add_one to double (same id,
    same version), edited in place."""
    text = path.read_text()
    head, _, tail = text.partition("  third:")
    path.write_text(head + "  third:" + tail.replace("tool: add_one", "tool: double"))
    return path


def test_digest_ignores_where_the_file_was_compiled_from_I13(
    examples: Path, tmp_path: Path
) -> None:
    shutil.copy(examples / "counter.yaml", tmp_path / "counter.yaml")
    from_root = compile_yaml_file(examples / "counter.yaml")
    with cwd(tmp_path):
        from_copy = compile_yaml_file(Path("counter.yaml"))
    assert from_root.locations != from_copy.locations  # the presentation differs...
    assert workflow_digest(from_root) == workflow_digest(from_copy)  # ...the content not
    # The jamjet SDK's IR dict with its keys in another order is the same content too.
    as_dict = workflow_from_ir(dict(reversed(list(_builtins(from_root).items()))))
    assert workflow_digest(as_dict) == workflow_digest(from_root)
    assert b'"locations":{}' in canonical_ir(from_root)
    edited = compile_yaml_file(edited_counter(tmp_path / "counter.yaml"))
    assert workflow_digest(edited) != workflow_digest(from_root)


def _builtins(wf: object) -> dict[str, object]:
    import msgspec

    out: dict[str, object] = msgspec.to_builtins(wf)
    return out


async def test_same_content_from_any_folder_across_restarts_I13(
    db_url: str, examples: Path, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(examples / "counter.yaml", other / "counter.yaml")
    async with Runtime(db_url, tools=TOOLS) as rt:
        run = await rt.start(rt.register_yaml(examples / "counter.yaml"), {"n": 0})
        assert await run.result() == {"n": 3}
        with cwd(other):  # the same file from another folder, twice
            for _ in range(2):
                again = await rt.start(rt.register_yaml("counter.yaml"), {"n": 0})
                assert await again.result() == {"n": 3}
    for folder in (other, examples):  # after a restart, from either folder
        async with Runtime(db_url, tools=TOOLS) as rt:
            with cwd(folder):
                run = await rt.start(rt.register_yaml("counter.yaml"), {"n": 1})
            assert await run.result() == {"n": 4}
            [version] = await rt.list_workflows()
            assert version.digest == workflow_digest(compile_yaml_file(examples / "counter.yaml"))


async def test_changed_content_is_refused_every_time_and_the_old_never_runs_I13(
    db_url: str, examples: Path, tmp_path: Path
) -> None:
    shutil.copy(examples / "counter.yaml", tmp_path / "counter.yaml")
    original = workflow_digest(compile_yaml_file(tmp_path / "counter.yaml"))
    async with Runtime(db_url, tools=TOOLS) as rt:
        assert await (await rt.start(rt.register_yaml(tmp_path / "counter.yaml"), {})).result()
        edited_path = edited_counter(tmp_path / "counter.yaml")
        edited = workflow_digest(compile_yaml_file(edited_path))
        for _ in range(3):  # in the same process: at registration, every time
            with pytest.raises(WorkflowVersionConflict) as refused:
                rt.register_yaml(edited_path)
            _names_both(str(refused.value), original, edited)
        # An edited IR object that bypasses register() is refused at start, too.
        for _ in range(2):
            with pytest.raises(WorkflowVersionConflict):
                await rt.start(compile_yaml_file(edited_path), {"n": 0})
    for _ in range(3):  # after each restart: the store's registry refuses it every time
        async with Runtime(db_url, tools=TOOLS) as rt:
            wf = rt.register_yaml(edited_path)  # nothing here knows the version yet...
            with pytest.raises(WorkflowVersionConflict) as refused:
                await rt.start(wf, {"n": 0})  # ...the registry does
            _names_both(str(refused.value), original, edited)
            with pytest.raises(WorkflowVersionConflict):
                rt.register_yaml(edited_path)  # and now this runtime knows it too
            # By id, the registered (original) content runs: three add_one.
            assert await (await rt.start("counter@1", {"n": 0})).result() == {"n": 3}
            assert await (await rt.start("counter", {"n": 0})).result() == {"n": 3}


async def test_a_new_version_of_changed_content_is_accepted_and_runs_I13(
    db_url: str, examples: Path, tmp_path: Path
) -> None:
    text = edited_counter(Path(shutil.copy(examples / "counter.yaml", tmp_path))).read_text()
    v2 = compile_yaml_text(text.replace('version: "1"', 'version: "2"'), "counter-v2.yaml")
    async with Runtime(db_url, tools=TOOLS) as rt:
        rt.register_yaml(examples / "counter.yaml")
        rt.register(v2)
        assert await (await rt.start("counter@1", {"n": 0})).result() == {"n": 3}
        assert await (await rt.start("counter@2", {"n": 0})).result() == {"n": 4}
        digests = {v.version: v.digest for v in await rt.list_workflows()}
        assert digests["2"] == workflow_digest(v2) != digests["1"]


def _names_both(message: str, registered: str, submitted: str) -> None:
    assert registered[:19] in message and submitted[:19] in message, message
    assert "new version" in message


@settings(max_examples=100, deadline=None)
@given(wf=random_workflows(max_depth=1))
def test_the_digest_survives_the_registry_round_trip_I13(wf: Workflow) -> None:
    """What a reader of the stored IR computes is the digest of what was submitted, also for
    structs built in Python (an int where the IR says float reads back as a float)."""
    assert workflow_digest(decode_workflow(canonical_ir(wf))) == workflow_digest(wf)


def test_a_struct_with_an_int_in_a_float_field_is_the_same_content_I13() -> None:
    base = compile_yaml_text(
        'workflow: {id: w, version: "1", start: a}\n'
        "nodes: {a: {type: tool, tool: add_one, retry: {max_attempts: 2}, next: end}}\n",
        "w.yaml",
    )
    policy = base.nodes["a"].retry_policy
    assert policy is not None
    as_int = msgspec.structs.replace(policy, jitter=0, backoff_initial_secs=1)
    as_float = msgspec.structs.replace(policy, jitter=0.0, backoff_initial_secs=1.0)
    digests = {
        workflow_digest(
            msgspec.structs.replace(
                base, nodes={"a": msgspec.structs.replace(base.nodes["a"], retry_policy=p)}
            )
        )
        for p in (as_int, as_float)
    }
    assert len(digests) == 1


async def test_what_runs_is_the_registry_copy_not_the_submitted_object_I13(
    db_url: str, examples: Path
) -> None:
    """Two objects with one digest run the same (a key 1 is "1" once stored, before and after
    a restart), and editing the submitted object's dicts afterwards reaches no run."""
    submitted = compile_yaml_file(examples / "counter.yaml")
    submitted = msgspec.structs.replace(submitted, labels={1: "one"})  # type: ignore[dict-item]
    async with Runtime(db_url, tools=TOOLS) as rt:
        held = rt.register(submitted)
        assert held.labels == {"1": "one"} and held is not submitted
        submitted.labels["team"] = "edited after registering"  # type: ignore[index]
        run = await rt.start(submitted, {"n": 0})  # the object it was registered from
        assert await run.result() == {"n": 3}
        assert (await rt.workflow("counter@1")).labels == {"1": "one"}
