#!/usr/bin/env python3
"""kuzet's reference oracle: what pySigma 2.0.1 + pysigma-backend-sqlite 2.1.1 say about events.

Reads one JSON document on stdin, writes one JSON document on stdout:

    in:  {"rules": ["<Sigma YAML, may hold several documents>", ...],
          "events": [{...flat or nested JSON event...}, ...],
          "pipelines": ["<pySigma processing pipeline YAML>", ...],      (optional)
          "options": {...}}                                              (optional)
    out: {"results": [...], "errors": [...], "queries": {...}, ...}

The rules are loaded into one SigmaCollection, converted by the SQLite backend, and the SQL is
run on an in-memory SQLite table holding the events, flattened to dotted column names. See
tests/oracle/SEMANTICS.md ("The oracle") for the exact table layout and output shapes; the
option names and defaults are in DEFAULT_OPTIONS below.

Exit status: 0 whenever a result document was written (per-rule problems are in "errors");
2 when the input itself is unusable (not JSON, wrong shape, colliding field names), with
{"fatal": "..."} on stdout.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.backends.sqlite.correlation import quote
from sigma.backends.sqlite.runtime import ensure_fields, execute_plan
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

TABLE = "logs"
ROW = "__oracle_row"  # INTEGER PRIMARY KEY: the event's index in the input, and SQLite's rowid
TS = "__oracle_ts"  # the event time, normalised to ISO 8601 UTC text for the backend
TEXT = "__oracle_text"  # keyword (fulltext) column: the event's values, one per line
INTERNAL = {ROW, TS, TEXT}
RESERVED = {"rowid", "oid", "_rowid_"} | {name.lower() for name in INTERNAL}

DEFAULT_OPTIONS = {
    # Flattened event field whose value is the event time (RFC 3339 text, or epoch number).
    "timestamp_field": "timestamp",
    # Unit of epoch numbers in timestamp_field: s, ms, us or ns.
    "timestamp_unit": "s",
    # Column types. "zircolite" (reference): INTEGER where the first non-null value of the field
    # is a JSON integer or boolean, else TEXT COLLATE NOCASE (Zircolite's flattener).
    # "text": every column TEXT COLLATE NOCASE. "untyped": no affinity, COLLATE NOCASE.
    "layout": "zircolite",
    # REGEXP implementation: "python" (re.search, as the backend's README and Zircolite
    # register it) or "re2" (google-re2 search, the engine pySigma validates with).
    "regex_engine": "python",
    # Keyword (fieldless) detections: true gives the backend fulltext_field=__oracle_text;
    # false leaves the backend's default, which rejects keyword rules.
    "fulltext": True,
    # Backend collate_nocase option (adds COLLATE NOCASE to string equality).
    "collate_nocase": False,
    # Backend observation_end option (unix seconds up to which absence windows may close);
    # null: the latest event time.
    "observation_end": None,
    # Also run each correlation's standalone SQL and report its rows (slow; for cross-checks).
    "check_correlation_sql": False,
}


class InputError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Events


def flatten(event, prefix="", out=None):
    """Nested objects become dotted names; arrays are kept whole (JSON text later)."""
    if out is None:
        out = {}
    for key, value in event.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flatten(value, name, out)
        else:
            if name in out:
                raise InputError(f"field {name!r} occurs twice after flattening")
            out[name] = value
    return out


def sql_value(value):
    """The Python value bound for a JSON value (SQLite stores it per the column affinity)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def source_text(value):
    """A value as it is spelled in the JSON source (strings unquoted): the keyword text."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?\Z")
_UNITS = {"s": 1, "ms": 1000, "us": 1000000, "ns": 1000000000}


def normalise_time(value, unit):
    """RFC 3339 text or an epoch number -> 'YYYY-MM-DDTHH:MM:SS.ffffffZ', or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and not _NUMBER.match(value.strip()):
        text = value.strip()
        if len(text) > 10 and text[10] in "tT ":
            text = text[:10] + "T" + text[11:]
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
    elif isinstance(value, (int, float, str)):
        try:
            number = Decimal(str(value).strip()) / _UNITS[unit]
        except (InvalidOperation, KeyError):
            return None
        if not number.is_finite():
            return None
        micros = int((number * 1000000).to_integral_value())
        try:
            moment = _EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            return None
    else:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_integer(value):
    """JSON integers and booleans that fit SQLite's INTEGER (Zircolite: isinstance(v, int))."""
    return isinstance(value, int) and -(2**63) <= value < 2**63


