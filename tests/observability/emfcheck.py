"""Helpers for the observability suite: EMF records out of a log, checked against the published
EMF schema (emf-schema.json) and against the specification's rules a schema cannot express."""

import json
from pathlib import Path

import jsonschema_rs

EMF_SCHEMA = json.loads((Path(__file__).parent / "emf-schema.json").read_text())
_VALIDATOR = jsonschema_rs.Draft7Validator(EMF_SCHEMA)

#: The units CloudWatch accepts (the specification's MetricDefinition.Unit).
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}


def emf_records(log: str) -> list[dict]:
    """Every EMF document in a log: a line that is a JSON object with an `_aws` member (Lambda may
    put a prefix before it, so the object is looked for from its first brace)."""
    records = []
    for line in log.splitlines():
        start = line.find('{"_aws"')
        if start < 0:
            continue
        records.append(json.loads(line[start:]))
    return records


def emf_problems(record: dict) -> list[str]:
    """What makes `record` an invalid EMF document: the schema, then the rules it cannot state
    (every referenced dimension and metric is a member of the root; metric values are numbers;
    dimension values are strings)."""
    problems = [f"{e.instance_path}: {e.message}" for e in _VALIDATOR.iter_errors(record)]
    for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", []):
            for name in dimension_set:
                if not isinstance(record.get(name), str):
                    problems.append(f"dimension {name} has no string value")
        for metric in directive.get("Metrics", []):
            value = record.get(metric.get("Name"))
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append(f"metric {metric.get('Name')} has no numeric value: {value!r}")
            if metric.get("Unit", "None") not in UNITS:
                problems.append(f"metric {metric.get('Name')} has an unknown unit {metric.get('Unit')!r}")
    return problems
