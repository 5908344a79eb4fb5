# METADATA
# title: Observation checks
# description: |
#   Read an observation (or the context of an enforce request) defensively.
#   Only values that fit the contract come through; everything else is left
#   out and described in a note, so a missing or broken value means
#   "unknown" and no decision can rest on it.
# custom:
#   id: opsgate.lib.observation
package opsgate.lib.observation

import data.opsgate.lib.quantity

# METADATA
# title: Known metrics
# description: The metric names of the observation contract.
# custom:
#   id: opsgate.lib.observation.known_metrics
known_metrics := {"cpu_percent", "memory_percent", "latency_p95_ms", "error_rate_percent", "throughput_rps"}

_resources := ["cpu", "memory"]

_resource_fields := ["request", "usage", "limit"]

# METADATA
# title: Metrics
# description: The metrics that are non-negative numbers; the rest are unknown.
# custom:
#   id: opsgate.lib.observation.metrics
metrics(observation) := object.filter(observation.metrics, known_metrics) if {
	plausible_measurements(observation.metrics)
} else := {name: value |
	some name in known_metrics
	value := observation.metrics[name]
	_measurement(value)
}

# METADATA
# title: Plausible measurements
# description: |
#   True when the object has values and every one of them is a plausible
#   measurement: a number >= 0 and below measurement_limit.
# custom:
#   id: opsgate.lib.observation.plausible_measurements
plausible_measurements(values) if {
	# with Rego's ordering of values (null < booleans < numbers < strings <
	# arrays ...) all are numbers when the smallest and the largest are;
	# two builtins instead of a loop, as this runs for every service
	is_object(values)
	listed := [value | some value in values]
	lowest := min(listed)
	is_number(lowest)
	lowest >= 0
	highest := max(listed)
	is_number(highest)
	highest < measurement_limit
}

# METADATA
# title: Replicas
# description: Desired and ready replica counts, when both are whole non-negative numbers.
# custom:
#   id: opsgate.lib.observation.replicas
replicas(replica_counts) := {"desired": replica_counts.desired, "ready": replica_counts.ready} if {
	_count(replica_counts.desired)
	_count(replica_counts.ready)
} else := null

# METADATA
# title: Pods
# description: The pods that have a name and a whole restart count.
# custom:
#   id: opsgate.lib.observation.pods
pods(observation) := [pod |
	some pod in observation.pods
	is_string(pod.name)
	_count(pod.restart_count)
]

# METADATA
# title: Resource amounts
# description: Requests, usage and limits as millicores (cpu) and bytes (memory), where they parse.
# custom:
#   id: opsgate.lib.observation.amounts
amounts(observed_resources) := {resource: fields |
	some resource in _resources
	fields := {field: amount |
		some field in _resource_fields
		amount := quantity.amount(resource, observed_resources[resource][field])
	}
}

# METADATA
# title: State
# description: |
#   The runner's state for the service. A breaker flag that is not exactly
#   true or false, or a failure count that is not a whole number >= 0, counts
#   as open (fail closed); a missing state is a service with no history.
# custom:
#   id: opsgate.lib.observation.state
state(raw) := _state(as_object(raw))

_state(raw) := {
	"breaker_open": _breaker_open(raw),
	"consecutive_failures": object.get(raw, "consecutive_failures", 0),
	"last_operation_at": object.get(raw, "last_operation_at", null),
	"last_operation_ns": time_ns(object.get(raw, "last_operation_at", null)),
}

# METADATA
# title: History ticks
# description: |
#   The runner's record of the service's last ticks (state.history.ticks, as
#   columns: seconds since the epoch, the replicas the policies recommended,
#   the p95 latency observed), one object a tick: at_ns, replicas,
#   latency_p95_ms. Columns of different lengths, or a time that is not a
#   whole number >= 0, give no ticks; a value that is not a plausible
#   measurement is null (unknown).
# custom:
#   id: opsgate.lib.observation.ticks
ticks(raw_state) := [tick |
	columns := as_object(object.get(as_object(raw_state), ["history", "ticks"], {}))
	times := _array(object.get(columns, "seconds", []))
	replicas := _array(object.get(columns, "replicas", []))
	latencies := _array(object.get(columns, "latency_p95_ms", []))
	count(replicas) == count(times)
	count(latencies) == count(times)
	every seconds in times {
		_count(seconds)
	}
	some i, seconds in times
	tick := {
		"at_ns": seconds * 1000000000,
		"replicas": _measurement_or_null(replicas[i]),
		"latency_p95_ms": _measurement_or_null(latencies[i]),
	}
]

