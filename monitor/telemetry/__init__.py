"""What the daemon says about itself: Prometheus metrics and structured logs."""
