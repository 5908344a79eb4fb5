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

# METADATA
# title: Resource proposals
# description: Every resource request change the service needs now.
# custom:
#   id: opsgate.decide.resources.proposals
proposals(ctx) := [p |
	some resource in ["cpu", "memory"]
	plan := _plan(ctx, resource)
	some found in [{q | q := in_band_step(plan)}, {q | q := full_step(plan)}]
	some p in found
]

# METADATA
# title: In-band step
# description: Move the request toward usage by at most resource_band_percent, not past the minimum or limit.
# custom:
#   id: opsgate.decide.resources.in_band_step
in_band_step(plan) := verdict.proposal(
	rego.metadata.rule(),
	_operation(plan, plan.in_band),
	sprintf(
		"%s usage %s is %v%% of request %s, outside resource_band_percent %v%%: a step within the band",
		[plan.resource, plan.usage_text, plan.percent, plan.request_text, plan.band],
	),
	_refs(plan.resource),
) if {
	plan.in_band != plan.request
}

# METADATA
# title: Full step
# description: Move the request all the way to usage (within minimum and limit), offered beside the in-band step.
# custom:
#   id: opsgate.decide.resources.full_step
full_step(plan) := verdict.proposal(
	rego.metadata.rule(),
	_operation(plan, plan.full),
	sprintf(
		"%s usage %s is %v%% of request %s: the full step to usage",
		[plan.resource, plan.usage_text, plan.percent, plan.request_text],
	),
	_refs(plan.resource),
) if {
	plan.full != plan.request
	plan.full != plan.in_band
}

# Everything both steps need, computed once, for a resource whose usage is
# outside the band around its request.
_plan(ctx, resource) := {
	"resource": resource,
	"request": amounts.request,
	"request_text": quantity.format(resource, amounts.request),
	"usage_text": quantity.format(resource, amounts.usage),
	"percent": round((amounts.usage * 1000) / amounts.request) / 10,
	"band": band,
	"in_band": _clamp(_in_band_target(resource, amounts, band), minimum, limit),
	"full": _clamp(_round_away(resource, amounts.usage, amounts.request), minimum, limit),
} if {
	amounts := ctx.resources[resource]
	amounts.request > 0
	band := ctx.blueprint.governance.resource_band_percent
	abs(amounts.usage - amounts.request) * 100 > band * amounts.request
	blueprint_amounts := ctx.blueprint.spec.resources[resource][quantity.unit[resource]]
	minimum := blueprint_amounts.minimum
	limit := object.get(amounts, "limit", blueprint_amounts.limit)
}

_operation(plan, to) := {
	"type": "adjust_resources",
	"resource": plan.resource,
	"field": "request",
	"from": plan.request_text,
	"to": quantity.format(plan.resource, to),
}

_refs(resource) := [
	sprintf("spec.resources.%s.request", [resource]),
	sprintf("spec.resources.%s.minimum", [resource]),
	sprintf("spec.resources.%s.limit", [resource]),
	"governance.resource_band_percent",
]

_in_band_target(resource, amounts, band) := _round_up(resource, (amounts.request * (100 - band)) / 100) if {
	amounts.usage < amounts.request
} else := _round_down(resource, (amounts.request * (100 + band)) / 100)

_clamp(amount, minimum, limit) := min({max({amount, minimum}), limit})

_round_up(resource, amount) := ceil(amount / quantity.step(resource)) * quantity.step(resource)

_round_down(resource, amount) := floor(amount / quantity.step(resource)) * quantity.step(resource)

# round usage away from the request, so the full step really reaches usage
_round_away(resource, usage, request) := _round_down(resource, usage) if usage < request

else := _round_up(resource, usage)