# METADATA
# title: Requests
# description: |
#   The runner's own approval requests for the service that bear on a new
#   one (state.requests): pending, rejected or expired, each with its id,
#   operation and when it was asked or answered (at_ns). An entry that does
#   not fit is left out, so it holds nothing back.
# custom:
#   id: opsgate.lib.observation.requests
requests(raw_state) := [{
	"id": raw.id,
	"status": raw.status,
	"operation": raw.operation,
	"at_ns": time.parse_rfc3339_ns(raw.at),
} |
	some raw in _array(object.get(as_object(raw_state), "requests", []))
	is_string(raw.id)
	raw.status in {"pending", "rejected", "expired"}
	is_object(raw.operation)
	is_string(raw.operation.type)
	is_string(raw.at)
]

# METADATA
# title: Usage summary
# description: |
#   The per-pod usage the runner recorded for one resource
#   (state.history.usage.<resource>): how many samples, and percentiles of
#   them in the resource's base unit (millicores, bytes). Undefined unless
#   every part is a whole count or an amount >= 0, so no right-sizing rests
#   on a broken summary.
# custom:
#   id: opsgate.lib.observation.usage_summary
usage_summary(raw_state, resource) := {"samples": summary.samples, "percentiles": summary.percentiles} if {
	summary := as_object(raw_state).history.usage[resource]
	_count(summary.samples)
	is_object(summary.percentiles)

	# all five there, all numbers >= 0 and below 10^15 (millicores, bytes): as in
	# plausible_measurements, two builtins instead of a loop, for every service
	percentiles := summary.percentiles
	values := [percentiles["50"], percentiles["90"], percentiles["95"], percentiles["99"], percentiles["100"]]
	lowest := min(values)
	is_number(lowest)
	lowest >= 0
	highest := max(values)
	is_number(highest)
	highest < 1000000000000000
}

_array(value) := value if is_array(value)

else := []

_measurement_or_null(value) := value if _measurement(value)

else := null

# METADATA
# title: As object
# description: The value itself when it is an object, else an empty object, so lookups can't fail.
# custom:
#   id: opsgate.lib.observation.as_object
as_object(value) := value if is_object(value)

else := {}

_breaker_open(raw) := false if {
	not "breaker_open" in object.keys(raw)
	_whole(object.get(raw, "consecutive_failures", 0))
} else := false if {
	raw.breaker_open == false
	_whole(object.get(raw, "consecutive_failures", 0))
} else := true

_whole(value) if {
	is_number(value)
	value >= 0
	value == floor(value)
}

# METADATA
# title: Time in nanoseconds
# description: An RFC 3339 time in nanoseconds since the epoch; null when absent or not a time.
# custom:
#   id: opsgate.lib.observation.time_ns
time_ns(value) := time.parse_rfc3339_ns(value) if {
	is_string(value)
} else := null

# METADATA
# title: Notes
# description: One line for every value of the observation that breaks the contract and was left out.
# custom:
#   id: opsgate.lib.observation.notes
notes(observation) := sort(array.concat(_metric_notes(observation), [note |
	some found in [
		{n | n := _replica_note(observation)},
		{n | n := _pod_note(observation)},
		{n | n := _breaker_note(observation)},
		{n | n := _failures_note(observation)},
		{n | n := _time_note(observation)},
	]
	some note in found
]))

_metric_notes(observation) := [] if {
	plausible_measurements(observation.metrics)
} else := [note |
	some name in known_metrics
	value := observation.metrics[name]
	not _measurement(value)
	note := sprintf("metrics.%s is not a plausible measurement (got %s): treated as unknown", [name, json.marshal(value)])
]

_replica_note(observation) := concat("", [
	"replicas.desired and replicas.ready must be whole non-negative numbers: ",
	"replicas unknown",
]) if {
	replicas(as_object(object.get(observation, "replicas", {}))) == null
}

_pod_note(observation) := "pods without a name or a whole restart_count were left out" if {
	count(pods(observation)) != count(object.get(observation, "pods", []))
}

_breaker_note(observation) := "state.breaker_open is not true or false: treated as open" if {
	not is_boolean(object.get(observation, ["state", "breaker_open"], false))
}

_failures_note(observation) := concat("", [
	"state.consecutive_failures is not a whole number >= 0: ",
	"the breaker is treated as open",
]) if {
	not _whole(object.get(observation, ["state", "consecutive_failures"], 0))
}

_time_note(observation) := "now is not an RFC 3339 time: cooldowns can't be measured" if {
	time_ns(object.get(observation, "now", null)) == null
}

_non_negative(value) if {
	is_number(value)
	value >= 0
}

# METADATA
# title: Largest plausible measurement
# description: Metric values at or above this (overflowed or garbage numbers) are treated as unknown.
# custom:
#   id: opsgate.lib.observation.measurement_limit
measurement_limit := 1000000000

_measurement(value) if {
	_non_negative(value)
	value < measurement_limit
}

_count(value) if {
	_non_negative(value)
	value == floor(value)
}
