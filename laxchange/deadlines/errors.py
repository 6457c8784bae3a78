"""The errors of the statutory clocks: a policy, term-dates or records setting that cannot be used.

All are ConfigError (exit 5): they are the home's configuration (config.json's "deadlines" section,
or a file an option names), not a record that failed validation. Each names the file and where in it.
"""

from __future__ import annotations

from laxchange.errors import ConfigError

__all__ = ["DeadlinesConfigError", "PolicyError", "TermDatesError"]


class DeadlinesConfigError(ConfigError):
    """config.json's "deadlines" section, or a folder it names, cannot be used."""

    code = "deadlines.config"


class PolicyError(ConfigError):
    """A deadline policy file is malformed, or loosens a statutory default."""

    code = "deadlines.policy-invalid"


class TermDatesError(ConfigError):
    """A term-dates file cannot be used."""

    code = "deadlines.term-dates"
