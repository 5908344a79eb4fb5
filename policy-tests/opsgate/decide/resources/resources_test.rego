package opsgate.decide.resources_test

import data.opsgate.decide.resources
import data.opsgate.testdata

_cpu(usage) := testdata.decide([testdata.set("/resources/cpu/usage", usage)])

test_in_band_step_request_100m_usage_70m_to_90m_allowed if {
	document := _cpu("70m")
	[step, full] := document.decisions
	step.operation == {"type": "adjust_resources", "resource": "cpu", "field": "request", "from": "100m", "to": "90m"}
	step.tier == "allow"
	step.reasons == [
		"cpu usage 70m is 70% of request 100m, outside resource_band_percent 10%: a step within the band",
		"cpu request 100m → 90m is a 10% change, within resource_band_percent 10%",
		"governance.agent_authority.allowed lists adjust_resources",
	]
	step.rules == [
		"opsgate.decide.resources.in_band_step",
		"opsgate.govern.resources.within_band",
		"opsgate.govern.authority.allowed",
	]
	full.operation.to == "70m"
	full.tier == "approve"
}

test_beyond_band_offered_beside_the_in_band_step if {
	[step, full] := _cpu("50m").decisions
	[step.operation.to, step.tier] == ["90m", "allow"]
	[full.operation.to, full.tier] == ["50m", "approve"]
	full.reasons == [
		"cpu usage 50m is 50% of request 100m: the full step to usage",
		"cpu request 100m → 50m is a 50% change, beyond resource_band_percent 10%",
		"governance.agent_authority.allowed lists adjust_resources",
	]
	full.rules[1] == "opsgate.govern.resources.beyond_band"
}

test_usage_inside_band_needs_nothing if {
	_cpu("91m").decisions == []
	_cpu("110m").decisions == []
}

test_usage_exactly_at_band_edge_needs_nothing if {
	_cpu("90m").decisions == []
}

test_step_up_toward_usage if {
	[step, full] := _cpu("150m").decisions
	[step.operation.to, step.tier] == ["110m", "allow"]
	[full.operation.to, full.tier] == ["150m", "approve"]
}

test_steps_never_go_below_the_minimum if {
	# frontend cpu minimum is 50m
	[step, full] := _cpu("10m").decisions
	[step.operation.to, full.operation.to] == ["90m", "50m"]
}

test_steps_never_go_above_the_limit if {
	# frontend cpu limit is 500m
	# both steps stop at the limit, so they are one and the same: offered once
	[step] := testdata.decide([testdata.set("/resources/cpu", {"request": "480m", "usage": "900m"})]).decisions
	step.operation.to == "500m"
	step.tier == "allow"
}

test_memory_in_band_step_rounds_to_whole_mebibytes if {
	[step, full] := testdata.decide([testdata.set("/resources/memory/usage", "80Mi")]).decisions
	step.operation == {"type": "adjust_resources", "resource": "memory", "field": "request", "from": "128Mi", "to": "116Mi"}
	step.tier == "allow"
	full.operation.to == "80Mi"
	full.tier == "approve"
}

test_memory_never_below_minimum if {
	# frontend memory minimum is 64Mi: the full step stops there
	[_, full] := testdata.decide([testdata.set("/resources/memory/usage", "20Mi")]).decisions
	full.operation.to == "64Mi"
}

test_unparsable_usage_means_no_resource_decision if {
	testdata.decide([testdata.set("/resources/cpu/usage", "lots")]).decisions == []
}

# --- the rules, queried directly -------------------------------------------------

_refs(resource) := [
	sprintf("spec.resources.%s.request", [resource]),
	sprintf("spec.resources.%s.minimum", [resource]),
	sprintf("spec.resources.%s.limit", [resource]),
	"governance.resource_band_percent",
]

test_proposals_in_band_step_and_full_step if {
	resources.proposals(testdata.context([testdata.set("/resources/cpu/usage", "70m")])) == [
		{
			"operation": {"type": "adjust_resources", "resource": "cpu", "field": "request", "from": "100m", "to": "90m"},
			"reason": "cpu usage 70m is 70% of request 100m, outside resource_band_percent 10%: a step within the band",
			"rule": "opsgate.decide.resources.in_band_step",
			"refs": _refs("cpu"),
		},
		{
			"operation": {"type": "adjust_resources", "resource": "cpu", "field": "request", "from": "100m", "to": "70m"},
			"reason": "cpu usage 70m is 70% of request 100m: the full step to usage",
			"rule": "opsgate.decide.resources.full_step",
			"refs": _refs("cpu"),
		},
	]
}

test_proposals_cpu_before_memory if {
	ctx := testdata.context([
		testdata.set("/resources/memory/usage", "256Mi"),
		testdata.set("/resources/cpu/usage", "200m"),
	])
	[[p.rule, p.operation.resource, p.operation.to] | some p in resources.proposals(ctx)] == [
		["opsgate.decide.resources.in_band_step", "cpu", "110m"],
		["opsgate.decide.resources.full_step", "cpu", "200m"],
		["opsgate.decide.resources.in_band_step", "memory", "140Mi"],
		["opsgate.decide.resources.full_step", "memory", "256Mi"],
	]
}

test_proposals_use_the_observed_limit_over_the_blueprints if {
	# the frontend's cpu limit is 500m; an observed limit of 300m stops the steps there
	ctx := testdata.context([testdata.set("/resources/cpu", {"request": "280m", "usage": "900m", "limit": "300m"})])
	[p.operation.to | some p in resources.proposals(ctx)] == ["300m"]
}

test_proposals_none_without_observed_resources if {
	resources.proposals(testdata.context([testdata.remove("/resources")])) == []
	resources.proposals(testdata.context([testdata.set("/resources/cpu/request", "0m")])) == []
}
