"""Agents: model providers, the tool-calling loop, MCP tools, policies and budgets.

Executors plugged into the runtime's seam from above (../shared/DESIGN.md, Layers): the runtime
stays free of provider and network code.
"""
