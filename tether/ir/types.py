"""The workflow IR: frozen msgspec structs shared by every compiler and the runtime.

The shape follows the canonical IR dict of the `jamjet` SDK (``workflow_id``, ``version``,
``start_node``, ``nodes`` keyed by id with a ``kind`` tagged by ``type``, ``edges`` with
``from``/``to``/``condition``) so that IR produced by that SDK decodes directly, and adds what
Tether needs on top: a typed state schema, per-node ``output_key`` and ``input`` mapping,
and control-flow kinds (branch, parallel, join, end, wait).

Example::

    wf = Workflow(
        workflow_id="counter", version="1", start_node="inc",
        nodes={"inc": Node(id="inc", kind=ToolKind(tool_ref="add_one"), output_key="n")},
        edges=[Edge(from_="inc", to="end")],
    )
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from tether.ir.governance import Governance

#: The pseudo-node every graph may point at to finish; it needs no declaration.
END = "end"


class _Kind(msgspec.Struct, frozen=True, tag_field="type", forbid_unknown_fields=False):
    """Base of node kinds; the ``type`` field selects the kind."""


class ToolKind(_Kind, frozen=True, tag="tool"):
    """Call a registered ``@tool`` function. ``input_mapping`` maps parameter -> state path."""

    tool_ref: str
    input_mapping: dict[str, Any] = {}
    output_schema: str | dict[str, Any] = ""


class PythonFnKind(_Kind, frozen=True, tag="python_fn"):
    """The `jamjet` SDK's step kind: a function named by module and qualified name."""

    module: str
    function: str
    output_schema: str | dict[str, Any] = ""


class McpToolKind(_Kind, frozen=True, tag="mcp_tool"):
    server: str
    tool: str
    input_mapping: dict[str, Any] = {}
    output_schema: str | dict[str, Any] = ""


class ModelKind(_Kind, frozen=True, tag="model"):
    """One model call: ``prompt`` and ``system_prompt`` are templates over state
    (``{{ state.x }}``); ``model_ref`` a model of the workflow's ``models`` or a bare model
    name. ``output_schema``: a JSON schema the answer must match (parsed into state), or the
    `jamjet` SDK's state key name (a string)."""

    model_ref: str = "default_chat"
    prompt_ref: str = ""
    output_schema: str | dict[str, Any] = ""
    system_prompt: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


