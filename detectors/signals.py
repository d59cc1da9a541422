"""Names of the rolled-up signals. The store writes them, detectors and dashboards read them.

Rate signals count trials in ``count`` and events in ``successes``; value signals carry
``sum``/``sumsq``/``min``/``max`` of the observed values.
"""

from typing import Final

# the width of the ``signal`` columns (rollups, findings, detector state): a name built from
# a prefix and a client's label (action, team, KPI) must fit, so events are validated
# against it (collectors.events) rather than failing in the database
SIGNAL_MAX_LENGTH: Final = 96

# run events
RUNS: Final = "runs"  # count = runs, successes = runs with status ok
ERRORS: Final = "errors"  # rate: status == error
TIMEOUTS: Final = "timeouts"  # rate: status == timeout
RETRIES: Final = "retries"  # rate: runs with retries > 0; sum = total retries
LATENCY_MS: Final = "latency_ms"  # value
GROUNDEDNESS: Final = "groundedness"  # value 0..1
CONFIDENCE: Final = "confidence"  # value 0..1
VALIDATION_FAILED: Final = "validation_failed"  # rate over runs that report validation
ESCALATED: Final = "escalated"  # rate over runs that report escalation
ACTION_ERRORS_PREFIX: Final = "action_errors."  # + action; rate: error or timeout per action

# review events
EDITED: Final = "edited"  # rate: decision edited or rejected (the "edit rate")
REJECTED: Final = "rejected"  # rate: decision rejected
APPROVED: Final = "approved"  # rate: decision approved
EDIT_RATIO: Final = "edit_ratio"  # value 0..1
REVIEW_MS: Final = "review_ms"  # value
TIME_SAVED_S: Final = "time_saved_s"  # value (sum is the total saved)

# cost (from cost events and from run events that carry cost/tokens)
SPEND_USD: Final = "spend_usd"  # value: count = priced records, sum = USD
TOKENS: Final = "tokens"  # value: input + output tokens per record
UNPRICED: Final = "unpriced"  # count of cost records with no price

# adoption
TEAM_RUNS_PREFIX: Final = "team_runs."  # + team; count = runs of that team
KPI_PREFIX: Final = "kpi."  # + kpi name; value

RATE_SIGNALS: Final = frozenset(
    {ERRORS, TIMEOUTS, RETRIES, VALIDATION_FAILED, ESCALATED, EDITED, REJECTED, APPROVED}
)
