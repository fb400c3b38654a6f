"""Exception and warning types raised by bundlewise."""

from __future__ import annotations


class BundlewiseError(Exception):
    """Base class of every error bundlewise raises on purpose."""


class ConfigError(BundlewiseError, ValueError):
    """A configuration value is missing or invalid."""


class DataValidationError(BundlewiseError, ValueError):
    """Input data is malformed.

    The message names the file, the column, the row and the offending value so that a user can
    fix the input without reading a stack trace.

    Parameters
    ----------
    path
        The input file.
    problem
        What is wrong, e.g. ``"cannot parse as a date"``.
    column
        The source column, when the problem is in one column.
    row
        1-based data row (the header is not counted), when the problem is in one row.
    value
        The offending raw value.
    n_more
        How many further rows have the same problem.
    hint
        What the user can do about it.
    """

    def __init__(
        self,
        path: str,
        problem: str,
        *,
        column: str | None = None,
        row: int | None = None,
        value: object = None,
        n_more: int = 0,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.problem = problem
        self.column = column
        self.row = row
        self.value = value
        self.n_more = n_more
        self.hint = hint
        parts = [f"{path}:"]
        if row is not None:
            parts.append(f"row {row},")
        if column is not None:
            parts.append(f"column {column!r}:")
        parts.append(problem)
        if row is not None or value is not None:
            parts.append(f"(value {value!r})")
        message = " ".join(parts)
        if n_more:
            message += f"; {n_more} more row(s) have the same problem"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class NotFittedError(BundlewiseError, RuntimeError):
    """A model was used before ``fit`` was called."""


class GuardrailViolation(BundlewiseError):
    """No price satisfies every guardrail for a bundle.

    Parameters
    ----------
    rule
        The guardrail that cannot be met.
    detail
        Human-readable explanation with the numbers involved.
    """

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        self.detail = detail
        super().__init__(f"no feasible price ({rule}): {detail}")


class WorkspaceError(BundlewiseError):
    """The workspace is missing data a command needs (e.g. ``train`` before ``ingest``)."""


class UsageError(BundlewiseError):
    """A command was called wrongly: an option value it cannot use, a path that names no file.

    The command line exits with status 2 for this and for :class:`ConfigError` (usage errors),
    and with status 1 for every other :class:`BundlewiseError` (the data or the workspace).
    """


class BundlewiseWarning(UserWarning):
    """Base category of warnings bundlewise emits."""


__all__ = [
    "BundlewiseError",
    "BundlewiseWarning",
    "ConfigError",
    "DataValidationError",
    "GuardrailViolation",
    "NotFittedError",
    "UsageError",
    "WorkspaceError",
]
