package opsgate.lib.observation_test

import data.opsgate.lib.observation
import data.opsgate.testdata

# 2026-02-10T12:00:00Z
_now_ns := 1770724800000000000

# --- metrics -------------------------------------------------------------------------

test_known_metrics_are_the_contracts if {
	observation.known_metrics == {"cpu_percent", "memory_percent", "latency_p95_ms", "error_rate_percent", "throughput_rps"}
}

test_metrics_keeps_only_known_metrics if {
	observation.metrics({"metrics": {"cpu_percent": 60, "memory_percent": 0, "queue_depth": 7}}) == {
		"cpu_percent": 60,
		"memory_percent": 0,
	}
}

test_metrics_leaves_out_what_is_not_a_plausible_measurement if {
	observation.metrics({"metrics": {
		"cpu_percent": -1,
		"memory_percent": "40",
		"latency_p95_ms": 150,
		"error_rate_percent": null,
		"throughput_rps": observation.measurement_limit,
	}}) == {"latency_p95_ms": 150}
}

test_metrics_just_below_the_limit_are_kept if {
	observation.metrics({"metrics": {"throughput_rps": observation.measurement_limit - 1, "cpu_percent": true}}) == {
		"throughput_rps": observation.measurement_limit - 1,
	}
}

test_metrics_missing_or_not_an_object_are_none if {
	every item in [{}, {"metrics": "high"}, {"metrics": [1, 2]}, {"metrics": {}}] {
		observation.metrics(item) == {}
	}
}

test_plausible_measurements if {
	every case in [
		{"values": {"a": 0, "b": 999999999}, "plausible": true},
		{"values": {"a": 1.5}, "plausible": true},
		{"values": {"a": 1, "b": -1}, "plausible": false},
		{"values": {"a": 1, "b": "2"}, "plausible": false},
		{"values": {"a": 1, "b": null}, "plausible": false},
		{"values": {"a": 1, "b": false}, "plausible": false},
		{"values": {"a": 1, "b": [1]}, "plausible": false},
		{"values": {"a": 1000000000}, "plausible": false},
		{"values": {}, "plausible": false},
		{"values": [1, 2], "plausible": false},
		{"values": 5, "plausible": false},
	] {
		_plausible(case.values) == case.plausible
	}
}

_plausible(values) if observation.plausible_measurements(values)

else := false

test_measurement_limit if {
	observation.measurement_limit == 1000000000
}

# --- replicas, pods, resources ------------------------------------------------------

test_replicas_whole_non_negative_counts if {
	observation.replicas({"desired": 3, "ready": 0, "updated": 3}) == {"desired": 3, "ready": 0}
}

test_replicas_anything_else_is_null if {
	every counts in [
		{"desired": -1, "ready": 0},
		{"desired": 2, "ready": 1.5},
		{"desired": "2", "ready": 2},
		{"desired": 2},
		{"ready": 2},
		{},
	] {
		observation.replicas(counts) == null
	}
}

test_pods_keeps_named_pods_with_a_whole_restart_count if {
	kept := {"name": "a", "restart_count": 0, "phase": "Running"}
	observation.pods({"pods": [
		kept,
		{"name": "b", "restart_count": 1.5},
		{"name": "c", "restart_count": -1},
		{"name": "d", "restart_count": "2"},
		{"name": 5, "restart_count": 0},
		{"restart_count": 0},
	]}) == [kept]
}

test_pods_missing_are_none if {
	observation.pods({}) == []
	observation.pods({"pods": "none"}) == []
}

test_amounts_in_base_units_where_they_parse if {
	observation.amounts({
		"cpu": {"request": "100m", "usage": "0.5", "limit": "lots"},
		"memory": {"request": "128Mi", "usage": 1024},
		"gpu": {"request": "1"},
	}) == {
		"cpu": {"request": 100, "usage": 500},
		"memory": {"request": 134217728, "usage": 1024},
	}
}

test_amounts_of_nothing_are_empty if {
	observation.amounts({}) == {"cpu": {}, "memory": {}}
}

# --- state and time -----------------------------------------------------------------

test_state_with_history if {
	observation.state({"last_operation_at": "2026-02-10T12:00:00Z", "breaker_open": false, "consecutive_failures": 1}) == {
		"breaker_open": false,
		"consecutive_failures": 1,
		"last_operation_at": "2026-02-10T12:00:00Z",
		"last_operation_ns": _now_ns,
	}
}

