# A refused operation of a known type says what its type looks like.
package opsgate.govern.parameters_test

import data.opsgate.govern.parameters

_catalog := data.opsgate.catalog.operations

test_a_misshapen_operation_is_shown_the_expected_shape if {
	finding := parameters.invalid({"type": "adjust_resources", "cpu": "90m"}, _catalog)
	finding.tier == "forbid"
	finding.suggestion == {
		"text": `give it as {"type": "adjust_resources", "resource": "cpu", "to": "90m"}, optionally with field (every parameter: docs/OPERATIONS.md)`,
		"operation": null,
	}
}

test_expected_shape_without_optional_parameters if {
	parameters.expected_shape("scale", _catalog) == `give it as {"type": "scale", "to": 3} (every parameter: docs/OPERATIONS.md)`
}

test_expected_shape_with_only_optional_parameters if {
	parameters.expected_shape("rollback", _catalog) == `give it as {"type": "rollback"}, optionally with to_revision (every parameter: docs/OPERATIONS.md)`
}
