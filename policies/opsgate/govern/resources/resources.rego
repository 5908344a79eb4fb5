# METADATA
# title: Resource governance
# description: |
#   The tier of an adjust_resources operation. A change within
#   governance.resource_band_percent of the current value is allowed
#   (exactly at the band is inside), beyond it asks for approval. A request
#   below spec.resources.<r>.minimum, a request above the limit, or a limit
#   below the request is forbidden. The current value is the observed one
#   when the caller gives it, else the blueprint's.
# custom:
#   id: opsgate.govern.resources
package opsgate.govern.resources

import data.opsgate.lib.quantity
import data.opsgate.lib.verdict

_unit := {"cpu": "millicores", "memory": "bytes"}

# METADATA
# title: Resource findings
# description: The findings for one adjust_resources operation.
# custom:
#   id: opsgate.govern.resources.findings
findings(operation, ctx) := {f |
	some found in [
		{g | g := within_band(operation, ctx)},
		{g | g := beyond_band(operation, ctx)},
		{g | g := below_minimum(operation, ctx)},
		{g | g := above_limit(operation, ctx)},
		{g | g := limit_below_request(operation, ctx)},
	]
	some f in found
}

# METADATA
# title: Within the band
# description: A change of at most resource_band_percent of the current value is allowed.
# custom:
#   id: opsgate.govern.resources.within_band
within_band(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf("%s %s %s → %s is a %v%% change, within resource_band_percent %v%%", _band_words(operation, ctx)),
	_refs(operation),
) if {
	change := _change(operation, ctx)
	change.percent_x100 <= change.band * 100
}

# METADATA
# title: Beyond the band
# description: A change of more than resource_band_percent of the current value asks for approval.
# custom:
#   id: opsgate.govern.resources.beyond_band
beyond_band(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf("%s %s %s → %s is a %v%% change, beyond resource_band_percent %v%%", _band_words(operation, ctx)),
	_refs(operation),
) if {
	change := _change(operation, ctx)
	change.percent_x100 > change.band * 100
}

# METADATA
# title: Below the minimum
# description: A request below spec.resources.<r>.minimum is forbidden; the suggestion names the minimum.
# custom:
#   id: opsgate.govern.resources.below_minimum
below_minimum(operation, ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("%s request %s is below spec.resources.%s.minimum %s", [resource, operation.to, resource, minimum]),
	[sprintf("spec.resources.%s.minimum", [resource])],
	verdict.suggestion(
		sprintf("keep the %s request at or above %s", [resource, minimum]),
		{"type": "adjust_resources", "resource": resource, "field": "request", "to": minimum},
	),
) if {
	resource := operation.resource
	_field(operation) == "request"
	minimum := ctx.blueprint.spec.resources[resource].minimum
	quantity.amount(resource, operation.to) < _blueprint_amount(ctx, resource, "minimum")
}

# METADATA
# title: Request above the limit
# description: Kubernetes rejects a request above the limit; raise the limit first.
# custom:
#   id: opsgate.govern.resources.above_limit
above_limit(operation, ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("%s request %s is above the limit %s", [resource, operation.to, quantity.format(resource, limit)]),
	[sprintf("spec.resources.%s.limit", [resource])],
	verdict.suggestion(
		sprintf("raise the %s limit to at least %s first", [resource, operation.to]),
		{"type": "adjust_resources", "resource": resource, "field": "limit", "to": operation.to},
	),
) if {
	resource := operation.resource
	_field(operation) == "request"
	limit := _current(ctx, resource, "limit")
	quantity.amount(resource, operation.to) > limit
}

# METADATA
# title: Limit below the request
# description: A limit below the current request is forbidden; lower the request first.
# custom:
#   id: opsgate.govern.resources.limit_below_request
limit_below_request(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf("%s limit %s is below the request %s", [resource, operation.to, quantity.format(resource, request)]),
	[sprintf("spec.resources.%s.request", [resource])],
) if {
	resource := operation.resource
	_field(operation) == "limit"
	request := _current(ctx, resource, "request")
	quantity.amount(resource, operation.to) < request
}

_field(operation) := object.get(operation, "field", "request")

_refs(operation) := [
	sprintf("spec.resources.%s.%s", [operation.resource, _field(operation)]),
	"governance.resource_band_percent",
]

_change(operation, ctx) := {"from": from, "to": to, "band": band, "percent_x100": (abs(to - from) * 10000) / from} if {
	from := _current(ctx, operation.resource, _field(operation))
	from > 0
	to := quantity.amount(operation.resource, operation.to)
	band := ctx.blueprint.governance.resource_band_percent
}

_band_words(operation, ctx) := [
	operation.resource,
	_field(operation),
	quantity.format(operation.resource, change.from),
	operation.to,
	round(change.percent_x100) / 100,
	change.band,
] if {
	change := _change(operation, ctx)
}

# METADATA
# title: Current amount
# description: The current request or limit, observed when given, else from the blueprint.
# custom:
#   id: opsgate.govern.resources.current
current(ctx, resource, field) := _current(ctx, resource, field)

_current(ctx, resource, field) := amount if {
	amount := ctx.resources[resource][field]
} else := _blueprint_amount(ctx, resource, field)

_blueprint_amount(ctx, resource, field) := ctx.blueprint.spec.resources[resource][_unit[resource]][field]
