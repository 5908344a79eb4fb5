# METADATA
# title: Resource decisions
# description: |
#   Requests that drifted away from usage by more than the blueprint's
#   governance.resource_band_percent. The step that stays inside the band is
#   offered (allowed); the full step to usage is offered beside it (beyond
#   the band it needs approval). Never below spec.resources.<r>.minimum,
#   never above the limit.
# custom:
#   id: opsgate.decide.resources
package opsgate.decide.resources

import data.opsgate.lib.quantity
import data.opsgate.lib.verdict

_resources := ["cpu", "memory"]

_unit := {"cpu": "millicores", "memory": "bytes"}

# METADATA
# title: Resource proposals
# description: Every resource request change the service needs now.
# custom:
#   id: opsgate.decide.resources.proposals
proposals(ctx) := [p |
	some resource in _resources
	some found in [{q | q := in_band_step(ctx, resource)}, {q | q := full_step(ctx, resource)}]
	some p in found
]

# METADATA
# title: In-band step
# description: Move the request toward usage by at most resource_band_percent, not past the minimum or limit.
# custom:
#   id: opsgate.decide.resources.in_band_step
in_band_step(ctx, resource) := verdict.proposal(
	rego.metadata.rule(),
	_operation(resource, amounts.request, target),
	sprintf(
		"%s usage %s is %v%% of request %s, outside resource_band_percent %v%%: a step within the band",
		[resource, quantity.format(resource, amounts.usage), _percent(amounts.usage, amounts.request), quantity.format(resource, amounts.request), band],
	),
	_refs(resource),
) if {
	amounts := _drifted(ctx, resource)
	band := ctx.blueprint.governance.resource_band_percent
	target := _in_band_target(ctx, resource, amounts, band)
	target != amounts.request
}

# METADATA
# title: Full step
# description: Move the request all the way to usage (within minimum and limit), offered beside the in-band step.
# custom:
#   id: opsgate.decide.resources.full_step
full_step(ctx, resource) := verdict.proposal(
	rego.metadata.rule(),
	_operation(resource, amounts.request, target),
	sprintf(
		"%s usage %s is %v%% of request %s: the full step to usage",
		[resource, quantity.format(resource, amounts.usage), _percent(amounts.usage, amounts.request), quantity.format(resource, amounts.request)],
	),
	_refs(resource),
) if {
	amounts := _drifted(ctx, resource)
	band := ctx.blueprint.governance.resource_band_percent
	target := _clamp(ctx, resource, _round_away(resource, amounts.usage, amounts.request))
	target != amounts.request
	target != _in_band_target(ctx, resource, amounts, band)
}

_operation(resource, from, to) := {
	"type": "adjust_resources",
	"resource": resource,
	"field": "request",
	"from": quantity.format(resource, from),
	"to": quantity.format(resource, to),
}

_refs(resource) := [
	sprintf("spec.resources.%s.request", [resource]),
	sprintf("spec.resources.%s.minimum", [resource]),
	sprintf("spec.resources.%s.limit", [resource]),
	"governance.resource_band_percent",
]

# request and usage when usage is outside the band around the request
_drifted(ctx, resource) := amounts if {
	amounts := ctx.resources[resource]
	amounts.request > 0
	band := ctx.blueprint.governance.resource_band_percent
	abs(amounts.usage - amounts.request) * 100 > band * amounts.request
}

_in_band_target(ctx, resource, amounts, band) := _clamp(ctx, resource, target) if {
	amounts.usage < amounts.request
	target := _round_up(resource, (amounts.request * (100 - band)) / 100)
} else := _clamp(ctx, resource, target) if {
	target := _round_down(resource, (amounts.request * (100 + band)) / 100)
}

_clamp(ctx, resource, amount) := min({max({amount, _blueprint_amount(ctx, resource, "minimum")}), _limit(ctx, resource)})

_limit(ctx, resource) := limit if {
	limit := ctx.resources[resource].limit
} else := _blueprint_amount(ctx, resource, "limit")

_blueprint_amount(ctx, resource, field) := ctx.blueprint.spec.resources[resource][_unit[resource]][field]

_round_up(resource, amount) := ceil(amount / quantity.step(resource)) * quantity.step(resource)

_round_down(resource, amount) := floor(amount / quantity.step(resource)) * quantity.step(resource)

# round usage away from the request, so the full step really reaches usage
_round_away(resource, usage, request) := _round_down(resource, usage) if usage < request

else := _round_up(resource, usage)

_percent(part, whole) := round((part * 1000) / whole) / 10
