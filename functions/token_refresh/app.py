"""Placeholder until the handler lands."""
