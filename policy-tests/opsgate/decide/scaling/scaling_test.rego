package opsgate.decide.scaling_test

import data.opsgate.decide.scaling
import data.opsgate.lib.verdict
import data.opsgate.testdata

_now := "2026-02-10T12:00:00Z"

test_scale_up_cpu_85_over_80_allows_scale_2_to_3 if {
	document := testdata.decide([testdata.set("/metrics/cpu_percent", 85)])
	operation := {"type": "scale", "from": 2, "to": 3}
	document.decisions == [{
		"id": verdict.decision_id("frontend", _now, operation),
		"operation": operation,
		"tier": "allow",
		"reasons": [
			"cpu 85% > scale_up_threshold_percent 80%",
			"3 replicas is within min_replicas 2 and max_replicas 5",
			"governance.agent_authority.allowed lists scale",
		],
		"rules": [
			"opsgate.decide.scaling.scale_up",
			"opsgate.govern.scaling.within_limits",
			"opsgate.govern.authority.allowed",
		],
		"blueprint_refs": [
			"governance.agent_authority.allowed",
			"spec.scaling.max_replicas",
			"spec.scaling.metric",
			"spec.scaling.min_replicas",
			"spec.scaling.scale_up_threshold_percent",
		],
		"suggestion": null,
		"dry_run": false,
	}]
	document.notes == []
}

test_scale_up_beyond_max_asks_approval_naming_the_limit if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 95),
		testdata.set("/replicas", {"desired": 5, "ready": 5}),
	])
	[decision] := document.decisions
	decision.operation == {"type": "scale", "from": 5, "to": 6}
	decision.tier == "approve"
	"needs 6 replicas, above max_replicas 5" in decision.reasons
	"opsgate.govern.scaling.above_maximum" in decision.rules
}

test_scale_up_exactly_at_threshold_is_not_over if {
	testdata.decide([testdata.set("/metrics/cpu_percent", 80)]).decisions == []
}

test_scale_up_just_over_threshold if {
	[decision] := testdata.decide([testdata.set("/metrics/cpu_percent", 80.5)]).decisions
	decision.operation == {"type": "scale", "from": 2, "to": 3}
}

test_scale_down_below_threshold_removes_one if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 20),
		testdata.set("/replicas", {"desired": 4, "ready": 4}),
	])
	[decision] := document.decisions
	decision.operation == {"type": "scale", "from": 4, "to": 3}
	decision.tier == "allow"
	decision.reasons[0] == "cpu 20% < scale_down_threshold_percent 30%"
	decision.rules[0] == "opsgate.decide.scaling.scale_down"
}

test_scale_down_exactly_at_threshold_is_not_under if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 30),
		testdata.set("/replicas", {"desired": 4, "ready": 4}),
	])
	document.decisions == []
}

test_scale_down_never_below_min_replicas if {
	document := testdata.decide([testdata.set("/metrics/cpu_percent", 5)])
	document.decisions == []
	document.notes == []
}

test_scale_down_withheld_while_a_metric_is_missing if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 10),
		testdata.set("/replicas", {"desired": 4, "ready": 4}),
		testdata.remove("/metrics/latency_p95_ms"),
	])
	document.decisions == []
	document.notes == ["not scaling down: metrics.latency_p95_ms unknown"]
}

test_scale_down_withheld_while_latency_misses_its_target if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 10),
		testdata.set("/metrics/latency_p95_ms", 250),
		testdata.set("/replicas", {"desired": 4, "ready": 4}),
	])
	document.decisions == []
	document.notes == ["not scaling down: latency_p95_ms 250 misses spec.performance.latency_p95_ms 200"]
}

test_scaling_metric_missing_means_no_decision_and_a_note if {
	document := testdata.decide([testdata.remove("/metrics/cpu_percent")])
	document.decisions == []
	document.notes == ["cpu utilization unknown (metrics.cpu_percent missing or invalid): no scaling decision"]
}

test_scaling_metric_not_a_number_is_unknown if {
	document := testdata.decide([testdata.set("/metrics/cpu_percent", "85")])
	document.decisions == []
	document.notes == [
		`metrics.cpu_percent is not a plausible measurement (got "85"): treated as unknown`,
		`cpu utilization unknown (metrics.cpu_percent missing or invalid): no scaling decision`,
	]
}

test_restore_minimum_after_manual_scale_down if {
	[decision] := testdata.decide([testdata.set("/replicas", {"desired": 1, "ready": 1})]).decisions
	decision.operation == {"type": "scale", "from": 1, "to": 2}
	decision.tier == "allow"
	decision.reasons[0] == "replicas 1 < min_replicas 2"
}

