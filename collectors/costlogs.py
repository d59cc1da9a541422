"""Cost logs users already have -> canonical ``cost`` events.

Formats (``FORMATS``), and the input-token convention each one follows. Canonical cost
events count cached tokens INSIDE ``input_tokens`` (see ``collectors.prices``):

* ``openai``: Chat Completions / Responses API objects or bare usage objects, as a JSON
  array, ``{"data": [...]}``, one object, or NDJSON. ``prompt_tokens`` / ``input_tokens``
  include ``*_tokens_details.cached_tokens`` already: taken as is.
* ``anthropic``: Messages API objects. ``input_tokens`` EXCLUDES cache reads and writes, so
  ``input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens``.
* ``litellm``: LiteLLM ``LiteLLM_SpendLogs`` rows (``request_id``, ``model``, ``spend``,
  ``prompt_tokens``, ``completion_tokens``, ``metadata``, ``startTime``, ``user``, ``team_id``).
  ``prompt_tokens`` follows OpenAI (includes cached). Naive ``startTime`` values are UTC.
  ``spend: 0.0`` with tokens and no cache hit means LiteLLM could not price the call: it is
  priced here (or counted unpriced), not kept as $0.
* ``csv``: any CSV; ``columns`` maps event fields to column names (a column named like the
  field needs no mapping). Option ``input_includes_cached`` (default true) says which
  convention the file follows.

Workflow: the record's ``workflow`` (or ``metadata.workflow``; for LiteLLM also a
``workflow:<name>`` request tag), else the ``workflow`` option, else the record is rejected.
A missing cost is computed from genai-prices with ``price_source`` recorded; an unknown
model keeps ``cost_usd`` empty (counted as unpriced), never guessed.

Event ids come from the record's own id (``openai:chatcmpl-…``, ``litellm:<request_id>``),
or, when it has none, from a hash of its content and its occurrence number in the file, so
importing the same file twice stores nothing twice.

>>> events, rejected = parse_costlog("openai", b'{"id": "chatcmpl-1", "model": "gpt-4o",'
...     b' "created": 1795424400, "usage": {"prompt_tokens": 1000, "completion_tokens": 10}}',
...     {"workflow": "support-replies"})
>>> events[0].id, events[0].input_tokens, events[0].cost_usd > 0, rejected
('openai:chatcmpl-1', 1000, True, [])
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from collectors.events import MAX_BATCH_EVENTS, Event, EventError, convert_event
from collectors.native import BatchError, Parsed, Rejected
from collectors.prices import fill_cost

FORMATS: Final = ("openai", "anthropic", "litellm", "csv")
CSV_FIELDS: Final = (
    "id", "ts", "workflow", "model", "provider", "input_tokens", "output_tokens",
    "cached_tokens", "cost_usd", "request_id", "team", "user",
)  # fmt: skip
_COLUMN_KEYS: Final = ("column.", "map.")  # column.cost_usd=usd (map. is the CLI's spelling)
_INTS: Final = frozenset({"input_tokens", "output_tokens", "cached_tokens"})


@dataclass(frozen=True, slots=True)
class CostlogOptions:
    workflow: str | None = None  # default workflow when a record names none
    provider: str | None = None  # default provider (pricing hint)
    columns: dict[str, str] = field(default_factory=dict)  # csv: event field -> column
    delimiter: str = ","
    input_includes_cached: bool = True  # csv only

    @classmethod
    def parse(cls, options: Mapping[str, Any] | CostlogOptions | None) -> CostlogOptions:
        """Options from a mapping (CLI flags or query parameters, so strings are fine)."""
        if options is None:
            return cls()
        if isinstance(options, CostlogOptions):
            return options
        known = {"workflow", "default_workflow", "provider", "columns", "delimiter",
                 "input_includes_cached"}  # fmt: skip
        unknown = sorted(k for k in options if k not in known and not k.startswith(_COLUMN_KEYS))
        if unknown:
            raise BatchError(f"unknown cost-log option(s): {', '.join(unknown)}")
        columns = _columns(options.get("columns"))
        columns.update(
            {k.split(".", 1)[1]: str(v) for k, v in options.items() if k.startswith(_COLUMN_KEYS)}
        )
        bad = sorted(set(columns) - set(CSV_FIELDS))
        if bad:
            raise BatchError(f"columns: unknown field(s) {', '.join(bad)}; use {CSV_FIELDS}")
        delimiter = str(options.get("delimiter", ","))
        if len(delimiter) != 1:
            raise BatchError("delimiter: must be one character")
        flag = str(options.get("input_includes_cached", "true")).lower()
        if flag not in ("true", "false", "1", "0"):
            raise BatchError("input_includes_cached: must be true or false")
        return cls(
            workflow=options.get("workflow") or options.get("default_workflow"),
            provider=options.get("provider"),
            columns=columns,
            delimiter=delimiter,
            input_includes_cached=flag in ("true", "1"),
        )


def _columns(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as err:
            raise BatchError(f"columns: not valid JSON: {err}") from None
        return _columns(parsed) if isinstance(parsed, dict) else {}
    pairs = [p.replace(":", "=", 1).split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise BatchError('columns: use JSON {"ts": "time"} or ts=time,model=model_name')
    return {k.strip(): v.strip() for k, v in pairs}


def parse_costlog(
    fmt: str,
    data: bytes | str,
    options: Mapping[str, Any] | CostlogOptions | None = None,
    received_at: float | None = None,
) -> tuple[list[Event], list[Rejected]]:
    """Events and per-record rejections; ``BatchError`` when the input is unusable as a whole."""
    if fmt not in FORMATS:
        raise BatchError(f"unknown cost-log format {fmt!r}; use one of {', '.join(FORMATS)}")
    opts = CostlogOptions.parse(options)
    raw = data.encode() if isinstance(data, str) else data
    received = time.time() if received_at is None else received_at
    records = _csv_rows(raw, opts) if fmt == "csv" else _json_records(raw)
    build = _BUILDERS[fmt]
    out = Parsed()
    seen: dict[str, int] = {}
    for index, record in records:
        if index > MAX_BATCH_EVENTS:
            raise BatchError(f"more than {MAX_BATCH_EVENTS} records", too_large=True)
        try:
            if not isinstance(record, dict):
                raise EventError("", "a record must be a JSON object")
            cost = build(record, opts)
            if "id" not in cost:
                cost["id"] = _content_id(fmt, record, seen)
            if "workflow" not in cost:
                if not opts.workflow:
                    raise EventError("workflow", "record names no workflow; pass option workflow")
                cost["workflow"] = opts.workflow
            fill_cost(cost, cost.pop("_cache_write", 0))
            out.events.append(convert_event(cost, received))
        except EventError as err:
            out.rejected.append(Rejected(index, err.field, str(err)))
    return out.events, out.rejected


def parse_costlog_body(
    fmt: str, body: bytes, options: Mapping[str, Any], received_at: float
) -> Parsed:
    """``parse_costlog`` for ``POST /v1/events?format=<fmt>`` (options = query parameters)."""
    events, rejected = parse_costlog(fmt, body, options, received_at)
    return Parsed(events, rejected)


# -- record sources ---------------------------------------------------------------------


def _json_records(raw: bytes) -> list[tuple[int, Any]]:
    """(index, record): 0-based for a JSON document, 1-based line numbers for NDJSON."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
        lines = [(n, line) for n, line in enumerate(raw.split(b"\n"), 1) if line.strip()]
        if len(lines) < 2:
            raise BatchError("body is not valid JSON or NDJSON") from None
        return [(n, _line(n, line)) for n, line in lines]
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]  # OpenAI list envelope
    return list(enumerate(doc if isinstance(doc, list) else [doc]))


