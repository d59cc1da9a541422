"""Detection: the scheduled pass over stored rollups, its persisted state and findings, the
gauges read from them, and the offline replay (backtest)."""
