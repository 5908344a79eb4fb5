package opsgate.govern.parameters_test

import data.opsgate.govern.parameters
import data.opsgate.testdata

_verdict(operation) := testdata.enforce(testdata.request(operation))

test_unknown_operation_type_is_forbidden if {
	verdict := _verdict({"type": "reboot_node", "name": "n1"})
	verdict.tier == "forbid"
	verdict.reasons == [`unknown operation type "reboot_node"`]
	verdict.rules == ["opsgate.govern.parameters.unknown_type"]
	startswith(verdict.suggestion.text, "use one of the known operation types: adjust_resources, delete_deployment,")
}

test_operations_that_are_not_objects_with_a_type_are_forbidden if {
	every operation in ["scale", 3, null, [], {}, {"type": 7}, {"to": 3}] {
		verdict := _verdict(operation)
		verdict.tier == "forbid"
		verdict.reasons == ["operation is not an object with a type"]
	}
}

test_parameters_that_do_not_fit_are_forbidden if {
	every case in [
		{"op": {"type": "scale"}, "reason": `scale does not fit its type: missing parameter "to"`},
		{"op": {"type": "scale", "to": -1}, "reason": "scale does not fit its type: to must be a whole number >= 0 (got -1)"},
		{"op": {"type": "scale", "to": 2.5}, "reason": "scale does not fit its type: to must be a whole number >= 0 (got 2.5)"},
		{"op": {"type": "scale", "to": "3"}, "reason": `scale does not fit its type: to must be a whole number >= 0 (got "3")`},
		{"op": {"type": "scale", "to": 3, "force": true}, "reason": `scale does not fit its type: unexpected parameter "force"`},
		{
			"op": {"type": "adjust_resources", "resource": "gpu", "to": "1"},
			"reason": concat("; ", [
				`adjust_resources does not fit its type: resource must be cpu or memory (got "gpu")`,
				`to must be a quantity of the resource, such as 90m or 256Mi (got "1")`,
			]),
		},
		{
			"op": {"type": "adjust_resources", "resource": "cpu", "field": "usage", "to": "90m"},
			"reason": `adjust_resources does not fit its type: field must be request or limit (got "usage")`,
		},
		{
			"op": {"type": "adjust_resources", "resource": "cpu", "to": "lots"},
			"reason": `adjust_resources does not fit its type: to must be a quantity of the resource, such as 90m or 256Mi (got "lots")`,
		},
		{
			"op": {"type": "adjust_resources", "resource": "memory", "to": "0"},
			"reason": `adjust_resources does not fit its type: to must be a quantity of the resource, such as 90m or 256Mi (got "0")`,
		},
		{"op": {"type": "restart_pod", "pod": ""}, "reason": `restart_pod does not fit its type: pod must be a non-empty name (got "")`},
		{"op": {"type": "rollback", "to_revision": 0}, "reason": "rollback does not fit its type: to_revision must be a whole number >= 1 (got 0)"},
		{
			"op": {"type": "update_configmap", "name": "cfg", "changes": {}},
			"reason": "update_configmap does not fit its type: changes must be a non-empty object (got {})",
		},
		{
			"op": {"type": "update_health_checks", "probe": "smoke", "changes": {"a": 1}},
			"reason": `update_health_checks does not fit its type: probe must be liveness, readiness or startup (got "smoke")`,
		},
		{"op": {"type": "delete_pod"}, "reason": `delete_pod does not fit its type: missing parameter "name"`},
	] {
		verdict := _verdict(case.op)
		verdict.tier == "forbid"
		verdict.reasons == [case.reason]
		verdict.rules == ["opsgate.govern.parameters.invalid"]
	}
}

test_several_problems_are_all_named if {
	verdict := _verdict({"type": "update_configmap", "extra": 1})
	verdict.reasons == [concat("; ", [
		`update_configmap does not fit its type: missing parameter "changes"`,
		`missing parameter "name"`,
		`unexpected parameter "extra"`,
	])]
}

test_from_is_tolerated_and_replaced if {
	verdict := _verdict({"type": "scale", "from": 99, "to": 3})
	verdict.tier == "allow"
	verdict.operation == {"type": "scale", "from": 2, "to": 3}
}

# fits is a fast twin of "a known type with no problems": the two must agree
test_fits_agrees_with_problems if {
	catalog := data.opsgate.catalog.operations
	operations := [
		{"type": "scale", "to": 3},
		{"type": "scale", "to": 3, "from": 2},
		{"type": "scale"},
		{"type": "scale", "to": -1},
		{"type": "scale", "to": "3"},
		{"type": "scale", "to": 3, "force": true},
		{"type": "adjust_resources", "resource": "cpu", "to": "90m"},
		{"type": "adjust_resources", "resource": "cpu", "field": "limit", "to": "1"},
		{"type": "adjust_resources", "resource": "gpu", "to": "1"},
		{"type": "adjust_resources", "resource": "memory", "to": "0"},
		{"type": "adjust_resources", "resource": "cpu", "field": "usage", "to": "90m"},
		{"type": "restart_pod", "pod": "p-0"},
		{"type": "restart_pod", "pod": ""},
		{"type": "rollback"},
		{"type": "rollback", "to_revision": 0},
		{"type": "update_configmap", "name": "cfg", "changes": {"LOG_LEVEL": "DEBUG"}},
		{"type": "update_configmap", "name": "cfg", "changes": {}},
		{"type": "update_health_checks", "probe": "smoke", "changes": {"a": 1}},
		{"type": "delete_pvc", "name": "x"},
		{"type": "delete_pvc"},
		{"type": "reboot_node"},
	]
	fitting := [operation | some operation in operations; parameters.fits(operation, catalog)]
	count(fitting) == 8
	every operation in operations {
		_fits(operation, catalog) == _no_problems(operation, catalog)
	}
}

_fits(operation, catalog) if parameters.fits(operation, catalog)

else := false

_no_problems(operation, catalog) if {
	catalog[operation.type]
	count(parameters.problems(operation, catalog)) == 0
} else := false

test_findings_queried_directly if {
	catalog := data.opsgate.catalog.operations
	parameters.findings({"type": "scale", "to": 3}, catalog) == set()
	[[f.rule, f.tier, f.reason] | some f in parameters.findings({"type": "scale", "to": "3"}, catalog)] == [[
		"opsgate.govern.parameters.invalid",
		"forbid",
		`scale does not fit its type: to must be a whole number >= 0 (got "3")`,
	]]
	[[f.rule, f.tier] | some f in parameters.findings({"type": "reboot_node"}, catalog)] == [[
		"opsgate.govern.parameters.unknown_type",
		"forbid",
	]]
}

test_problems_queried_directly if {
	catalog := data.opsgate.catalog.operations
	parameters.problems({"type": "restart_pod", "pod": "p-0"}, catalog) == set()
	parameters.problems({"type": "restart_pod", "name": "p-0"}, catalog) == {`missing parameter "pod"`, `unexpected parameter "name"`}
}
