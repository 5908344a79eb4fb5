package opsgate.govern.classify_test

import data.opsgate.govern.classify
import data.opsgate.testdata

_ctx := testdata.context([])

_rules(operation, ctx) := {f.rule | some f in classify.findings(operation, ctx)}

# one fitting operation of every type in the catalog, and the built-in rule it reaches
_routes := [
	{"op": {"type": "scale", "to": 3}, "rule": "opsgate.govern.scaling.within_limits"},
	{"op": {"type": "adjust_resources", "resource": "cpu", "to": "95m"}, "rule": "opsgate.govern.resources.within_band"},
	{"op": {"type": "restart_pod", "pod": "frontend-1"}, "rule": "opsgate.govern.recovery.restart"},
	{"op": {"type": "rollback"}, "rule": "opsgate.govern.recovery.rollback"},
	{"op": {"type": "delete_pod", "name": "frontend-1"}, "rule": "opsgate.govern.recovery.delete_pod"},
	{
		"op": {"type": "update_configmap", "name": "frontend-config", "changes": {"LOG_LEVEL": "INFO"}},
		"rule": "opsgate.govern.configuration.plain_keys",
	},
	{"op": {"type": "update_strategy", "changes": {"max_surge": 2}}, "rule": "opsgate.govern.configuration.strategy"},
	{
		"op": {"type": "update_health_checks", "probe": "readiness", "changes": {"period_seconds": 5}},
		"rule": "opsgate.govern.configuration.health_checks",
	},
	{"op": {"type": "delete_deployment", "name": "frontend"}, "rule": "opsgate.govern.protected.delete_deployment"},
	{"op": {"type": "delete_service", "name": "frontend"}, "rule": "opsgate.govern.protected.other_objects"},
	{"op": {"type": "delete_pvc", "name": "data"}, "rule": "opsgate.govern.protected.other_objects"},
	{"op": {"type": "modify_secret", "name": "db"}, "rule": "opsgate.govern.protected.other_objects"},
	{"op": {"type": "modify_network_policy", "name": "default-deny"}, "rule": "opsgate.govern.protected.other_objects"},
	{"op": {"type": "modify_rbac", "name": "runner"}, "rule": "opsgate.govern.protected.other_objects"},
]

# --- the rules, queried directly -------------------------------------------------

test_findings_route_every_catalog_type_to_its_built_in_rule if {
	# a type added to the catalog needs a row here
	{route.op.type | some route in _routes} == object.keys(data.opsgate.catalog.operations)
	every route in _routes {
		rules := _rules(route.op, _ctx)
		route.rule in rules

		# besides the built-in rule, only what agent_authority says
		every rule in rules - {route.rule} {
			startswith(rule, "opsgate.govern.authority.")
		}
	}
}

test_findings_add_what_agent_authority_says if {
	_rules({"type": "scale", "to": 3}, _ctx) == {"opsgate.govern.scaling.within_limits", "opsgate.govern.authority.allowed"}
	_rules({"type": "rollback"}, _ctx) == {"opsgate.govern.recovery.rollback", "opsgate.govern.authority.requires_approval"}
}

test_findings_of_an_operation_that_does_not_fit_are_its_problems_only if {
	_rules({"type": "scale"}, _ctx) == {"opsgate.govern.parameters.invalid"}
	_rules({"type": "reboot_node"}, _ctx) == {"opsgate.govern.parameters.unknown_type"}
	_rules("scale", _ctx) == {"opsgate.govern.parameters.unknown_type"}
}

test_findings_unclassified_when_no_built_in_rule_can_judge if {
	# an observed request of 0 leaves no band to measure
	ctx := testdata.context([testdata.set("/resources/cpu/request", "0m")])
	classify.findings({"type": "adjust_resources", "resource": "cpu", "to": "90m"}, ctx) == {{
		"order": [0, 0],
		"tier": "forbid",
		"reason": "no rule could classify adjust_resources with what is known: forbidden (fail closed)",
		"rule": "opsgate.govern.classify.unclassified",
		"refs": [],
		"suggestion": null,
	}}
}

test_findings_include_the_open_breaker_whatever_else if {
	open := testdata.context([testdata.set("/state/breaker_open", true)])
	every operation in [
		{"type": "scale", "to": 3},
		{"type": "scale"},
		{"type": "adjust_resources", "resource": "cpu", "to": "90m"},
	] {
		"opsgate.govern.safety.breaker_open" in _rules(operation, open)
		not "opsgate.govern.safety.breaker_open" in _rules(operation, _ctx)
	}
	unclassifiable := testdata.context([
		testdata.set("/state/breaker_open", true),
		testdata.set("/resources/cpu/request", "0m"),
	])
	_rules({"type": "adjust_resources", "resource": "cpu", "to": "90m"}, unclassifiable) == {
		"opsgate.govern.classify.unclassified",
		"opsgate.govern.safety.breaker_open",
	}
}

# --- through enforce ---------------------------------------------------------------

test_operation_no_rule_can_classify_is_forbidden if {
	# an observed request of 0 leaves no band to measure: fail closed
	request := object.union(
		testdata.request({"type": "adjust_resources", "resource": "cpu", "to": "90m"}),
		{"resources": {"cpu": {"request": "0m"}}},
	)
	verdict := testdata.enforce(request)
	verdict.tier == "forbid"
	verdict.rules[0] == "opsgate.govern.classify.unclassified"
	verdict.reasons[0] == "no rule could classify adjust_resources with what is known: forbidden (fail closed)"
}
