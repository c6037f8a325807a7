"""A code-first workflow's IR (``code="module:qualname"``) survives the trip through the API's
IR import: dropping ``code`` made its placeholder node run as a graph that ends at once."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tether.ir import EndKind, Node, Workflow, WorkflowInvalid, compile_submitted_ir
from tether.ir.identity import workflow_digest


def code_first_ir(code: Any = "shop.orders:order") -> dict[str, Any]:
    wf = Workflow(
        workflow_id="order", version="1", start_node="body",
        nodes={"body": Node(id="body", kind=EndKind())}, code="shop.orders:order",
    )  # fmt: skip
    ir: dict[str, Any] = msgspec.to_builtins(wf)
    ir["code"] = code
    return ir


def test_the_code_reference_is_kept_and_counts_in_the_digest_I13() -> None:
    wf = compile_submitted_ir(code_first_ir())
    assert wf.code == "shop.orders:order"
    other = compile_submitted_ir(code_first_ir("shop.orders:order_v2"))
    assert workflow_digest(wf) != workflow_digest(other)
    assert compile_submitted_ir({**code_first_ir(), "code": None}).code is None


@pytest.mark.parametrize(
    "bad", ["order", ":order", "shop:", "shop: order", "a:b\x00", 7, ["m:q"], "m:" + "q" * 300]
)
def test_a_malformed_code_reference_is_refused_naming_the_field_I10(bad: Any) -> None:
    with pytest.raises(WorkflowInvalid) as err:
        compile_submitted_ir(code_first_ir(bad))
    assert [i.path for i in err.value.issues] == ["code"]
    assert "module:qualname" in str(err.value)
