# METADATA
# title: Resource decisions
# description: |
#   Requests right-sized from the usage the runner recorded, not from one
#   sample: a recommendation from a percentile of the per-pod usage
#   (spec.right_sizing), acted on only when the request is outside
#   governance.resource_band_percent of it. One change per resource per
#   tick: the step within the band when it reaches the recommendation's
#   band (allowed), else the full step to it (beyond the band it needs
#   approval). The resource the service scales on is right-sized only
#   downward, at min_replicas, with no scale change decided now or within
#   the scale-down stabilization window, so the two never fight over the
#   same utilization. Never below spec.resources.<r>.minimum, never above the limit.
# custom:
#   id: opsgate.decide.resources
package opsgate.decide.resources

import data.opsgate.decide.scaling
import data.opsgate.lib.quantity
import data.opsgate.lib.verdict

# METADATA
# title: Resource proposals
# description: The request change each resource needs now, at most one per resource.
# custom:
#   id: opsgate.decide.resources.proposals
proposals(ctx) := [p |
	some resource in ["cpu", "memory"]
	plan := _plan(ctx, resource)
	some found in [{q | q := in_band_step(plan)}, {q | q := full_step(plan)}]
	some p in found
]

# METADATA
# title: Recommended request
# description: |
#   The request the recorded usage recommends for one resource, rounded up
#   to the resource's step: for a resource the service does not scale on,
#   the percentile of spec.right_sizing plus margin_percent; for the one it
#   scales on, the peak usage (p100: a smaller request raises utilization at
#   every replica count) at target_utilization_percent, only when that is
#   below the request, and only from a full day of samples (a shorter window
#   may be the quiet part of a daily cycle). Undefined with fewer than min_samples.
# custom:
#   id: opsgate.decide.resources.recommended
recommended(resource, request, summary, blueprint) := amount if {
	request >= 0
	sizing := blueprint.spec.right_sizing
	summary.samples >= sizing.min_samples
	blueprint.spec.scaling.metric != resource
	observed := summary.percentiles[percentile(resource, blueprint)]
	amount := _round_up(resource, (observed * (100 + sizing.margin_percent)) / 100)
} else := amount if {
	summary.samples >= max([blueprint.spec.right_sizing.min_samples, full_day_samples])
	scaling_rules := blueprint.spec.scaling
	scaling_rules.metric == resource
	observed := summary.percentiles[percentile(resource, blueprint)]
	amount := _round_up(resource, (observed * 100) / scaling_rules.target_utilization_percent)
	amount < request
}

# METADATA
# title: A full day of samples
# description: The runner records one usage sample a minute and keeps a day of them.
# custom:
#   id: opsgate.decide.resources.full_day_samples
full_day_samples := 1440

# METADATA
# title: Percentile
# description: Which percentile of the recorded usage a resource's recommendation starts from.
# custom:
#   id: opsgate.decide.resources.percentile
percentile(resource, blueprint) := "100" if {
	blueprint.spec.scaling.metric == resource
} else := _percentile_keys[blueprint.spec.right_sizing.percentile]

# the summary's keys (a lookup: sprintf costs more than the rest of the quiet check)
_percentile_keys := {50: "50", 90: "90", 95: "95", 99: "99", 100: "100"}

# METADATA
# title: Outside the band
# description: True when the request is more than resource_band_percent away from the recommendation.
# custom:
#   id: opsgate.decide.resources.outside_band
outside_band(request, recommendation, band) if {
	abs(request - recommendation) * 100 > band * recommendation
}

# METADATA
# title: In-band step
# description: |
#   Move the request by at most resource_band_percent toward the
#   recommendation, when that lands inside the recommendation's band.
# custom:
#   id: opsgate.decide.resources.in_band_step
in_band_step(plan) := verdict.proposal(
	rego.metadata.rule(),
	_operation(plan, plan.in_band),
	sprintf("%s: one step within the band reaches it", [_outside(plan)]),
	_refs(plan.resource),
) if {
	plan.in_band != plan.request
	not outside_band(plan.in_band, plan.recommended, plan.band)
}

# METADATA
# title: Full step
# description: |
#   Move the request to the recommendation (within minimum and limit) in one
#   change when a step within the band would not reach it: one rollout, and
#   beyond the band one approval, instead of a stream of steps.
# custom:
#   id: opsgate.decide.resources.full_step
full_step(plan) := verdict.proposal(
	rego.metadata.rule(),
	_operation(plan, plan.full),
	sprintf("%s: a step within the band would not reach it, so the full step", [_outside(plan)]),
	_refs(plan.resource),
) if {
	plan.full != plan.request
	outside_band(plan.in_band, plan.recommended, plan.band)
}

_outside(plan) := sprintf(
	"%s request %s is outside resource_band_percent %v%% of the %s recommended by the recorded usage (p%v %s)",
	[plan.resource, plan.request_text, plan.band, plan.recommended_text, plan.percentile, plan.usage_text],
)

# Everything both steps need, computed once, for a resource whose request is
# outside the band around its recommendation.
_plan(ctx, resource) := {
	"resource": resource,
	"request": request,
	"request_text": quantity.format(resource, request),
	"recommended": recommendation,
	"recommended_text": quantity.format(resource, recommendation),
	"usage_text": usage_text,
	"percentile": used,
	"band": band,
	"in_band": _clamp(_in_band_target(resource, request, recommendation, band), minimum, limit),
	"full": _clamp(recommendation, minimum, limit),
} if {
	band := ctx.blueprint.governance.resource_band_percent
	used := percentile(resource, ctx.blueprint)
	request := object.get(ctx.resources, [resource, "request"], 0)
	request > 0
	summary := object.get(ctx.usage, resource, {})
	recommendation := recommended(resource, request, summary, ctx.blueprint)
	outside_band(request, recommendation, band)
	_coherent(ctx, resource)
	usage_text := quantity.format(resource, summary.percentiles[used])
	minimum := ctx.blueprint.spec.resources[resource][quantity.unit[resource]].minimum
	limit := _limit(ctx, resource)
}

# the observed limit, else the blueprint's
_limit(ctx, resource) := object.get(
	ctx.resources,
	[resource, "limit"],
	ctx.blueprint.spec.resources[resource][quantity.unit[resource]].limit,
)

# a resource the service does not scale on is right-sized whatever scaling does
_coherent(ctx, resource) if ctx.blueprint.spec.scaling.metric != resource

# the one it scales on: at min_replicas, no scale change now, none within the window
_coherent(ctx, resource) if {
	scaling_rules := ctx.blueprint.spec.scaling
	scaling_rules.metric == resource
	ctx.replicas.desired == scaling_rules.min_replicas
	count(scaling.proposals(ctx)) == 0
	_quiet_since(ctx, scaling_rules.scale_down_stabilization_seconds)
}

_quiet_since(ctx, _) if ctx.state.last_operation_ns == null

_quiet_since(ctx, seconds) if {
	ctx.now_ns - ctx.state.last_operation_ns >= seconds * 1000000000
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
	"spec.right_sizing",
	"governance.resource_band_percent",
]

_in_band_target(resource, request, recommendation, band) := _round_up(resource, (request * (100 - band)) / 100) if {
	recommendation < request
} else := _round_down(resource, (request * (100 + band)) / 100)

_clamp(amount, minimum, limit) := min({max({amount, minimum}), limit})

_round_up(resource, amount) := ceil(amount / quantity.step(resource)) * quantity.step(resource)

_round_down(resource, amount) := floor(amount / quantity.step(resource)) * quantity.step(resource)
