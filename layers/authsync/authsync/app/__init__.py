"""Use cases over ports.

Callback ingest, the fetch pipeline (sync), the schedules, the corp view; ``ports`` names
every port.

Empty on purpose: importing the package imports nothing (cold start).
"""
