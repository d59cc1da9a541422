"""driftwarden: monitoring, drift detection and kill switches for AI workflows."""

__version__ = "0.1.0"
