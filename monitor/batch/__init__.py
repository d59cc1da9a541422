"""A validated batch made ready to store, as pure functions of its events: the event rows,
the rollup deltas and the metric counts. Shared by the parse processes (which compute it)
and the store (which writes it); it imports neither, so a parse process stays small."""