test_state_missing_or_not_an_object_is_no_history if {
	every raw in [{}, "fine", null, []] {
		observation.state(raw) == {
			"breaker_open": false,
			"consecutive_failures": 0,
			"last_operation_at": null,
			"last_operation_ns": null,
		}
	}
}

test_state_breaker_anything_but_false_is_open if {
	every case in [
		{"raw": {"breaker_open": false}, "open": false},
		{"raw": {"breaker_open": true}, "open": true},
		{"raw": {"breaker_open": "no"}, "open": true},
		{"raw": {"breaker_open": 0}, "open": true},
		{"raw": {"breaker_open": null}, "open": true},
	] {
		observation.state(case.raw).breaker_open == case.open
	}
}

test_state_unreadable_last_operation_time_has_no_nanoseconds if {
	state := observation.state({"last_operation_at": "an hour ago"})
	state.last_operation_at == "an hour ago"
	state.last_operation_ns == null
}

test_as_object if {
	observation.as_object({"a": 1}) == {"a": 1}
	every value in [null, "a", 1, [1], set()] {
		observation.as_object(value) == {}
	}
}

test_time_ns if {
	observation.time_ns("2026-02-10T12:00:00Z") == _now_ns
	observation.time_ns("2026-02-10T13:00:00+01:00") == _now_ns
	every value in ["noon", "2026-02-10", 1770724800, null] {
		observation.time_ns(value) == null
	}
}

# --- notes ---------------------------------------------------------------------------

test_notes_of_a_well_formed_observation_are_none if {
	observation.notes(testdata.observation) == []
}

test_notes_name_every_broken_value_sorted if {
	observation.notes(json.patch(testdata.observation, [
		testdata.set("/now", "noon"),
		testdata.set("/metrics/cpu_percent", "high"),
		testdata.set("/metrics/memory_percent", -3),
		testdata.set("/replicas", "two"),
		testdata.set("/pods/1/name", null),
		testdata.set("/state/breaker_open", "maybe"),
	])) == [
		`metrics.cpu_percent is not a plausible measurement (got "high"): treated as unknown`,
		"metrics.memory_percent is not a plausible measurement (got -3): treated as unknown",
		"now is not an RFC 3339 time: cooldowns can't be measured",
		"pods without a name or a whole restart_count were left out",
		"replicas.desired and replicas.ready must be whole non-negative numbers: replicas unknown",
		"state.breaker_open is not true or false: treated as open",
	]
}

test_notes_of_an_empty_observation if {
	# nothing to leave out of metrics, pods or state; replicas and time are unknown
	observation.notes({}) == [
		"now is not an RFC 3339 time: cooldowns can't be measured",
		"replicas.desired and replicas.ready must be whole non-negative numbers: replicas unknown",
	]
}

test_notes_say_what_was_left_out if {
	item := json.patch(testdata.observation, [
		testdata.set("/metrics/latency_p95_ms", 1e400),
		testdata.set("/pods/0/restart_count", 0.5),
	])
	not "latency_p95_ms" in object.keys(observation.metrics(item))
	[pod.name | some pod in observation.pods(item)] == ["frontend-2"]
	observation.notes(item) == [
		"metrics.latency_p95_ms is not a plausible measurement (got 1e400): treated as unknown",
		"pods without a name or a whole restart_count were left out",
	]
}

test_state_failure_count_that_is_not_a_count_opens_the_breaker if {
	every case in [
		{"count": 0, "open": false},
		{"count": 7, "open": false},
		{"count": -1, "open": true},
		{"count": 1.5, "open": true},
		{"count": "2", "open": true},
		{"count": null, "open": true},
	] {
		observation.state({"breaker_open": false, "consecutive_failures": case.count}).breaker_open == case.open
	}
}

test_state_failure_count_that_is_not_a_count_is_noted if {
	"state.consecutive_failures is not a whole number >= 0: the breaker is treated as open" in observation.notes({
		"service": "frontend",
		"state": {"consecutive_failures": "many"},
	})
	not "state.consecutive_failures is not a whole number >= 0: the breaker is treated as open" in observation.notes({
		"service": "frontend",
		"state": {"consecutive_failures": 4},
	})
}
