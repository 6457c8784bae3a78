"""Internal helpers shared by every layer: files, strict JSON, timestamps, private-file checks.

Nothing here knows about parties, packages or the ledger. Not part of the public API.
"""
