"""sessionlint: keep every database session flowing through the one sanctioned path."""

from sessionlint.codes import RULES, Rule
from sessionlint.config import Config, ConfigError
from sessionlint.events import Event, Status
from sessionlint.runner import RunResult, analyze_source, run

__all__ = [
    "RULES",
    "Config",
    "ConfigError",
    "Event",
    "Rule",
    "RunResult",
    "Status",
    "analyze_source",
    "run",
]

__version__ = "0.1.0"
