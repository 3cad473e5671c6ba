"""User-facing errors: each names the file, field or value at fault and what was expected."""


class RsError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""


class InputError(RsError):
    """A user-edited input (task YAML, models.yaml, sampler, template, CLI flag) is invalid."""


class UnknownNameError(InputError):
    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known) or '(none)'}")


class EndpointError(RsError):
    """An inference endpoint cannot be reached or refuses every request."""


class SchemaError(RsError):
    """A frame failed its pandera schema; nothing was written."""


class StorageError(RsError):
    """The DuckDB file cannot be opened (not a DuckDB file, no permission)."""