def build_table(conn, events, options, warnings):
    """Create and fill the events table; returns {column: declared type}."""
    layout = options["layout"]
    flat_events = []
    columns = {}  # lower-case name -> [spelling of first occurrence, declared type or None]
    kinds = {}  # lower-case name -> set of "integer"/"other" for non-null values
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise InputError(f"events[{index}] is not a JSON object")
        try:
            flat = flatten(event)
        except InputError as error:
            raise InputError(f"events[{index}]: {error}") from None
        seen = {}
        for name, value in flat.items():
            lower = name.lower()
            if lower in RESERVED:
                raise InputError(f"events[{index}]: field name {name!r} is reserved by the oracle")
            if lower in seen:
                raise InputError(
                    f"events[{index}]: fields {seen[lower]!r} and {name!r} differ only in case; "
                    "SQLite column names are case-insensitive"
                )
            seen[lower] = name
            column = columns.setdefault(lower, [name, None])
            if column[0] != name:
                warnings.append(
                    f"events[{index}].{name} is stored in column {column[0]!r} "
                    "(SQLite column names are case-insensitive)"
                )
            if isinstance(value, list):
                warnings.append(
                    f"events[{index}].{name} is an array: stored as its JSON text "
                    "(SQL has no multi-valued columns)"
                )
            if value is not None:
                kinds.setdefault(lower, set()).add("integer" if is_integer(value) else "other")
                if column[1] is None:
                    if layout == "zircolite":
                        column[1] = "INTEGER" if is_integer(value) else "TEXT COLLATE NOCASE"
                    elif layout == "text":
                        column[1] = "TEXT COLLATE NOCASE"
                    else:
                        column[1] = "COLLATE NOCASE"
        flat_events.append(flat)

    if layout == "zircolite":
        for lower, found in kinds.items():
            if len(found) > 1:
                name, kind = columns[lower]
                warnings.append(
                    f"field {name!r} has integer values in some events and other values in "
                    f"others: its column is {kind} (typed by the first event that has it), and "
                    "SQLite's type affinity then decides how the others compare"
                )
    default = "COLLATE NOCASE" if layout == "untyped" else "TEXT COLLATE NOCASE"
    declared = {name: kind or default for name, kind in columns.values()}
    ddl = [f"{quote(ROW)} INTEGER PRIMARY KEY", f"{quote(TS)} TEXT", f"{quote(TEXT)} TEXT"]
    ddl += [f"{quote(name)} {kind}" for name, kind in declared.items()]
    conn.execute(f"CREATE TABLE {TABLE} ({', '.join(ddl)})")

    ts_field = options["timestamp_field"]
    for index, flat in enumerate(flat_events):
        names = [ROW, TS, TEXT] + [columns[name.lower()][0] for name in flat]
        ts = normalise_time(flat.get(ts_field), options["timestamp_unit"])
        text = "\n".join(source_text(v) for v in flat.values() if v is not None)
        values = [index, ts, text] + [sql_value(v) for v in flat.values()]
        conn.execute(
            f"INSERT INTO {TABLE} ({', '.join(map(quote, names))}) "
            f"VALUES ({', '.join('?' * len(names))})",
            values,
        )
    return declared


# ---------------------------------------------------------------------------------------------
# REGEXP