class HttpKind(_Kind, frozen=True, tag="http"):
    """An HTTP call: ``url`` and string ``body`` parts are templates over state; header values
    may hold ``${NAME}``, resolved from the environment where the call runs (never
    journaled). ``expect_status`` empty: any 2xx. ``response``: ``auto``, ``json`` or
    ``text``."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = {}
    body: Any = None
    expect_status: list[int] = []
    response: str = "auto"


class BranchCase(msgspec.Struct, frozen=True):
    """One arm of a branch: taken when ``when`` holds (``None`` is the default arm)."""

    to: str
    when: str | None = None


class BranchKind(_Kind, frozen=True, tag="branch"):
    """Pick the first case whose condition holds; fall back to ``default``."""

    cases: list[BranchCase] = []
    default: str | None = None


class ConditionKind(_Kind, frozen=True, tag="condition"):
    """The `jamjet` SDK's branch: routing lives on the outgoing edges' conditions."""

    branches: list[Any] = []


class ParallelKind(_Kind, frozen=True, tag="parallel"):
    """Start every branch at once; a join node collects them."""

    branches: list[str]


class JoinKind(_Kind, frozen=True, tag="join"):
    """Continue once every node in ``wait_for`` (default: every predecessor) has arrived."""

    wait_for: list[str] = []


class EndKind(_Kind, frozen=True, tag="end"):
    """Finish the execution; ``output`` optionally names the state key to return."""

    output: str | None = None


class LimitExceededKind(_Kind, frozen=True, tag="limit_exceeded"):
    """Finish the execution with status ``limit_exceeded`` (the `jamjet` SDK's strategies
    route their cost guards here). Its outgoing edges, if any, are never taken."""

    description: str = ""


class WaitKind(_Kind, frozen=True, tag="wait"):
    """Wait for a timer (``duration_secs`` or ``until``) and/or an external event.
    ``on_timeout``: the node a fired timer goes to instead of the usual next (the `jamjet`
    dialect's ``timeout_hours`` + ``on_timeout: escalate``)."""

    duration_secs: float | None = None
    until: str | None = None
    correlation_key: str | None = None
    on_timeout: str | None = None


class HumanApprovalKind(_Kind, frozen=True, tag="human_approval"):
    """Pause until a person approves or rejects. With ``timeout_secs``, no decision in time
    routes to ``fallback_node`` if given, else ends as ``on_timeout`` says: ``fail`` the run,
    or decide ``approve`` / ``reject`` on the person's behalf (recorded as by the timeout).

    ``approvers``: who may decide (user ids, or ``role:NAME``); None lets anyone the engine
    authenticated decide. ``patchable``: the state keys a decision's ``state_patch`` may set;
    none by default, so a decision cannot rewrite state the node's author did not offer."""

    description: str = ""
    timeout_secs: int | None = None
    fallback_node: str | None = None
    on_timeout: str = "fail"
    approvers: list[str] | None = None
    patchable: list[str] = []


class EvalKind(_Kind, frozen=True, tag="eval"):
    """Score the run so far and route on the verdict; it passes when every scorer passes.

    ``scorers`` (as written; read by :mod:`tether.ir.eval_spec`):

    - ``assertion`` ``expr`` (or ``check``/``checks``): conditions of the condition
      language over state (never Python ``eval``), checked for syntax at registration.
    - ``latency`` ``max_ms`` (or ``threshold_ms``, default 5000): the run's elapsed time
      when the eval is handed out (from journaled timestamps).
    - ``cost`` ``max_usd`` (or ``threshold_usd``, default 1.0): what the run's model calls
      cost so far (their journaled facts, judges of earlier evals included).
    - ``llm_judge`` ``model`` (a ``models`` alias or bare model name), ``rubric``,
      ``min_score`` (default 3): one model call that answers ``{"score", "reason"}``;
      ``min_score`` up to 1 asks for a 0-1 score, above 1 (to 5) for a 1-5 score; it passes
      at ``score >= min_score``. It judges ``input_expr`` (a template or state path) or else
      the output of the node before the eval. An answer without a score on the scale fails
      the attempt (retried per the node's retry policy), the answer kept, bounded.

    The deterministic scores are computed when the eval is handed out and journaled in its
    ``node_scheduled``; the judges run as one work item (``tether.eval``). The scores are in
    ``node_completed`` (``output`` and the ``eval_scores`` fact) and, with ``output_key``,
    in state as ``{"passed": bool, "scores": [...]}``.

    ``on_fail``: ``fail`` (or ``halt``) fails the run naming the failing scores; ``retry``
    runs the node before the eval (its single predecessor) again, at most ``max_retries``
    times (2 when YAML gives none), then fails; ``retry_with_feedback`` also leaves the
    failing scores' messages in ``state.__eval_feedback__`` for that node's templates
    (removed once the eval passes; a model or agent node whose templates never read it is
    refused at registration); a node id routes there.
    """

    scorers: list[Any] = []
    on_fail: str = "halt"
    max_retries: int = 0
    input_expr: str | None = None


class Budget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hard limits, checked before each model call with its projected cost and tokens."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_iterations: int | None = None
    wall_clock_secs: float | None = None


class AgentKind(_Kind, frozen=True, tag="agent"):
    """A tool-calling agent: the model proposes tool calls, the allow-list decides, the tools
    run, their results go back, until it answers. Each model call and each tool call is a step
    of its own. ``tools``: ``@tool`` names and ``server.tool`` MCP tools (its allow-list);
    ``prompt``: the first user message, a template (default: the run's input as JSON).
    A call of a tool needing approval pauses the run on a human approval of that call."""

    agent_ref: str = ""
    input_mapping: dict[str, Any] = {}
    output_schema: str | dict[str, Any] = ""
    model: str = ""
    instructions: str = ""
    prompt: str | None = None
    tools: list[str] = []
    budget: Budget | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    #: Tools (of ``tools``) whose every call waits for a person's approval first; a ``@tool``
    #: may ask for it itself (``@tool(requires_approval=True)``).
    requires_approval: list[str] = []
    #: Who may decide those approvals (user ids or ``role:NAME``); None: anyone authenticated.
    approvers: list[str] | None = None
    #: How long such an approval waits before the call counts as not approved (None: the
    #: workflow's ``timeouts.approval_timeout``, and without one, until a person decides).
    approval_timeout_secs: float | None = None


class A2aTaskKind(_Kind, frozen=True, tag="a2a_task"):
    remote_agent: str
    skill: str = ""
    input_mapping: dict[str, Any] = {}
    output_schema: str | dict[str, Any] = ""
    stream: bool = False
    on_input_required: str | None = None
    timeout_secs: int | None = None


class RunCodeKind(_Kind, frozen=True, tag="run_code"):
    """Run Python (model-written, say) in a sandbox, never in the engine. ``code``: the code,
    or ``$path`` to take it from state; ``input_mapping``: what the code sees as ``INPUT``
    (each value ``$path``, a template or a literal). ``sandbox``: ``local`` (a child process
    behind resource limits, Landlock, seccomp and a network namespace) or ``remote`` (the
    service at ``TETHER_SANDBOX_URL``). ``limits``: ``cpu_secs``, ``memory_mb``,
    ``wall_secs``, ``output_bytes``, ``file_bytes`` (``tether.agents.sandbox``)."""

    code: str
    sandbox: str = "local"
    limits: dict[str, float] = {}
    input_mapping: dict[str, Any] = {}


class MemoryWriteKind(_Kind, frozen=True, tag="memory_write"):
    """Remember a fact in durable memory (``tether.agents.memory``): ``user`` is the scope
    (a user or tenant), ``subject`` and ``content`` the fact, ``supersedes`` the id of a fact
    it replaces; each ``$path``, a template or a literal, rendered at hand-out. Written once
    per execution, node and visit, whatever restarts and retries (I4). The node's output is
    the fact written (``fact_id``, ``subject``, ``content``, ``at_ms``)."""

    user: str
    subject: str
    content: str
    supersedes: str | None = None


class MemoryRetrievalKind(_Kind, frozen=True, tag="memory_retrieval"):
    """Read ``user``'s current facts most relevant to ``topic`` within ``budget_tokens``
    (each ``$path``, a template or a literal for the first two). The output:
    ``{"text", "tokens", "facts": [{"fact_id", "subject", "content", ...}]}``."""

    user: str
    topic: str = ""
    budget_tokens: int = 400


NodeKind = (
    ToolKind
    | PythonFnKind
    | McpToolKind
    | ModelKind
    | HttpKind
    | BranchKind
    | ConditionKind
    | ParallelKind
    | JoinKind
    | EndKind
    | LimitExceededKind
    | WaitKind
    | HumanApprovalKind
    | EvalKind
    | AgentKind
    | A2aTaskKind
    | RunCodeKind
    | MemoryWriteKind
    | MemoryRetrievalKind
)

#: Kinds that are resolved by the execution itself from state (no work item, no worker).
CONTROL_KINDS: tuple[type[_Kind], ...] = (
    BranchKind,
    ConditionKind,
    ParallelKind,
    JoinKind,
    EndKind,
    LimitExceededKind,
)

#: Kinds that finish the execution when reached (``end``, and ``limit_exceeded``).
TERMINAL_KINDS: tuple[type[_Kind], ...] = (EndKind, LimitExceededKind)


#: Kinds that do I/O, run by a plug-in (``tether.runtime.node_kinds``).
IO_KINDS: tuple[type[_Kind], ...] = (
    ModelKind,
    HttpKind,
    AgentKind,
    McpToolKind,
    EvalKind,
    RunCodeKind,
    A2aTaskKind,
    MemoryWriteKind,
    MemoryRetrievalKind,
)


class RetryPolicy(msgspec.Struct, frozen=True):
    """How a failed node is retried: ``max_attempts`` counts the first try.

    ``max_lease_losses``: how many times the node may lose its lease to a worker that died or
    went silent without that spending one of its ``max_attempts`` (later losses spend one).
    """

    max_attempts: int = 3
    backoff_initial_secs: float = 0.5
    backoff_multiplier: float = 2.0
    backoff_max_secs: float = 60.0
    jitter: float = 0.2
    retry_on: list[str] = []
    max_lease_losses: int = 5


class Node(msgspec.Struct, frozen=True):
    """A graph node. ``output_key`` defaults to the node id when omitted (for a model node
    whose ``output_schema`` is a string, the `jamjet` SDK's form: to that string)."""

    id: str
    kind: NodeKind
    retry_policy: RetryPolicy | str | None = None
    node_timeout_secs: float | None = None
    description: str | None = None
    labels: dict[str, str] = {}
    output_key: str | None = None
    input: dict[str, Any] = {}

    @property
    def state_key(self) -> str:
        """The state key this node's output is merged under."""
        if self.output_key is not None:
            return self.output_key
        kind = self.kind
        if isinstance(kind, ModelKind) and isinstance(kind.output_schema, str):
            return kind.output_schema or self.id
        return self.id


class Edge(msgspec.Struct, frozen=True, rename={"from_": "from"}):
    from_: str
    to: str
    condition: str | None = None


class StateField(msgspec.Struct, frozen=True):
    """One key of the typed state: ``type`` is one of the names in ``STATE_TYPES``."""

    type: str = "any"
    default: Any = None
    required: bool = False


STATE_TYPES = ("any", "string", "integer", "number", "boolean", "object", "array", "null")

FieldType = Literal["any", "string", "integer", "number", "boolean", "object", "array", "null"]


class Timeouts(msgspec.Struct, frozen=True):
    node_timeout: float | None = None
    workflow_timeout: float | None = None
    heartbeat_interval: float | None = 30.0
    approval_timeout: float | None = None


class ContinueAsNew(msgspec.Struct, frozen=True):
    """Roll a long-running execution into a new segment once its journal segment holds
    ``max_records`` records (at the first point with no work node in flight)."""

    max_records: int


class SourceLocation(msgspec.Struct, frozen=True):
    """Where a piece of IR came from, for error messages (``file:line``)."""

    file: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Workflow(msgspec.Struct, frozen=True):
    """A compiled workflow: what the runtime executes and the registry stores."""

    workflow_id: str
    version: str
    start_node: str
    nodes: dict[str, Node]
    edges: list[Edge] = []
    name: str | None = None
    description: str | None = None
    # A dict of key -> StateField for typed state; the jamjet SDK sends a (possibly empty) string.
    state_schema: dict[str, StateField] | str = {}
    retry_policies: dict[str, RetryPolicy] = {}
    timeouts: Timeouts = Timeouts()
    labels: dict[str, str] = {}
    continue_as_new: ContinueAsNew | None = None
    # Source locations by dotted IR path ("nodes.fetch.kind.tool_ref"); not part of identity.
    locations: dict[str, SourceLocation] = {}
    # Added later: left out of the identity while empty, so versions registered before they
    # existed keep their digest (tether.ir.identity).
    #: Model aliases (``{fast: {provider: openai, model: gpt-4o-mini}}``), see
    #: ``tether.agents.providers.parse_models``.
    models: dict[str, Any] = {}
    #: MCP servers by name (``{files: {command: [...]}}`` or ``{url: ...}``).
    mcp_servers: dict[str, Any] = {}
    #: The whole run's budget over every model call (cost and tokens).
    budget: Budget | None = None
    #: Tools no agent of this workflow may call beyond (None: each agent's own list).
    allowed_tools: list[str] | None = None
    #: The `jamjet` SDK's strategy cost limit (its ``max_cost_usd``): once the run's model
    #: calls have cost this much, by the costs their ``node_completed`` facts recorded, the
    #: fold sets ``state.__cost_exceeded__`` to true and the strategy's cost guards route on
    #: it (``tether.runtime.strategy_limits``). Unlike ``budget`` it is not checked before
    #: each call: the graph says where it is checked.
    cost_limit_usd: float | None = None
    #: A code-first workflow: where its body lives (``module:qualname``); its one node is a
    #: placeholder and its calls make their own (``tether.runtime.code_first``).
    code: str | None = None
    #: Governance settings with no other home: the redaction policy (``tether.ir.governance``).
    governance: Governance | None = None

    @property
    def ref(self) -> str:
        return f"{self.workflow_id}@{self.version}"

    def typed_schema(self) -> dict[str, StateField]:
        """The state schema as fields (empty when the IR carries the SDK's string form)."""
        return self.state_schema if isinstance(self.state_schema, dict) else {}

    def outgoing(self, node_id: str) -> list[Edge]:
        """The edges leaving ``node_id``. This scans every edge: code that asks for many nodes
        builds ``edges_by_source()`` once instead (one scan per node is quadratic)."""
        return [e for e in self.edges if e.from_ == node_id]

    def edges_by_source(self) -> dict[str, list[Edge]]:
        """Every node's outgoing edges, in edge order, from one scan of ``edges``."""
        index: dict[str, list[Edge]] = {}
        for edge in self.edges:
            index.setdefault(edge.from_, []).append(edge)
        return index


def encode_workflow(wf: Workflow) -> bytes:
    """JSON bytes of a workflow, source locations included (its identity is
    :func:`tether.ir.identity.canonical_ir`)."""
    return msgspec.json.encode(wf)


def decode_workflow(data: bytes) -> Workflow:
    return msgspec.json.decode(data, type=Workflow)