test_backend_scales_on_its_own_threshold if {
	document := testdata.decide([
		testdata.set("/service", "backend"),
		testdata.set("/metrics/cpu_percent", 76),
		testdata.set("/replicas", {"desired": 3, "ready": 3}),
	])
	[decision] := document.decisions
	decision.operation == {"type": "scale", "from": 3, "to": 4}
	decision.tier == "approve"
	"needs 4 replicas, above max_replicas 3" in decision.reasons
}

# --- the rules, queried directly -------------------------------------------------

# the frontend scales on cpu: up over 80%, down under 30%, 2 to 5 replicas
_ctx(changes) := testdata.context(changes)

_replicas(n) := testdata.set("/replicas", {"desired": n, "ready": n})

test_metric_of if {
	scaling.metric_of == {"cpu": "cpu_percent", "memory": "memory_percent"}
}

test_scale_up_one_replica_over_the_threshold if {
	scaling.scale_up(_ctx([testdata.set("/metrics/cpu_percent", 85)])) == {
		"operation": {"type": "scale", "from": 2, "to": 3},
		"reason": "cpu 85% > scale_up_threshold_percent 80%",
		"rule": "opsgate.decide.scaling.scale_up",
		"refs": ["spec.scaling.metric", "spec.scaling.scale_up_threshold_percent"],
	}
	not scaling.scale_up(_ctx([testdata.set("/metrics/cpu_percent", 80)]))
}

test_scale_up_reads_the_blueprints_metric if {
	ctx := object.union(
		_ctx([testdata.set("/metrics/memory_percent", 90)]),
		{"blueprint": {"spec": {"scaling": {"metric": "memory"}}}},
	)
	scaling.scale_up(ctx).reason == "memory 90% > scale_up_threshold_percent 80%"
}

test_scale_up_not_below_min_replicas if {
	# restore_minimum brings it back first
	not scaling.scale_up(_ctx([testdata.set("/metrics/cpu_percent", 95), _replicas(1)]))
}

test_scale_down_one_replica_under_the_threshold if {
	scaling.scale_down(_ctx([testdata.set("/metrics/cpu_percent", 20), _replicas(4)])) == {
		"operation": {"type": "scale", "from": 4, "to": 3},
		"reason": "cpu 20% < scale_down_threshold_percent 30%",
		"rule": "opsgate.decide.scaling.scale_down",
		"refs": ["spec.scaling.metric", "spec.scaling.scale_down_threshold_percent", "spec.scaling.min_replicas"],
	}
	not scaling.scale_down(_ctx([testdata.set("/metrics/cpu_percent", 30), _replicas(4)]))
	not scaling.scale_down(_ctx([testdata.set("/metrics/cpu_percent", 20), _replicas(2)]))
}

test_scale_down_withheld_while_error_rate_misses_its_target if {
	ctx := _ctx([
		testdata.set("/metrics/cpu_percent", 20),
		testdata.set("/metrics/error_rate_percent", 2),
		_replicas(4),
	])
	not scaling.scale_down(ctx)
	scaling.notes(ctx) == {"not scaling down: error_rate_percent 2 misses spec.performance.error_rate_percent 1"}
}

test_restore_minimum if {
	scaling.restore_minimum(_ctx([_replicas(0)])) == {
		"operation": {"type": "scale", "from": 0, "to": 2},
		"reason": "replicas 0 < min_replicas 2",
		"rule": "opsgate.decide.scaling.restore_minimum",
		"refs": ["spec.scaling.min_replicas"],
	}
	not scaling.restore_minimum(_ctx([_replicas(2)]))
}

test_proposals_collect_the_rules if {
	scaling.proposals(_ctx([])) == []
	[p.rule | some p in scaling.proposals(_ctx([testdata.set("/metrics/cpu_percent", 95), _replicas(1)]))] == [
		"opsgate.decide.scaling.restore_minimum",
	]
	[p.operation.to | some p in scaling.proposals(_ctx([testdata.set("/metrics/cpu_percent", 95), _replicas(3)]))] == [4]
}

test_notes_when_replicas_or_the_metric_are_unknown if {
	scaling.notes(_ctx([])) == set()
	scaling.notes(_ctx([testdata.set("/replicas", "two")])) == {"replica counts unknown: no scaling decision"}
	scaling.notes(_ctx([testdata.remove("/metrics/cpu_percent")])) == {
		"cpu utilization unknown (metrics.cpu_percent missing or invalid): no scaling decision",
	}
}
