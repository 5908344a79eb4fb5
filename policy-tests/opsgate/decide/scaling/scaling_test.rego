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

	# asked once for the replicas actually needed: ceil(5 x 95 / 72.7) = 7, not a stream of +1
	decision.operation == {"type": "scale", "from": 5, "to": 7}
	decision.tier == "approve"
	"needs 7 replicas, above max_replicas 5" in decision.reasons
	"opsgate.govern.scaling.above_maximum" in decision.rules
}

test_step_algorithm_asks_one_more_beyond_max if {
	document := testdata.decide_with(
		[testdata.set("/metrics/cpu_percent", 95), testdata.set("/replicas", {"desired": 5, "ready": 5})],
		_step,
	)
	[decision] := document.decisions
	decision.operation == {"type": "scale", "from": 5, "to": 6}
	"needs 6 replicas, above max_replicas 5" in decision.reasons
}

_step := testdata.frontend_with([{"op": "replace", "path": "/spec/scaling/algorithm", "value": "step"}])

test_scale_up_exactly_at_threshold_is_not_over if {
	testdata.decide([testdata.set("/metrics/cpu_percent", 80)]).decisions == []
}

test_scale_up_just_over_threshold if {
	[decision] := testdata.decide([testdata.set("/metrics/cpu_percent", 80.5)]).decisions
	decision.operation == {"type": "scale", "from": 2, "to": 3}
}

test_scale_down_below_threshold_removes_one if {
	document := testdata.decide_with(
		[testdata.set("/metrics/cpu_percent", 20), testdata.set("/replicas", {"desired": 4, "ready": 4})],
		_step,
	)
	[decision] := document.decisions
	decision.operation == {"type": "scale", "from": 4, "to": 3}
	decision.tier == "allow"
	decision.reasons[0] == "cpu 20% < scale_down_threshold_percent 30%"
	decision.rules[0] == "opsgate.decide.scaling.scale_down"
}

