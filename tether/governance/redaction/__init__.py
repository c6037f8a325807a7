"""PII redaction at every exit of the engine: API views, CLI output, logs, traces, bundles.

A policy (``governance.redact`` in a workflow's IR, or ``TETHER_REDACT`` for the engine;
:mod:`tether.ir.governance`) names built-in detectors (:mod:`.detectors`), custom patterns,
fields replaced whole, and a mode: ``mask`` or ``hash`` (a keyed hash, :mod:`.settings`). The
engine applies the union of its own and its workflows' policies (:mod:`.engine`) through one
function at each exit:

* HTTP API and so the CLI and dashboard: :class:`.http_exit.RedactResponses`;
* logs: :func:`.log_exit.install_log_redaction`;
* traces: :class:`.trace_exit.RedactingSpanProcessor`;
* evidence bundles (JSON, and the PDF rendered from it): :func:`.bundle_exit.redact_rows`.

The journal keeps the values as they were: replay folds them (I2). See the README for what
protects it.

Example::

    r = Redactor(RedactPolicy(mode="mask"))
    r.value({"note": "call +31 6 1234 5678"})    # {'note': 'call [REDACTED:phone]'}
"""

from tether.governance.redaction.engine import EngineRedaction, workflow_policy
from tether.governance.redaction.redactor import RedactionKeyMissing, Redactor, merge_policies
from tether.governance.redaction.settings import (
    RedactionSettingsError,
    policy_from_env,
    redaction_key,
)
from tether.ir.governance import Governance, RedactPolicy

__all__ = [
    "EngineRedaction",
    "Governance",
    "RedactPolicy",
    "RedactionKeyMissing",
    "RedactionSettingsError",
    "Redactor",
    "merge_policies",
    "policy_from_env",
    "redaction_key",
    "workflow_policy",
]
