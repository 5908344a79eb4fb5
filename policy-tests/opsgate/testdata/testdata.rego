# METADATA
# title: Test data
# description: |
#   What the policy tests run against: the repo's blueprints compiled by
#   `opsgate compile blueprints` (compiled/data.json, loaded by opa test as
#   data.opsgate.testdata.compiled; regenerate it with
#   `python scripts/policy_testdata.py`), a stable observation, and helpers
#   that run the entrypoints on them.
# custom:
#   id: opsgate.testdata
package opsgate.testdata

import data.opsgate.lib.observation as observation_lib
import data.opsgate.main

# METADATA
# title: Observation
# description: A stable frontend observation; tests patch it.
# custom:
#   id: opsgate.testdata.observation
observation := {
	"service": "frontend",
	"now": "2026-02-10T12:00:00Z",
	"replicas": {"desired": 2, "ready": 2},
	"metrics": {
		"cpu_percent": 60,
		"memory_percent": 40,
		"latency_p95_ms": 150,
		"error_rate_percent": 0.1,
		"throughput_rps": 80,
	},
	"resources": {
		"cpu": {"request": "100m", "usage": "95m"},
		"memory": {"request": "128Mi", "usage": "120Mi"},
	},
	"pods": [
		{"name": "frontend-1", "phase": "Running", "ready": true, "restart_count": 0, "reason": null},
		{"name": "frontend-2", "phase": "Running", "ready": true, "restart_count": 0, "reason": null},
	],
	"state": {"last_operation_at": null, "consecutive_failures": 0, "breaker_open": false},
}

