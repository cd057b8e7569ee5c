#!/usr/bin/env python3
"""Checks the Grafana dashboard and the Prometheus rules against the server's metrics.

    python3 scripts/check-dashboard.py DASHBOARD.json [--rules RULES.yml ...]

The dashboard must parse, have unique panel ids, and every panel a title, a gridPos, a
datasource that is the dashboard's `datasource` variable, and queries. Every metric a PromQL
expression names (`learnpulse_*`, in the dashboard's queries and variables and in the rules'
`expr`) must be one the Rust sources under crates/ register with `metrics::counter!`,
`gauge!`, `histogram!` or `describe_*!`; `_bucket`, `_sum` and `_count` only after a histogram's
name, and a histogram never without one of them (the exporter renders histograms, not
summaries: crates/server/src/metrics.rs sets buckets for all of them). Standard library only;
run from anywhere (paths are relative to the repository root).
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ROOT / "crates"
DS_VARIABLE = {"${datasource}", "$datasource", "[[datasource]]"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

REGISTRATION = re.compile(
    r"\b(counter|gauge|histogram|describe_counter|describe_gauge|describe_histogram)!\s*\(\s*"
    r'"(learnpulse_[A-Za-z0-9_]+)"'
)
METRIC_TOKEN = re.compile(r"(?<![A-Za-z0-9_:])learnpulse_[A-Za-z0-9_]+")
STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def metrics_in_code():
    """{name: kind} for every metric the Rust sources register (tests and target/ aside)."""
    found = {}
    for path in sorted(CRATES.rglob("*.rs")):
        parts = path.relative_to(CRATES).parts
        if "target" in parts or "tests" in parts:
            continue
        for kind, name in REGISTRATION.findall(path.read_text(encoding="utf-8", errors="replace")):
            kind = kind.removeprefix("describe_")
            if found.get(name, kind) != kind:
                sys.exit(f"error: {name} is registered both as a {found[name]} and a {kind}")
            found[name] = kind
    return found


def names_in(expr):
    """The learnpulse_* metric names a PromQL expression mentions (string literals aside)."""
    return set(METRIC_TOKEN.findall(STRING_LITERAL.sub('""', expr)))


def check_name(token, known):
    """None if `token` is exported by the server, else why not."""
    kind = known.get(token)
    if kind == "histogram":
        return f"{token} is a histogram: query {token}_bucket, _sum or _count"
    if kind:
        return None
    for suffix in HISTOGRAM_SUFFIXES:
        base = token.removesuffix(suffix)
        if base != token and base in known:
            if known[base] == "histogram":
                return None
            return f"{token}: {base} is a {known[base]}, not a histogram"
    return f"{token} is not registered anywhere under crates/"


def all_panels(panels):
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def refers_to_variable(datasource):
    if isinstance(datasource, dict):
        return datasource.get("uid") in DS_VARIABLE
    return datasource in DS_VARIABLE


def check_dashboard(path, known, errors):
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        errors.append(f"{path}: {e}")
        return {}
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    for key in ("uid", "title", "schemaVersion", "panels"):
        if key not in dashboard:
            errors.append(f"{where}: no {key}")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append(f"{where}: no `datasource` variable of type datasource (prometheus)")
    exprs = []  # (where, expr)
    for name, variable in variables.items():
        if variable.get("type") != "query":
            continue
        if not refers_to_variable(variable.get("datasource")):
            errors.append(f"{where}: variable {name}: datasource is not the `datasource` variable")
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else (query or "")
        exprs.append((f"variable {name}", query))

    ids = {}
    counts = {"panels": 0, "rows": 0, "queries": 0}
    for panel in all_panels(dashboard.get("panels", [])):
        label = f"panel {panel.get('id')} ({panel.get('title') or 'untitled'})"
        if "id" not in panel:
            errors.append(f"{where}: {label}: no id")
        elif panel["id"] in ids:
            errors.append(f"{where}: {label}: id also used by {ids[panel['id']]}")
        else:
            ids[panel["id"]] = label
        if not str(panel.get("title", "")).strip():
            errors.append(f"{where}: {label}: no title")
        if "gridPos" not in panel:
            errors.append(f"{where}: {label}: no gridPos")
        if panel.get("type") == "row":
            counts["rows"] += 1
            continue
        counts["panels"] += 1
        if not refers_to_variable(panel.get("datasource")):
            errors.append(f"{where}: {label}: datasource is not the `datasource` variable")
        targets = panel.get("targets") or []
        if not targets:
            errors.append(f"{where}: {label}: no targets")
        for target in targets:
            if "datasource" in target and not refers_to_variable(target["datasource"]):
                errors.append(f"{where}: {label}: target {target.get('refId')}: datasource is not the variable")
            expr = target.get("expr", "")
            if not expr.strip():
                errors.append(f"{where}: {label}: target {target.get('refId')}: no expr")
            counts["queries"] += 1
            exprs.append((label, expr))

    used = set()
    for label, expr in exprs:
        for token in sorted(names_in(expr)):
            used.add(token)
            problem = check_name(token, known)
            if problem:
                errors.append(f"{where}: {label}: {problem}")
    print(f"dashboard {where}: {counts['panels']} panels in {counts['rows']} rows, "
          f"{counts['queries']} queries, {len(used)} metric names")
    return used


def rule_exprs(text):
    """(line number, expr) of every `expr:` in a rules file, block scalars included (no PyYAML)."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*)$", lines[i])
        if not m:
            i += 1
            continue
        start, indent, value = i + 1, len(m.group(1)), m.group(2).strip()
        i += 1
        if value[:1] in ("|", ">"):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            value = "\n".join(block)
        elif value[:1] in ("'", '"'):
            value = value[1:-1]
        found.append((start, value))
    return found


