# METADATA
# title: Operation parameters
# description: |
#   An operation must be an object with a known type and exactly the
#   parameters the catalog (data.opsgate.catalog) lists for that type, each
#   of the right kind. Anything else is forbidden: the policies can't judge
#   what they don't understand.
# custom:
#   id: opsgate.govern.parameters
package opsgate.govern.parameters

import data.opsgate.lib.quantity
import data.opsgate.lib.verdict

# METADATA
# title: Parameter findings
# description: Forbid findings for an operation that is not understood; empty when it fits its type.
# custom:
#   id: opsgate.govern.parameters.findings
findings(operation, catalog) := {f | f := unknown_type(operation, catalog)} | {f | f := invalid(operation, catalog)}

# METADATA
# title: Fits its type
# description: True when the operation has a known type and fitting parameters.
# custom:
#   id: opsgate.govern.parameters.fits
fits(operation, catalog) if {
	# the same test as "no problems", without building the problem lines:
	# every decision passes through here
	is_object(operation)
	parameters := catalog[operation.type].parameters
	names := object.keys(operation) - {"type", "from"}
	count(names - object.keys(parameters)) == 0
	count(_required(parameters) - names) == 0
	_values_fit(operation, names, parameters)
}

_values_fit(operation, names, parameters) if {
	every name in names {
		_valid(_kind(parameters[name]), operation, operation[name])
	}
}

# METADATA
# title: Unknown operation type
# description: An operation whose type the catalog doesn't list, or that isn't an object with a type, is forbidden.
# custom:
#   id: opsgate.govern.parameters.unknown_type
unknown_type(operation, catalog) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	_unknown_reason(operation),
	[],
	verdict.suggestion(
		sprintf("use one of the known operation types: %s", [concat(", ", sort(object.keys(catalog)))]),
		null,
	),
) if {
	not _known_type(operation, catalog)
}

# METADATA
# title: Parameters that don't fit
# description: Missing, unexpected or malformed parameters make an operation forbidden.
# custom:
#   id: opsgate.govern.parameters.invalid
invalid(operation, catalog) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("%s does not fit its type: %s", [operation.type, concat("; ", sort(problems(operation, catalog)))]),
	[],
	verdict.suggestion(expected_shape(operation.type, catalog), null),
) if {
	_known_type(operation, catalog)
	count(problems(operation, catalog)) > 0
}

# METADATA
# title: Expected shape
# description: |
#   What an operation of a type looks like, from the catalog's examples: its
#   required parameters as an example object, and the names of the optional ones.
# custom:
#   id: opsgate.govern.parameters.expected_shape
expected_shape(type, catalog) := sprintf("give it as {%s}%s (every parameter: docs/OPERATIONS.md)", [
	concat(", ", array.concat(
		[sprintf("\"type\": %s", [json.marshal(type)])],
		[sprintf("%s: %s", [json.marshal(name), json.marshal(catalog[type].parameters[name].example)]) |
			some name in sort(_required(catalog[type].parameters))
		],
	)),
	_optional(catalog[type].parameters),
])

_optional(parameters) := sprintf(", optionally with %s", [concat(", ", sort(names))]) if {
	names := {name | some name, parameter in parameters; not parameter.required}
	count(names) > 0
} else := ""

# METADATA
# title: Parameter problems
# description: Every way the operation's parameters break the catalog, one line each.
# custom:
#   id: opsgate.govern.parameters.problems
problems(operation, catalog) := (_missing(operation, catalog) | _unexpected(operation, catalog)) | _malformed(
	operation,
	catalog,
)

_known_type(operation, catalog) if {
	is_object(operation)
	is_string(operation.type)
	catalog[operation.type]
}

_unknown_reason(operation) := sprintf("unknown operation type %q", [operation.type]) if {
	is_object(operation)
	is_string(operation.type)
} else := "operation is not an object with a type"

_missing(operation, catalog) := {sprintf("missing parameter %q", [name]) |
	some name, parameter in catalog[operation.type].parameters
	parameter.required
	not _has(operation, name)
}

# `from` is reported by decisions and tolerated (ignored) in proposals
_unexpected(operation, catalog) := {sprintf("unexpected parameter %q", [name]) |
	some name, _ in operation
	not name in {"type", "from"}
	not catalog[operation.type].parameters[name]
}

_malformed(operation, catalog) := {sprintf(
	"%s %s (got %s)",
	[name, _expected(parameter), json.marshal(operation[name])],
) |
	some name, parameter in catalog[operation.type].parameters
	_has(operation, name)
	not _valid(_kind(parameter), operation, operation[name])
}

# what a value of each parameter kind (catalog: parameters[_].kind) must be
_expectations := {
	"count": "must be a whole number >= 0",
	"revision": "must be a whole number >= 1",
	"resource": "must be cpu or memory",
	"field": "must be request or limit",
	"quantity": "must be a quantity of the resource, such as 90m or 256Mi",
	"name": "must be a non-empty name",
	"changes": "must be a non-empty object",
	"probe": "must be liveness, readiness or startup",
}

# a parameter the catalog gives no known kind fits nothing (fail closed)
_kind(parameter) := object.get(parameter, "kind", "")

_expected(parameter) := object.get(
	_expectations, _kind(parameter),
	sprintf("has no known kind in the operation catalog (%q)", [_kind(parameter)]),
)

_valid("count", _, value) if {
	is_number(value)
	value >= 0
	value == floor(value)
}

_valid("revision", _, value) if {
	is_number(value)
	value >= 1
	value == floor(value)
}

_valid("resource", _, value) if value in {"cpu", "memory"}

_valid("field", _, value) if value in {"request", "limit"}

_valid("quantity", operation, value) if {
	amount := quantity.amount(operation.resource, value)
	amount > 0
}

_valid("name", _, value) if {
	is_string(value)
	value != ""
}

_valid("changes", _, value) if {
	is_object(value)
	count(value) > 0
}

_valid("probe", _, value) if value in {"liveness", "readiness", "startup"}

_has(operation, name) if name in object.keys(operation)

_required(parameters) := {name | some name, parameter in parameters; parameter.required}
