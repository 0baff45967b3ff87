"""Type stubs of rlvr's native module (the classes `rlvr` re-exports and extends)."""

from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

__version__: str

Message: TypeAlias = dict[str, str]
Completion: TypeAlias = str | Sequence[dict[str, Any]]
ScoreRow: TypeAlias = dict[str, Any]

class Error(Exception):
    """Base class of every error rlvr raises."""

class ConfigError(Error):
    """An unknown plugin id, or a config its plugin refuses."""

class TaskError(Error):
    """A task or completion that lacks what its environment or reward needs."""

class SandboxError(Error):
    """The code sandbox could not start or run (never the guest program's own failure)."""

def envs() -> list[dict[str, Any]]:
    """Every environment: `{"id", "description", "config"}` (`config`: its keys at their defaults, or None)."""

def rewards() -> list[dict[str, Any]]:
    """Every reward, as `envs()` lists environments."""

def tasks(
    env_id: str,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`n` tasks as dataset rows: `prompt` (chat messages), the task's fields, `task_id`, `rlvr_task` (exact JSON)."""

class Reward:
    """A reward from the registry, scoring `(task, completion)` pairs."""

    def __init__(self, reward_id: str, config: dict[str, Any] | None = None) -> None: ...
    @property
    def id(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def terms(self) -> list[str]: ...
    def score(self, task: dict[str, Any], completion: Completion) -> ScoreRow:
        """`{"reward": float | None, "terms": {...}, "error": str | None, "details": {...}}`."""
    def score_batch(
        self, tasks: Iterable[dict[str, Any]], completions: Iterable[Completion], workers: int | None = None
    ) -> list[ScoreRow]:
        """`score` over pairs, on Rust threads with the GIL released; results in input order."""

class Env:
    """A text environment from the registry, Gymnasium-shaped."""

    def __init__(self, env_id: str, config: dict[str, Any] | None = None, seed: int = 0) -> None: ...
    @property
    def id(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def seed(self) -> int: ...
    @property
    def reward_id(self) -> str: ...
    @property
    def messages(self) -> list[Message]: ...
    def reset(
        self, task: dict[str, Any] | None = None, seed: int | None = None
    ) -> tuple[list[Message], dict[str, Any]]: ...
    def step(self, text: str) -> tuple[list[Message], bool, bool, dict[str, Any]]: ...
    def score(self) -> ScoreRow: ...

class Sandbox:
    """CPython in wasmtime, with fuel, deadline, memory and output limits."""

    def __init__(
        self,
        deadline_ms: int | None = None,
        fuel: int | None = None,
        memory_mb: int | None = None,
        output_bytes: int | None = None,
    ) -> None: ...
    @property
    def limits(self) -> dict[str, int]: ...
    def run(self, code: str) -> dict[str, Any]:
        """`stdout`, `stderr`, `exit_code`, `limit`, `fuel_used`, `elapsed_ms`, `truncated` (and `trap`)."""
    def session(self, seed: int = 0) -> SandboxSession: ...

class SandboxSession:
    """A warm interpreter whose state carries across turns."""

    def run(self, code: str) -> dict[str, Any]: ...
    @property
    def ended(self) -> str | None: ...

def _roundtrip(value: Any) -> Any: ...
def _panic() -> None: ...
def _same_data(a: Any, b: Any) -> bool: ...
