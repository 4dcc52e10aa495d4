"""Typer command definitions, one module per command group; heavy imports happen inside the commands."""
