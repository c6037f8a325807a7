"""Agents: model providers, the tool-calling loop, MCP tools, policies and budgets.

Executors plugged into the runtime's seam from above (the layering in README "Layout"): the
runtime stays free of provider and network code.
"""
