"""Every `jamjet init` template of the jamjet SDK installed here that Tether can run registers
unmodified (its folder written as `jamjet init` writes it, jamjet.toml included), so a
newcomer's first `tether run workflow.yaml` is not refused. The ones left out say why."""

from __future__ import annotations

from pathlib import Path

import pytest

jamjet_templates = pytest.importorskip("jamjet.templates")

from tether import Runtime  # noqa: E402
from tether.ir import compile_yaml_file  # noqa: E402

pytestmark = pytest.mark.anyio

#: Templates not expected to register yet, and why.
NOT_YET = {
    "multi-agent-review": "the SDK itself cannot render it (KeyError in render_template)",
    "rag-assistant": "a template filter of jamjet's own (extract_path)",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    "name", [n for n in jamjet_templates.AVAILABLE_TEMPLATES if n not in NOT_YET]
)
async def test_a_jamjet_init_template_registers_unmodified(tmp_path: Path, name: str) -> None:
    project = tmp_path / name
    for path, text in jamjet_templates.render_template(name, "demo").items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}") as rt:
        wf = rt.register(compile_yaml_file(project / "workflow.yaml"))
    assert wf.nodes
