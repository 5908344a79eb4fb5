package opsgate.decide.resources_test

import data.opsgate.decide.resources
import data.opsgate.testdata

# the frontend scales on cpu (target 72.7%, min_replicas 2); memory: request
# 128Mi, minimum 64Mi, limit 256Mi; right_sizing p95 + 15%, 60 samples; band 10%

_memory(mebibytes) := _with_usage({"memory": testdata.usage(testdata.mebibytes(mebibytes), 70)}, [])

_cpu(millicores, changes) := _with_usage({"cpu": testdata.usage(millicores, 1440)}, changes)

_with_usage(usage, changes) := testdata.decide(array.concat([testdata.set("/state/history", {"usage": usage})], changes))

_to(document) := [[d.operation.resource, d.operation.to, d.tier] | some d in document.decisions]

# --- a resource the service does not scale on (memory) ---------------------------

test_in_band_step_when_it_reaches_the_recommendation if {
	# p95 100Mi + 15% = 115Mi; 128Mi is 11% above it; 128Mi - 10% = 116Mi is inside its band
	[step] := _memory(100).decisions
	step.operation == {"type": "adjust_resources", "resource": "memory", "field": "request", "from": "128Mi", "to": "116Mi"}
	step.tier == "allow"
	step.reasons == [
		"memory request 128Mi is outside resource_band_percent 10% of the 115Mi recommended by the recorded usage (p95 100Mi): one step within the band reaches it",
		"memory request 128Mi → 116Mi is a 9.38% change, within resource_band_percent 10%",
		"governance.agent_authority.allowed lists adjust_resources",
	]
	step.rules == [
		"opsgate.decide.resources.in_band_step",
		"opsgate.govern.resources.within_band",
		"opsgate.govern.authority.allowed",
	]
}

test_full_step_alone_when_a_step_would_not_reach if {
	# p95 60Mi + 15% = 69Mi: one change, approved once, not a stream of steps
	[full] := _memory(60).decisions
	[full.operation.to, full.tier] == ["69Mi", "approve"]
	full.reasons[0] == "memory request 128Mi is outside resource_band_percent 10% of the 69Mi recommended by the recorded usage (p95 60Mi): a step within the band would not reach it, so the full step"
	full.rules[0] == "opsgate.decide.resources.full_step"
}

test_never_both_steps_for_one_resource if {
	every mebibytes in numbers.range_step(10, 300, 7) {
		count(_memory(mebibytes).decisions) <= 1
	}
}

test_upward_too if {
	_to(_memory(130)) == [["memory", "140Mi", "allow"]] # 149.5Mi -> 150Mi recommended
	_to(_memory(150)) == [["memory", "173Mi", "approve"]] # 172.5Mi, rounded up
}

test_inside_the_band_needs_nothing if {
	_memory(105).decisions == [] # 120.75Mi -> 121Mi: 128Mi is 5.8% above
	_memory(110).decisions == [] # 126.5Mi -> 127Mi
}

test_band_edges if {
	not resources.outside_band(110, 100, 10)
	resources.outside_band(111, 100, 10)
	not resources.outside_band(90, 100, 10)
	resources.outside_band(89, 100, 10)
}

test_never_below_the_minimum_nor_above_the_limit if {
	_to(_memory(20)) == [["memory", "64Mi", "approve"]]
	_to(_memory(300)) == [["memory", "256Mi", "approve"]]
}

test_the_observed_limit_wins_over_the_blueprints if {
	document := _with_usage(
		{"memory": testdata.usage(testdata.mebibytes(300), 70)},
		[testdata.set("/resources/memory/limit", "200Mi")],
	)
	_to(document) == [["memory", "200Mi", "approve"]]
}

test_not_before_min_samples if {
	_with_usage({"memory": testdata.usage(testdata.mebibytes(60), 59)}, []).decisions == []
	_to(_with_usage({"memory": testdata.usage(testdata.mebibytes(60), 60)}, [])) == [["memory", "69Mi", "approve"]]
}

test_the_percentile_is_the_blueprints if {
	usage := {"samples": 70, "percentiles": {
		"50": testdata.mebibytes(60), "90": testdata.mebibytes(100), "95": testdata.mebibytes(100),
		"99": testdata.mebibytes(100), "100": testdata.mebibytes(100),
	}}
	_with_usage({"memory": usage}, []).decisions != []
	median := testdata.frontend_with([{"op": "replace", "path": "/spec/right_sizing/percentile", "value": 50}])
	document := testdata.decide_with([testdata.set("/state/history", {"usage": {"memory": usage}})], median)
	_to(document) == [["memory", "69Mi", "approve"]]
}

