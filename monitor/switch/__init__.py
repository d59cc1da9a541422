"""The kill switch: pure transition rules, the persisted compare-and-set service, the
policies that trip it, its notifications and metrics."""