def check_rules(path, known, errors):
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        errors.append(f"{path}: {e}")
        return set()
    used = set()
    exprs = rule_exprs(text)
    for line, expr in exprs:
        for token in sorted(names_in(expr)):
            used.add(token)
            problem = check_name(token, known)
            if problem:
                errors.append(f"{where}:{line}: {problem}")
    # Runbook anchors follow the alert's name: docs/operations.md#alert-<name in lower case>.
    alerts = re.findall(r"^\s*-\s+alert:\s*(\S+)", text, re.M)
    for alert in alerts:
        block = text[text.index(f"alert: {alert}"):]
        runbook = re.search(r"runbook_url:\s*\"?([^\"\n]+)", block)
        want = f"docs/operations.md#alert-{alert.lower()}"
        if not runbook or runbook.group(1).strip() != want:
            errors.append(f"{where}: alert {alert}: runbook_url should be {want}")
    operations = ROOT / "docs" / "operations.md"
    if operations.exists():
        anchors = set()
        for heading in re.findall(r"^#+\s+(.*)$", operations.read_text(encoding="utf-8"), re.M):
            anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
        anchors |= set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', operations.read_text(encoding="utf-8")))
        missing = [a for a in alerts if f"alert-{a.lower()}" not in anchors]
        if missing:
            print(f"warning: docs/operations.md has no section for {', '.join(missing)}")
    print(f"rules {where}: {len(alerts)} alerts, {len(exprs)} expressions, {len(used)} metric names")
    return used


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboard", type=Path)
    parser.add_argument("--rules", type=Path, action="append", default=[])
    args = parser.parse_args()
    known = metrics_in_code()
    if not known:
        sys.exit(f"error: found no metric registrations under {CRATES}")
    errors = []
    used = check_dashboard(args.dashboard.resolve(), known, errors)
    for rules in args.rules:
        used |= check_rules(rules.resolve(), known, errors)
    bases = {t for t in used if t in known} | {
        t.removesuffix(s) for t in used for s in HISTOGRAM_SUFFIXES if t.removesuffix(s) in known
    }
    print(f"metrics: {len(known)} registered in crates/, {len(bases)} of them used")
    if errors:
        print(f"{len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