def register_regexp(conn, engine, regex_errors):
    if engine == "re2":
        import re2

        compile_ = re2.compile
    elif engine == "python":
        compile_ = re.compile
    else:
        raise InputError(f"unknown regex_engine {engine!r}")
    cache = {}

    def regexp(pattern, value):
        # Same contract as the backend README's example: false for NULL, str() of other values.
        if value is None:
            return False
        compiled = cache.get(pattern)
        if compiled is None:
            try:
                compiled = cache[pattern] = compile_(pattern)
            except Exception as error:  # re.error / re2.error
                regex_errors.append(f"{engine} cannot compile {pattern!r}: {error}")
                raise
        return compiled.search(str(value)) is not None

    conn.create_function("regexp", 2, regexp, deterministic=True)


# ---------------------------------------------------------------------------------------------
# Rules


def describe(rule):
    return {
        "id": str(rule.id) if rule.id else None,
        "name": rule.name,
        "title": rule.title,
    }


def rule_key(rule):
    return str(rule.id) if rule.id else (rule.name or rule.title or "?")


def error_text(error):
    text = str(error) or type(error).__name__
    if len(text) > 2000:
        text = text[:2000] + "..."
    return f"{type(error).__name__}: {text}"


def load_rules(texts, errors):
    """Parse every YAML text; returns (rules, filters) with unusable documents reported."""
    rules, filters = [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            errors.append({"rule": f"rules[{i}]", "stage": "parse", "error": "not a string"})
            continue
        try:
            collection = SigmaCollection.from_yaml(
                text, collect_errors=True, collect_filters=True, resolve_references=False
            )
        except Exception as error:
            errors.append({"rule": f"rules[{i}]", "stage": "parse", "error": error_text(error)})
            continue
        for error in collection.errors:
            # Errors of the collection itself (also repeated on each rule: reported there).
            if not any(error in r.errors for r in collection.rules + collection.filters):
                errors.append(
                    {"rule": f"rules[{i}]", "stage": "parse", "error": error_text(error)}
                )
        for rule in collection.rules:
            if rule.errors:
                errors.append(
                    {"rule": rule_key(rule), **describe(rule), "stage": "parse",
                     "error": "; ".join(error_text(e) for e in rule.errors)}
                )
            else:
                rules.append(rule)
        for sigma_filter in collection.filters:
            if sigma_filter.errors:
                errors.append(
                    {"rule": rule_key(sigma_filter), **describe(sigma_filter), "stage": "parse",
                     "error": "; ".join(error_text(e) for e in sigma_filter.errors)}
                )
            else:
                filters.append(sigma_filter)
    return rules, filters


def resolve(rules, filters, errors):
    """One collection; correlations whose references cannot be resolved are dropped (reported)."""
    collection = SigmaCollection(rules + filters, resolve_references=False)
    pending = list(collection.rules)
    while True:
        bad = None
        for rule in pending:
            if isinstance(rule, SigmaCorrelationRule):
                try:
                    refs = rule.rules if rule.rules is not None else []
                    for ref in refs:
                        collection[ref.reference]  # raises SigmaRuleNotFoundError
                    if rule.rules is None:
                        for name in rule.condition.get_referenced_rules():
                            collection[name]
                except Exception as error:
                    bad = (rule, error)
                    break
        if bad is None:
            break
        rule, error = bad
        errors.append({"rule": rule_key(rule), **describe(rule), "stage": "reference",
                       "error": error_text(error)})
        pending = [r for r in pending if r is not rule]
        collection = SigmaCollection(pending, resolve_references=False)
    # pySigma's own resolution: resolves references, applies filters, orders referenced first.
    collection.resolve_rule_references()
    return collection


def make_backend(pipelines, options):
    pipeline = None
    for i, text in enumerate(pipelines):
        try:
            item = ProcessingPipeline.from_yaml(text)
        except Exception as error:
            raise InputError(f"pipelines[{i}]: {error_text(error)}") from None
        pipeline = item if pipeline is None else pipeline + item
    backend_options = {
        "table": TABLE,
        "timestamp_field": TS,
        "collate_nocase": bool(options["collate_nocase"]),
    }
    if options["fulltext"]:
        backend_options["fulltext_field"] = TEXT
    if options["observation_end"] is not None:
        backend_options["observation_end"] = options["observation_end"]
    backend = sqliteBackend(pipeline, **backend_options)
    backend.init_processing_pipeline("zircolite")
    return backend


# ---------------------------------------------------------------------------------------------
# Execution


_NO_COLUMN = re.compile(r"no such column: (.+)\Z")


def run_select(conn, sql, params=()):
    """Run a query, adding (as NULL TEXT COLLATE NOCASE) any column the table lacks."""
    for _ in range(1000):
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            missing = _NO_COLUMN.match(str(error))
            if not missing:
                raise
            name = missing.group(1).strip("`\"")
            before = len(conn.execute(f"SELECT * FROM {TABLE} LIMIT 0").description)
            ensure_fields(conn, {TABLE: [name]})
            after = len(conn.execute(f"SELECT * FROM {TABLE} LIMIT 0").description)
            if after == before:
                raise
    raise RuntimeError("too many missing columns")


def seconds_iso(value):
    if value is None:
        return None
    try:
        moment = _EPOCH + timedelta(seconds=float(value))
    except (OverflowError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_index(identity):
    """'<table id>:<rowid>' -> the event's index in the input."""
    return int(identity.split(":", 1)[1])


def run_detection(conn, rule, sqls):
    matches = set()
    per_query = []
    for sql in sqls:
        rows = run_select(conn, f"SELECT {quote(ROW)} FROM ({sql})")
        found = sorted({row[0] for row in rows})
        per_query.append(found)
        matches.update(found)
    return sorted(matches), per_query


def run_correlation(conn, plan, options):
    ensure_fields(conn, plan["required_fields"])
    rows, diagnostics = execute_plan(conn, plan, include_events=False)
    alerts = []
    for row in rows:
        alerts.append({
            "alert_id": row["alert_id"],
            "group": row["group_keys"],
            "window_start": row["window_start"],
            "window_end": row["window_end"],
            "occurrence_time": row["occurrence_time"],
            "window_start_iso": seconds_iso(row["window_start"]),
            "window_end_iso": seconds_iso(row["window_end"]),
            "metric_name": row["metric_name"],
            "metric": row["metric_value"],
            "event_count": row["event_count"],
            "events": sorted(event_index(i) for i in row["event_ids"]),
            "child_alerts": row["child_alert_ids"],
        })
    return alerts, diagnostics


def run(doc):
    if not isinstance(doc, dict):
        raise InputError("input must be a JSON object")
    unknown = set(doc) - {"rules", "events", "pipelines", "options"}
    if unknown:
        raise InputError(f"unknown input keys {sorted(unknown)}")
    rules_in = doc.get("rules", [])
    events = doc.get("events", [])
    pipelines = doc.get("pipelines") or []
    options = dict(DEFAULT_OPTIONS)
    given = doc.get("options") or {}
    if set(given) - set(DEFAULT_OPTIONS):
        raise InputError(f"unknown options {sorted(set(given) - set(DEFAULT_OPTIONS))}")
    options.update(given)
    if options["layout"] not in ("zircolite", "text", "untyped"):
        raise InputError(f"unknown layout {options['layout']!r}")
    if options["timestamp_unit"] not in _UNITS:
        raise InputError(f"unknown timestamp_unit {options['timestamp_unit']!r}")
    if isinstance(rules_in, str):
        rules_in = [rules_in]
    if not isinstance(rules_in, list) or not isinstance(events, list):
        raise InputError("rules and events must be lists")
    if not isinstance(pipelines, list):
        raise InputError("pipelines must be a list")

    errors, warnings, results, queries = [], [], [], {}
    conn = sqlite3.connect(":memory:", isolation_level=None)
    regex_errors = []
    register_regexp(conn, options["regex_engine"], regex_errors)
    columns = build_table(conn, events, options, warnings)
    backend = make_backend(pipelines, options)

    rules, filters = load_rules(rules_in, errors)
    collection = resolve(rules, filters, errors)

    # Convert in pySigma's order (referenced rules first); keys unique in output order.
    used = {}
    converted = []
    failed = {}  # id(rule) -> key of rules whose conversion failed
    for rule in collection.rules:
        key = rule_key(rule)
        used[key] = used.get(key, 0) + 1
        if used[key] > 1:
            key = f"{key}#{used[key]}"
        correlation = isinstance(rule, SigmaCorrelationRule)
        if correlation:
            broken = [failed[id(r)] for r in rule.flatten_rules() if id(r) in failed]
            if broken:
                failed[id(rule)] = key
                errors.append({"rule": key, **describe(rule), "stage": "convert",
                               "error": f"references {', '.join(map(repr, broken))}, "
                                        "which could not be converted"})
                continue
        try:
            if correlation:
                backend.convert_correlation_rule(rule, "zircolite")
            else:
                backend.convert_rule(rule, "zircolite")
        except Exception as error:
            failed[id(rule)] = key
            errors.append({"rule": key, **describe(rule), "stage": "convert",
                           "error": error_text(error)})
            continue
        converted.append((key, rule, correlation))

    for key, rule, correlation in converted:
        entry = {"rule": key, **describe(rule),
                 "kind": "correlation" if correlation else "detection",
                 # pySigma's convert() would emit this rule (false for a rule only referenced
                 # by correlations without generate: true).
                 "emitted": bool(rule._output)}
        outputs = rule.get_conversion_result()
        regex_errors.clear()
        try:
            if correlation:
                entry["type"] = rule.type.name.lower()
                output = outputs[0]
                plan = output["correlation_plan"]
                queries[key] = output["rule"][0]
                alerts, diagnostics = run_correlation(conn, plan, options)
                entry["alerts"] = alerts
                entry["matches"] = sorted({i for a in alerts for i in a["events"]})
                entry["diagnostics"] = diagnostics
                if options["check_correlation_sql"]:
                    ensure_fields(conn, plan["required_fields"])
                    cursor = conn.execute(output["rule"][0])
                    names = [d[0] for d in cursor.description]
                    entry["sql_rows"] = [dict(zip(names, r)) for r in cursor.fetchall()]
            else:
                sqls = []
                states = rule.get_conversion_states()
                for i, output in enumerate(outputs):
                    if isinstance(output, dict):  # finalized (zircolite) entry
                        ensure_fields(conn, {TABLE: output["required_fields"]})
                        sqls.extend(output["rule"])
                    else:  # predicate kept for a correlation: finalize like pySigma would
                        sqls.append(backend.finalize_query_default(rule, output, i, states[i]))
                ensure_fields(conn, {TABLE: backend.required_fields(rule)})
                queries[key] = sqls[0] if len(sqls) == 1 else sqls
                entry["matches"], per_query = run_detection(conn, rule, sqls)
                if len(sqls) > 1:
                    entry["matches_per_condition"] = per_query
            results.append(entry)
        except Exception as error:
            message = error_text(error)
            if regex_errors:
                message += " (" + "; ".join(regex_errors) + ")"
            errors.append({"rule": key, **describe(rule), "stage": "execute", "error": message})
    conn.close()
    return {
        "results": results,
        "errors": errors,
        "queries": queries,
        "columns": {name: kind for name, kind in columns.items()},
        "warnings": warnings,
        "versions": versions(),
    }


def versions():
    from importlib.metadata import version

    return {
        "pysigma": version("pysigma"),
        "pysigma-backend-sqlite": version("pysigma-backend-sqlite"),
        "sqlite": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
    }


def main():
    try:
        doc = json.load(sys.stdin)
    except ValueError as error:
        json.dump({"fatal": f"input is not JSON: {error}"}, sys.stdout)
        return 2
    try:
        out = run(doc)
    except InputError as error:
        json.dump({"fatal": str(error)}, sys.stdout)
        sys.stdout.write("\n")
        return 2
    json.dump(out, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