test_scale_down_exactly_at_threshold_is_not_under if {
	document := testdata.decide_with(
		[testdata.set("/metrics/cpu_percent", 30), testdata.set("/replicas", {"desired": 4, "ready": 4})],
		_step,
	)
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

_step_ctx(changes) := object.union(_ctx(changes), {"blueprint": _step.frontend})

test_scale_down_one_replica_under_the_threshold if {
	scaling.scale_down(_step_ctx([testdata.set("/metrics/cpu_percent", 20), _replicas(4)])) == {
		"operation": {"type": "scale", "from": 4, "to": 3},
		"reason": "cpu 20% < scale_down_threshold_percent 30%",
		"rule": "opsgate.decide.scaling.scale_down",
		"refs": ["spec.scaling.metric", "spec.scaling.scale_down_threshold_percent", "spec.scaling.min_replicas"],
	}
	not scaling.scale_down(_step_ctx([testdata.set("/metrics/cpu_percent", 30), _replicas(4)]))
	not scaling.scale_down(_step_ctx([testdata.set("/metrics/cpu_percent", 20), _replicas(2)]))

	# the proportional algorithm has a rule of its own
	not scaling.scale_down(_ctx([testdata.set("/metrics/cpu_percent", 20), _replicas(4)]))
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

# --- proportional scaling (the default) ---------------------------------------------

_at(cpu, replicas, ticks) := _ctx([
	testdata.set("/metrics/cpu_percent", cpu),
	_replicas(replicas),
	testdata.set("/state/history", {"ticks": ticks}),
])

test_scale_up_asks_for_the_replicas_that_reach_the_target if {
	# ceil(2 x 150 / 72.7) = 5
	scaling.scale_up(_ctx([testdata.set("/metrics/cpu_percent", 150)])) == {
		"operation": {"type": "scale", "from": 2, "to": 5},
		"reason": "cpu 150% > scale_up_threshold_percent 80%: 5 replicas bring it to about 60% (target_utilization_percent 72.7%)",
		"rule": "opsgate.decide.scaling.scale_up",
		"refs": [
			"spec.scaling.metric",
			"spec.scaling.scale_up_threshold_percent",
			"spec.scaling.target_utilization_percent",
			"spec.scaling.max_step_up",
		],
	}
}

test_scale_up_at_least_one_replica_over_the_threshold if {
	# a target at the threshold: 81% at 2 replicas still needs 3, not 2.25 rounded within tolerance
	at_threshold := object.union(
		_ctx([testdata.set("/metrics/cpu_percent", 81)]),
		{"blueprint": testdata.frontend_with([{"op": "replace", "path": "/spec/scaling/target_utilization_percent", "value": 80}]).frontend},
	)
	scaling.scale_up(at_threshold).operation.to == 3
}

test_scale_up_limited_to_max_step_up_within_max_replicas if {
	wide := testdata.frontend_with([{"op": "replace", "path": "/spec/scaling/max_replicas", "value": 20}]).frontend
	ctx := object.union(_ctx([testdata.set("/metrics/cpu_percent", 300)]), {"blueprint": wide})
	scaling.scale_up(ctx).operation.to == 6 # 9 needed, 4 at a time

	# beyond max_replicas 5: up to it first (allowed), then the whole count, asked once
	scaling.scale_up(_ctx([testdata.set("/metrics/cpu_percent", 300)])).operation.to == 5
	scaling.scale_up(_ctx([testdata.set("/metrics/cpu_percent", 300), _replicas(5)])).operation.to == 21
	[[d.operation.to, d.tier] | some d in testdata.decide([testdata.set("/metrics/cpu_percent", 300)]).decisions] == [[5, "allow"]]
}

test_scale_up_counts_the_ready_pods if {
	# 85% measured on 2 ready of 4: ceil(2 x 85 / 72.7) = 3 needed, still one more than 4
	ctx := _ctx([testdata.set("/metrics/cpu_percent", 85), testdata.set("/replicas", {"desired": 4, "ready": 2})])
	scaling.scale_up(ctx).operation.to == 5
}

test_scale_down_to_the_highest_recommendation_of_the_window if {
	# 4 replicas at 20%: ceil(4 x 20 / 72.7) = 2, and every tick of 300 s recommended 2 or less
	proposal := scaling.scale_down_to_recommendation(_at(20, 4, testdata.ticks(300, 2, 150)))
	proposal == {
		"operation": {"type": "scale", "from": 4, "to": 2},
		"reason": "cpu 20% < target_utilization_percent 72.7% less tolerance_percent 10%: 2 replicas, the highest recommendation of the last 300s",
		"rule": "opsgate.decide.scaling.scale_down_to_recommendation",
		"refs": [
			"spec.scaling.metric",
			"spec.scaling.target_utilization_percent",
			"spec.scaling.tolerance_percent",
			"spec.scaling.scale_down_stabilization_seconds",
			"spec.scaling.max_step_down",
			"spec.scaling.min_replicas",
		],
	}

	# one tick of the window recommended 3: that is as far as it goes
	ticks := testdata.columns(array.concat(testdata.tick_rows(300, 2, 150), [{"at": "2026-02-10T11:58:00Z", "replicas": 3}]))
	scaling.scale_down_to_recommendation(_at(20, 4, ticks)).operation.to == 3
}

test_scale_down_waits_until_the_window_is_watched if {
	not scaling.scale_down_to_recommendation(_at(20, 4, testdata.ticks(285, 2, 150)))
	not scaling.scale_down_to_recommendation(_at(20, 4, []))
	scaling.notes(_at(20, 4, [])) == {"not scaling down yet: the runner has watched the service for less than scale_down_stabilization_seconds 300"}

	# a tick exactly at the start of the window covers it
	scaling.scale_down_to_recommendation(_at(20, 4, testdata.ticks(300, 2, 150)))
}

test_scale_down_inside_the_tolerance_needs_nothing if {
	# 72.7% less 10% is 65.5%: 66% at 3 replicas is left alone, 65% is not (ceil(3 x 65 / 72.7) = 3 still)
	not scaling.scale_down_to_recommendation(_at(66, 3, testdata.ticks(300, 2, 150)))
	not scaling.below_target(testdata.blueprints.frontend.spec.scaling, 66)
	scaling.below_target(testdata.blueprints.frontend.spec.scaling, 65)
	scaling.recommendation(_at(65, 3, [])) == 3
	scaling.recommendation(_at(40, 3, [])) == 2
}

test_scale_down_at_most_max_step_down if {
	scaling.scale_down_to_recommendation(_at(10, 5, testdata.ticks(300, 2, 150))).operation.to == 3
}

test_scale_down_waits_for_every_pod_to_be_ready if {
	ctx := _ctx([
		testdata.set("/metrics/cpu_percent", 20),
		testdata.set("/replicas", {"desired": 4, "ready": 3}),
		testdata.set("/state/history", {"ticks": testdata.ticks(300, 2, 150)}),
	])
	not scaling.scale_down_to_recommendation(ctx)
}

test_scale_down_withheld_while_a_target_is_missed_or_a_metric_unknown if {
	history := testdata.set("/state/history", {"ticks": testdata.ticks(300, 2, 150)})
	down := [testdata.set("/metrics/cpu_percent", 20), _replicas(4), history]
	scaling.scale_down_to_recommendation(_ctx(down))
	not scaling.scale_down_to_recommendation(_ctx(array.concat(down, [testdata.set("/metrics/latency_p95_ms", 250)])))
	not scaling.scale_down_to_recommendation(_ctx(array.concat(down, [testdata.set("/metrics/error_rate_percent", 2)])))
	not scaling.scale_down_to_recommendation(_ctx(array.concat(down, [testdata.remove("/metrics/memory_percent")])))
}

test_recommendation_for_each_algorithm if {
	scaling.recommendation(_at(150, 2, [])) == 5
	scaling.recommendation(_at(60, 2, [])) == 2
	scaling.recommendation(_at(5, 3, [])) == 2 # never below min_replicas
	not scaling.recommendation(_ctx([testdata.remove("/metrics/cpu_percent")]))
	scaling.recommendation(object.union(_at(150, 2, []), {"blueprint": _step.frontend})) == 3
	scaling.recommendation(object.union(_at(20, 4, []), {"blueprint": _step.frontend})) == 3
	scaling.recommendation(object.union(_at(50, 4, []), {"blueprint": _step.frontend})) == 4
}

# --- latency scale-out -----------------------------------------------------------------

_slow(latency, cpu, replicas, ticks) := _ctx([
	testdata.set("/metrics/cpu_percent", cpu),
	testdata.set("/metrics/latency_p95_ms", latency),
	_replicas(replicas),
	testdata.set("/state/history", {"ticks": ticks}),
])

test_latency_over_its_target_for_the_window_adds_a_replica if {
	scaling.latency_scale_out(_slow(250, 70, 2, testdata.ticks(120, 2, 250))) == {
		"operation": {"type": "scale", "from": 2, "to": 3},
		"reason": "latency_p95_ms 250 > spec.performance.latency_p95_ms 200 for 120s while cpu 70% is not over scale_up_threshold_percent 80%",
		"rule": "opsgate.decide.scaling.latency_scale_out",
		"refs": [
			"spec.performance.latency_p95_ms",
			"spec.scaling.latency_scale_out_seconds",
			"spec.scaling.scale_up_threshold_percent",
			"spec.scaling.max_replicas",
		],
	}
	[d.operation | some d in testdata.decide([
		testdata.set("/metrics/cpu_percent", 70),
		testdata.set("/metrics/latency_p95_ms", 250),
		testdata.set("/state/history", {"ticks": testdata.ticks(120, 2, 250)}),
	]).decisions] == [{"type": "scale", "from": 2, "to": 3}]
}

test_latency_scale_out_needs_the_whole_window if {
	not scaling.latency_scale_out(_slow(250, 70, 2, testdata.ticks(105, 2, 250)))
	not scaling.latency_scale_out(_slow(250, 70, 2, []))

	# one tick of the window under the target
	ticks := testdata.columns(array.concat(testdata.tick_rows(120, 2, 250), [{"at": "2026-02-10T11:59:50Z", "latency_p95_ms": 150}]))
	not scaling.latency_scale_out(_slow(250, 70, 2, ticks))

	# an unknown latency in the window is not over it
	unknown := testdata.columns(array.concat(testdata.tick_rows(120, 2, 250), [{"at": "2026-02-10T11:59:50Z", "latency_p95_ms": null}]))
	not scaling.latency_scale_out(_slow(250, 70, 2, unknown))

	# under the target at the start of the window, over since then: not yet
	late := testdata.columns(array.concat(testdata.tick_rows(105, 2, 250), [{"at": "2026-02-10T11:58:00Z", "latency_p95_ms": 150}]))
	not scaling.latency_scale_out(_slow(250, 70, 2, late))
}

test_latency_scale_out_only_when_utilization_does_not_explain_it if {
	not scaling.latency_scale_out(_slow(250, 85, 2, testdata.ticks(120, 2, 250)))
	scaling.latency_scale_out(_slow(250, 80, 2, testdata.ticks(120, 2, 250)))
}

test_latency_scale_out_stops_at_max_replicas_and_when_turned_off if {
	not scaling.latency_scale_out(_slow(250, 70, 5, testdata.ticks(120, 5, 250)))
	off := testdata.frontend_with([{"op": "replace", "path": "/spec/scaling/latency_scale_out_seconds", "value": 0}]).frontend
	not scaling.latency_scale_out(object.union(_slow(250, 70, 2, testdata.ticks(120, 2, 250)), {"blueprint": off}))
	not scaling.latency_scale_out(_slow(200, 70, 2, testdata.ticks(120, 2, 200)))
}

test_ticks_whose_columns_do_not_fit_are_no_history if {
	good := testdata.ticks(300, 2, 150)
	scaling.scale_down_to_recommendation(_at(20, 4, good))
	not scaling.scale_down_to_recommendation(_at(20, 4, object.union(good, {"replicas": [2]})))
	not scaling.scale_down_to_recommendation(_at(20, 4, object.union(good, {"seconds": array.concat(good.seconds, [-1])})))
	not scaling.scale_down_to_recommendation(_at(20, 4, [{"at": "2026-02-10T11:50:00Z", "replicas": 2}]))
}
