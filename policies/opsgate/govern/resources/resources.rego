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

# METADATA
# title: Resource findings
# description: The findings for one adjust_resources operation.
# custom:
#   id: opsgate.govern.resources.findings
findings(operation, ctx) := {f |
	change := _change(operation, ctx)
	some found in [
		{g | g := within_band(change)},
		{g | g := beyond_band(change)},
		{g | g := below_minimum(change)},
		{g | g := above_limit(change)},
		{g | g := limit_below_request(change)},
	]
	some f in found
}

# METADATA
# title: Within the band
# description: A change of at most resource_band_percent of the current value is allowed.
# custom:
#   id: opsgate.govern.resources.within_band
within_band(change) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf("%s %s %s → %s is a %v%% change, within resource_band_percent %v%%", _band_words(change)),
	_band_refs(change),
) if {
	change.percent_x100 <= change.band * 100
}

# METADATA
# title: Beyond the band
# description: A change of more than resource_band_percent of the current value asks for approval.
# custom:
#   id: opsgate.govern.resources.beyond_band
beyond_band(change) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf("%s %s %s → %s is a %v%% change, beyond resource_band_percent %v%%", _band_words(change)),
	_band_refs(change),
) if {
	change.percent_x100 > change.band * 100
}

# METADATA
# title: Below the minimum
# description: A request below spec.resources.<r>.minimum is forbidden; the suggestion names the minimum.
# custom:
#   id: opsgate.govern.resources.below_minimum
below_minimum(change) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf(
		"%s request %s is below spec.resources.%s.minimum %s",
		[change.resource, change.to_text, change.resource, change.minimum_text],
	),
	[sprintf("spec.resources.%s.minimum", [change.resource])],
	verdict.suggestion(
		sprintf("keep the %s request at or above %s", [change.resource, change.minimum_text]),
		{"type": "adjust_resources", "resource": change.resource, "field": "request", "to": change.minimum_text},
	),
) if {
	change.field == "request"
	change.to < change.minimum
}

# METADATA
# title: Request above the limit
# description: Kubernetes rejects a request above the limit; raise the limit first.
# custom:
#   id: opsgate.govern.resources.above_limit
above_limit(change) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf(
		"%s request %s is above the limit %s",
		[change.resource, change.to_text, quantity.format(change.resource, change.limit)],
	),
	[sprintf("spec.resources.%s.limit", [change.resource])],
	verdict.suggestion(
		sprintf("raise the %s limit to at least %s first", [change.resource, change.to_text]),
		{"type": "adjust_resources", "resource": change.resource, "field": "limit", "to": change.to_text},
	),
) if {
	change.field == "request"
	change.to > change.limit
}

# METADATA
# title: Limit below the request
# description: A limit below the current request is forbidden; lower the request first.
# custom:
#   id: opsgate.govern.resources.limit_below_request
limit_below_request(change) := verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf(
		"%s limit %s is below the request %s",
		[change.resource, change.to_text, quantity.format(change.resource, change.request)],
	),
	[sprintf("spec.resources.%s.request", [change.resource])],
) if {
	change.field == "limit"
	change.to < change.request
}

# METADATA
# title: Current amount
# description: The current request or limit, observed when given, else from the blueprint.
# custom:
#   id: opsgate.govern.resources.current
current(ctx, resource, field) := amount if {
	amount := ctx.resources[resource][field]
} else := ctx.blueprint.spec.resources[resource][quantity.unit[resource]][field]

# Everything the rules need about one change, computed once.
_change(operation, ctx) := {
	"resource": operation.resource,
	"field": field,
	"to": to,
	"to_text": operation.to,
	"from": from,
	"request": current(ctx, operation.resource, "request"),
	"limit": current(ctx, operation.resource, "limit"),
	"minimum": ctx.blueprint.spec.resources[operation.resource][quantity.unit[operation.resource]].minimum,
	"minimum_text": ctx.blueprint.spec.resources[operation.resource].minimum,
	"band": ctx.blueprint.governance.resource_band_percent,
	"percent_x100": (abs(to - from) * 10000) / from,
} if {
	field := object.get(operation, "field", "request")
	from := current(ctx, operation.resource, field)
	from > 0
	to := quantity.amount(operation.resource, operation.to)
}

_band_words(change) := [
	change.resource,
	change.field,
	quantity.format(change.resource, change.from),
	change.to_text,
	round(change.percent_x100) / 100,
	change.band,
]

_band_refs(change) := [
	sprintf("spec.resources.%s.%s", [change.resource, change.field]),
	"governance.resource_band_percent",
]