# METADATA
# title: Decide
# description: main.decide on the stable observation changed by JSON patch operations.
# custom:
#   id: opsgate.testdata.decide
decide(changes) := document if {
	document := main.decide with input as json.patch(observation, changes)
		with data.opsgate.blueprints as blueprints
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Enforce
# description: main.enforce on a request, with the test blueprints.
# custom:
#   id: opsgate.testdata.enforce
enforce(request) := verdict if {
	verdict := main.enforce with input as request
		with data.opsgate.blueprints as blueprints
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Enforce with blueprints
# description: main.enforce on a request, with the given compiled blueprints.
# custom:
#   id: opsgate.testdata.enforce_with
enforce_with(request, compiled) := verdict if {
	verdict := main.enforce with input as request
		with data.opsgate.blueprints as compiled
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Authority
# description: main.authority for an actor, with the given compiled blueprints.
# custom:
#   id: opsgate.testdata.authority
authority(request, compiled) := answer if {
	answer := main.authority with input as request
		with data.opsgate.blueprints as compiled
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Decide with blueprints
# description: main.decide on the stable observation changed by JSON patch operations, with the given blueprints.
# custom:
#   id: opsgate.testdata.decide_with
decide_with(changes, compiled) := document if {
	document := main.decide with input as json.patch(observation, changes)
		with data.opsgate.blueprints as compiled
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Context
# description: |
#   The context the entrypoints hand to the concerns (main's _context), for
#   the stable observation changed by JSON patch operations: tests of one
#   concern query its rules with it directly. Keep it in step with main.
# custom:
#   id: opsgate.testdata.context
context(changes) := {
	"service": item.service,
	"blueprint": blueprints[item.service],
	"catalog": data.opsgate.catalog.operations,
	"metrics": observation_lib.metrics(item),
	"replicas": observation_lib.replicas(observation_lib.as_object(object.get(item, "replicas", {}))),
	"pods": observation_lib.pods(item),
	"resources": observation_lib.amounts(observation_lib.as_object(object.get(item, "resources", {}))),
	"state": observation_lib.state(object.get(item, "state", {})),
	"ticks": observation_lib.ticks(object.get(item, "state", {})),
	"requests": observation_lib.requests(object.get(item, "state", {})),
	"usage": {resource: summary |
		some resource in ["cpu", "memory"]
		summary := observation_lib.usage_summary(object.get(item, "state", {}), resource)
	},
	"now": object.get(item, "now", null),
	"actor": object.get(item, "actor", null),
	"now_ns": observation_lib.time_ns(object.get(item, "now", null)),
} if {
	item := json.patch(observation, changes)
}

# METADATA
# title: Usage summary
# description: A usage summary of the runner's history whose every percentile is the amount given.
# custom:
#   id: opsgate.testdata.usage
usage(amount, samples) := {
	"samples": samples,
	"percentiles": {"50": amount, "90": amount, "95": amount, "99": amount, "100": amount},
}

# METADATA
# title: Mebibytes
# description: An amount of memory in bytes.
# custom:
#   id: opsgate.testdata.mebibytes
mebibytes(n) := n * 1048576

# METADATA
# title: Ticks
# description: |
#   The runner's history of ticks every 15 seconds for the given number of
#   seconds before the stable observation's now, each with the replicas and
#   latency given, as the runner hands them over (columns).
# custom:
#   id: opsgate.testdata.ticks
ticks(seconds, replicas, latency) := columns(tick_rows(seconds, replicas, latency))

# METADATA
# title: Tick rows
# description: The ticks of ticks(), one object each, to add rows to before columns().
# custom:
#   id: opsgate.testdata.tick_rows
tick_rows(seconds, replicas, latency) := [{"at": at, "replicas": replicas, "latency_p95_ms": latency} |
	some back in numbers.range_step(15, seconds, 15)
	at := (time.parse_rfc3339_ns(observation.now) / 1000000000) - back
]

# METADATA
# title: Columns
# description: Ticks given one object each (at - seconds since the epoch or an RFC 3339 time - replicas, latency_p95_ms) as the runner's columns.
# custom:
#   id: opsgate.testdata.columns
columns(rows) := {
	"seconds": [_seconds(row.at) | some row in rows],
	"replicas": [object.get(row, "replicas", null) | some row in rows],
	"latency_p95_ms": [object.get(row, "latency_p95_ms", null) | some row in rows],
}

_seconds(at) := at if is_number(at)

_seconds(at) := time.parse_rfc3339_ns(at) / 1000000000 if is_string(at)

# METADATA
# title: Frontend changed
# description: The test blueprints with the frontend blueprint changed by JSON patch operations.
# custom:
#   id: opsgate.testdata.frontend_with
frontend_with(changes) := object.union(blueprints, {"frontend": json.patch(blueprints.frontend, changes)})

# METADATA
# title: Request
# description: An enforce request for the frontend, 2 replicas, no history.
# custom:
#   id: opsgate.testdata.request
request(operation) := {
	"service": "frontend",
	"operation": operation,
	"now": "2026-02-10T12:00:00Z",
	"replicas": {"desired": 2, "ready": 2},
	"state": {"last_operation_at": null, "consecutive_failures": 0, "breaker_open": false},
}

# METADATA
# title: Set
# description: A JSON patch operation that sets a value.
# custom:
#   id: opsgate.testdata.set
set(path, value) := {"op": "add", "path": path, "value": value}

# METADATA
# title: Remove
# description: A JSON patch operation that removes a value.
# custom:
#   id: opsgate.testdata.remove
remove(path) := {"op": "remove", "path": path}

# METADATA
# title: Operations
# description: The operations of a decision document, in order.
# custom:
#   id: opsgate.testdata.operations
operations(document) := [d.operation | some d in document.decisions]

# METADATA
# title: Tiers
# description: Each decision's operation and tier, in order.
# custom:
#   id: opsgate.testdata.tiers
tiers(document) := [[d.operation, d.tier] | some d in document.decisions]

# METADATA
# title: Blueprints
# description: |
#   The repo's blueprints as `opsgate compile blueprints` writes them:
#   compiled/data.json, generated by scripts/policy_testdata.py.
# custom:
#   id: opsgate.testdata.blueprints
blueprints := data.opsgate.testdata.compiled.blueprints

# METADATA
# title: Bundle
# description: |
#   The compiled bundle document with a fixed revision: the compiler's
#   revision hashes the policy files too, so it changes with every edit.
# custom:
#   id: opsgate.testdata.bundle
bundle := object.union(data.opsgate.testdata.compiled.bundle, {"revision": "test-revision"})