def _line(number: int, line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return f"line {number} is not valid JSON"  # rejected as "not a JSON object"


def _csv_rows(raw: bytes, opts: CostlogOptions) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise BatchError(f"CSV is not UTF-8: {err}") from None
    reader = csv.DictReader(io.StringIO(text), delimiter=opts.delimiter)
    header = reader.fieldnames or []
    missing = sorted(c for c in opts.columns.values() if c not in header)
    if missing:
        raise BatchError(f"columns: CSV has no column(s) {', '.join(missing)}; it has {header}")
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as err:
        raise BatchError(f"CSV line {reader.line_num}: {err}") from None


def _content_id(fmt: str, record: dict[str, Any], seen: dict[str, int]) -> str:
    try:
        canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # orjson reads 1,024 levels but writes only 254; ids already stored were made by
        # orjson, so another encoder for the rest would break nothing but is not worth it
        # for records no real log nests so deep: the record is refused by its index
        raise EventError(
            "", "record is nested too deeply (over 254 levels) to be identified"
        ) from None
    digest = hashlib.sha256(canonical).hexdigest()[:32]
    seen[digest] = seen.get(digest, 0) + 1  # identical lines are distinct records
    return f"{fmt}:{digest}:{seen[digest]}"


# -- builders: one record -> cost-event dict ------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = orjson.loads(value)  # JSON columns exported as text
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "":
        out[key] = value


def _context(record: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    meta = _obj(record.get("metadata"))
    _put(out, "workflow", record.get("workflow") or meta.get("workflow"))
    _put(out, "team", meta.get("team"))
    _put(out, "user", record.get("user") or meta.get("user"))
    return meta


def _openai(record: dict[str, Any], opts: CostlogOptions) -> dict[str, Any]:
    usage = _obj(record.get("usage")) or record
    details = _obj(usage.get("prompt_tokens_details") or usage.get("input_tokens_details"))
    out: dict[str, Any] = {"type": "cost", "provider": opts.provider or "openai"}
    if isinstance(record.get("id"), str):
        out["id"] = f"openai:{record['id']}"
        out["request_id"] = record["id"]
    _put(out, "ts", record.get("created", record.get("created_at")))
    _put(out, "model", record.get("model"))
    _put(out, "input_tokens", usage.get("prompt_tokens", usage.get("input_tokens")))
    _put(out, "output_tokens", usage.get("completion_tokens", usage.get("output_tokens")))
    _put(out, "cached_tokens", details.get("cached_tokens", usage.get("input_cached_tokens")))
    _put(out, "cost_usd", record.get("cost_usd"))
    _put(out, "_cache_write", details.get("cache_write_tokens"))
    _context(record, out)
    return out


def _anthropic(record: dict[str, Any], opts: CostlogOptions) -> dict[str, Any]:
    usage = _obj(record.get("usage")) or record
    out: dict[str, Any] = {"type": "cost", "provider": opts.provider or "anthropic"}
    if isinstance(record.get("id"), str):
        out["id"] = f"anthropic:{record['id']}"
        out["request_id"] = record["id"]
    _put(out, "ts", record.get("ts", record.get("created_at")))
    _put(out, "model", record.get("model"))
    parts = [usage.get(k) or 0 for k in ("input_tokens", "cache_read_input_tokens",
                                         "cache_creation_input_tokens")]  # fmt: skip
    if all(isinstance(p, int) for p in parts) and "input_tokens" in usage:
        out["input_tokens"] = sum(parts)  # Anthropic's input excludes both cache counts
        out["_cache_write"] = parts[2]
    else:
        _put(out, "input_tokens", usage.get("input_tokens"))
    _put(out, "cached_tokens", usage.get("cache_read_input_tokens"))
    _put(out, "output_tokens", usage.get("output_tokens"))
    _put(out, "cost_usd", record.get("cost_usd"))
    _context(record, out)
    return out


def _litellm(record: dict[str, Any], opts: CostlogOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "cost"}
    if isinstance(record.get("request_id"), str) and record["request_id"]:
        out["id"] = f"litellm:{record['request_id']}"
        out["request_id"] = record["request_id"]
    _put(out, "ts", _naive_utc(record.get("startTime")))
    _put(out, "model", record.get("model"))
    _put(out, "provider", record.get("custom_llm_provider") or opts.provider)
    _put(out, "input_tokens", record.get("prompt_tokens"))
    _put(out, "output_tokens", record.get("completion_tokens"))
    _put(out, "cost_usd", _litellm_spend(record))
    _put(out, "team", record.get("team_id"))
    _put(out, "user", record.get("user") or record.get("end_user"))
    meta = _obj(record.get("metadata"))
    usage = _obj(meta.get("usage_object"))
    _put(out, "cached_tokens", _obj(usage.get("prompt_tokens_details")).get("cached_tokens"))
    tags = record.get("request_tags")
    tags = orjson.loads(tags) if isinstance(tags, str) and tags.startswith("[") else tags
    tagged = [t[9:] for t in tags or [] if isinstance(t, str) and t.startswith("workflow:")]
    _put(out, "workflow", meta.get("workflow") or (tagged[0] if tagged else None))
    extra = {
        k: record[k] for k in ("call_type", "status", "cache_hit") if record.get(k) is not None
    }
    if extra:
        out["attributes"] = extra
    return out


def _litellm_spend(record: dict[str, Any]) -> Any:
    """The row's ``spend``, but None for the 0.0 LiteLLM writes when it could not price a
    call that used tokens (a model missing from its price map): such a row is priced
    from genai-prices, or counted unpriced, never kept as free. A cache hit is free."""
    spend = record.get("spend")
    if spend != 0 or isinstance(spend, bool) or str(record.get("cache_hit")).lower() == "true":
        return spend
    tokens = [record.get(k) for k in ("prompt_tokens", "completion_tokens")]
    used = any(isinstance(n, int | float) and not isinstance(n, bool) and n > 0 for n in tokens)
    return None if used else spend


def _naive_utc(ts: Any) -> Any:
    """ISO text with a zone: LiteLLM stores UTC, and exports often drop the zone, which
    events refuse as ambiguous."""
    if not isinstance(ts, str):
        return ts
    text = ts.strip().replace(" ", "T", 1)
    tail = text[10:]
    if tail and not (text.endswith(("Z", "z")) or "+" in tail or "-" in tail):
        return text + "Z"
    return text


def _csv(record: dict[str, Any], opts: CostlogOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "cost"}
    for name in CSV_FIELDS:
        column = opts.columns.get(name, name)
        value = record.get(column)
        if value is None or value.strip() == "":
            continue
        out[name] = _csv_value(name, column, value.strip())
    if "provider" not in out and opts.provider:
        out["provider"] = opts.provider
    if "ts" in out:
        out["ts"] = _naive_utc(out["ts"])
    if not opts.input_includes_cached and "input_tokens" in out:
        out["input_tokens"] += out.get("cached_tokens", 0)
    if "id" in out:
        out["id"] = f"csv:{out['id']}"
    return out


def _csv_value(name: str, column: str, value: str) -> Any:
    try:
        if name in _INTS:
            return int(value)
        if name == "cost_usd":
            return float(value)
        if name == "ts":
            return float(value) if value.replace(".", "", 1).isdigit() else value
    except ValueError:
        kind = "an integer" if name in _INTS else "a number"
        raise EventError(name, f"column {column!r}: {value!r} is not {kind}") from None
    return value


_BUILDERS: Final[dict[str, Callable[[dict[str, Any], CostlogOptions], dict[str, Any]]]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "litellm": _litellm,
    "csv": _csv,
}
