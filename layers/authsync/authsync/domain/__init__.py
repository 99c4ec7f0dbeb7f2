"""Pure rules: the field-level diff and the snapshot write rules as decision functions.

Empty on purpose: importing the package imports nothing (cold start).
"""