test_one_sample_of_usage_decides_nothing if {
	# right-sizing reads the recorded window, not the observation's usage
	testdata.decide([testdata.set("/resources/memory/usage", "20Mi"), testdata.set("/resources/cpu/usage", "10m")]).decisions == []
}

test_a_broken_summary_decides_nothing if {
	every summary in [
		{"samples": 70},
		{"samples": "40", "percentiles": testdata.usage(1, 1).percentiles},
		{"samples": 70, "percentiles": {"95": testdata.mebibytes(60)}},
		{"samples": 70, "percentiles": object.union(testdata.usage(1, 1).percentiles, {"95": -1})},
	] {
		_with_usage({"memory": summary}, []).decisions == []
	}
}

# --- the resource the service scales on (cpu) -------------------------------------

test_scaling_resource_lowered_at_min_replicas if {
	# cpu 60% of its request at 2 replicas (min): a peak of 62m sits at 72.7% of 86m
	_to(_cpu(62, [])) == [["cpu", "90m", "allow"]]

	# a peak of 30m at 72.7% is 42m: below the 50m minimum
	_to(_cpu(30, [])) == [["cpu", "50m", "approve"]]
}

test_scaling_resource_inside_the_band_needs_nothing if {
	_cpu(66, []).decisions == [] # 91m recommended (66m at 72.7%): 100m is 9.9% above
}

test_scaling_resource_waits_for_a_full_day_of_samples if {
	_with_usage({"cpu": testdata.usage(30, 1439)}, []).decisions == []
}

test_scaling_resource_never_raised if {
	# more usage is scaling's to answer, never a larger request
	_cpu(150, []).decisions == []
}

test_scaling_resource_left_alone_above_min_replicas if {
	_cpu(30, [testdata.set("/replicas", {"desired": 3, "ready": 3})]).decisions == []
}

test_scaling_resource_left_alone_while_scaling if {
	[decision] := _cpu(30, [testdata.set("/metrics/cpu_percent", 85)]).decisions
	decision.operation.type == "scale"
}

test_scaling_resource_left_alone_within_the_stabilization_window if {
	_cpu(30, [testdata.set("/state/last_operation_at", "2026-02-10T11:55:01Z")]).decisions == []
	_to(_cpu(30, [testdata.set("/state/last_operation_at", "2026-02-10T11:55:00Z")])) == [["cpu", "50m", "approve"]]
}

test_memory_is_the_scaling_resource_of_a_memory_scaled_service if {
	on_memory := testdata.frontend_with([{"op": "replace", "path": "/spec/scaling/metric", "value": "memory"}])
	history := {"usage": {
		"memory": testdata.usage(testdata.mebibytes(200), 70),
		"cpu": testdata.usage(30, 70),
	}}
	document := testdata.decide_with([testdata.set("/state/history", history), testdata.set("/metrics/memory_percent", 60)], on_memory)

	# memory is never raised now; cpu, not scaled on, gets p95 + 15% (34.5m -> 35m, minimum 50m)
	_to(document) == [["cpu", "50m", "approve"]]
}

# --- the rules, queried directly -------------------------------------------------

test_proposals_cpu_before_memory if {
	ctx := testdata.context([testdata.set("/state/history", {"usage": {
		"memory": testdata.usage(testdata.mebibytes(100), 70),
		"cpu": testdata.usage(62, 1440),
	}})])
	[[p.rule, p.operation.resource, p.operation.to] | some p in resources.proposals(ctx)] == [
		["opsgate.decide.resources.in_band_step", "cpu", "90m"],
		["opsgate.decide.resources.in_band_step", "memory", "116Mi"],
	]
}

test_proposals_none_without_observed_resources if {
	ctx := testdata.context([
		testdata.set("/state/history", {"usage": {"memory": testdata.usage(testdata.mebibytes(60), 70)}}),
		testdata.remove("/resources"),
	])
	resources.proposals(ctx) == []
	zero := testdata.context([
		testdata.set("/state/history", {"usage": {"memory": testdata.usage(testdata.mebibytes(60), 70)}}),
		testdata.set("/resources/memory/request", "0Mi"),
	])
	resources.proposals(zero) == []
}

test_refs_name_the_right_sizing_settings if {
	[decision] := _memory(60).decisions
	"spec.right_sizing" in decision.blueprint_refs
	"governance.resource_band_percent" in decision.blueprint_refs
}
