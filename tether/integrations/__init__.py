"""Integrations of Tether with other frameworks, each an optional extra.

Nothing here is imported by ``import tether``: each integration imports its framework, so it
loads only when asked for (``from tether.integrations.pydantic_ai import TetherAgent``).
"""
