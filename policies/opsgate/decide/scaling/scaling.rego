# METADATA
# title: Scaling decisions
# description: |
#   The replica changes a service needs, from the utilization of the metric
#   its blueprint scales on (spec.scaling.metric). Exactly at a threshold is
#   not over it. A metric that is unknown supports no decision. The
#   proportional algorithm (the default) asks for as many replicas as bring
#   utilization to the target, as the Kubernetes HPA does, and scales down
#   only to the highest recommendation of its stabilization window; step
#   adds or removes one replica at a time. A p95 latency over its target for
#   a sustained window adds a replica when utilization does not explain it.
# custom:
#   id: opsgate.decide.scaling
package opsgate.decide.scaling

import data.opsgate.lib.verdict

# METADATA
# title: Metric of
# description: The observation metric each spec.scaling.metric reads.
# custom:
#   id: opsgate.decide.scaling.metric_of
metric_of := {"cpu": "cpu_percent", "memory": "memory_percent"}

# performance targets and the observed metric each one is checked against
_target_metrics := {
	"latency_p95_ms": "latency_p95_ms",
	"error_rate_percent": "error_rate_percent",
	"throughput_rps": "throughput_rps",
}

# METADATA
# title: Scaling proposals
# description: Every scaling operation the service needs now.
# custom:
#   id: opsgate.decide.scaling.proposals
proposals(ctx) := [p |
	some found in [
		{q | q := scale_up(ctx)},
		{q | q := scale_down(ctx)},
		{q | q := scale_down_to_recommendation(ctx)},
		{q | q := restore_minimum(ctx)},
		{q | q := latency_scale_out(ctx)},
	]
	some p in found
]

# METADATA
# title: Scale up
# description: |
#   Utilization above scale_up_threshold_percent: more replicas. step adds
#   one; proportional adds as many as bring utilization to
#   target_utilization_percent (ceil(ready x utilization / target), at least
#   one, at most max_step_up at a time). Needing more than max_replicas:
#   proportional goes to max_replicas first, then proposes the whole count
#   once (governance asks for approval); step proposes one more each time.
# custom:
#   id: opsgate.decide.scaling.scale_up
scale_up(ctx) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "scale", "from": desired, "to": to},
	_scale_up_reason(scaling, utilization, pods, desired, to),
	_scale_up_refs(desired, to),
) if {
	scaling := ctx.blueprint.spec.scaling
	desired := ctx.replicas.desired
	desired >= scaling.min_replicas
	utilization := ctx.metrics[metric_of[scaling.metric]]
	utilization > scaling.scale_up_threshold_percent
	pods := basis(ctx.replicas)
	to := _scale_up_to(scaling, utilization, pods, desired)
}

# METADATA
# title: Basis
# description: The pods the utilization was measured on - the ready ones, else the desired count.
# custom:
#   id: opsgate.decide.scaling.basis
basis(replicas) := replicas.ready if replicas.ready > 0

else := replicas.desired

_scale_up_to(scaling, _, _, desired) := desired + 1 if scaling.algorithm == "step"

_scale_up_to(scaling, utilization, pods, desired) := to if {
	scaling.algorithm == "proportional"
	count_needed := needed(scaling, utilization, pods)
	to := _proportional_up(scaling, count_needed, desired)
}

# beyond max_replicas: up to the maximum first (allowed), then the whole count asked once
_proportional_up(scaling, wanted, desired) := wanted if {
	wanted > scaling.max_replicas
	desired >= scaling.max_replicas
} else := max([desired + 1, min([_up_to(scaling, wanted, desired), scaling.max_replicas])]) if {
	wanted > scaling.max_replicas
} else := max([desired + 1, _up_to(scaling, wanted, desired)])

_up_to(scaling, wanted, desired) := min([wanted, desired + scaling.max_step_up])

# METADATA
# title: Needed
# description: The replicas that bring utilization to the target (the HPA's formula).
# custom:
#   id: opsgate.decide.scaling.needed
needed(scaling, utilization, pods) := ceil((pods * utilization) / scaling.target_utilization_percent)

# one replica more reads as the plan's rule; a larger count says how it was reached
_scale_up_reason(scaling, utilization, pods, desired, to) := sprintf(
	"%s %v%% > scale_up_threshold_percent %v%%",
	[scaling.metric, utilization, scaling.scale_up_threshold_percent],
) if {
	to == desired + 1
	pods >= 0
} else := sprintf(
	"%s %v%% > scale_up_threshold_percent %v%%: %v replicas bring it to about %v%% (target_utilization_percent %v%%)", # regal ignore:line-length
	[
		scaling.metric, utilization, scaling.scale_up_threshold_percent,
		to, round((pods * utilization) / to), scaling.target_utilization_percent,
	],
)

_scale_up_refs(desired, to) := ["spec.scaling.metric", "spec.scaling.scale_up_threshold_percent"] if {
	to == desired + 1
} else := [
	"spec.scaling.metric",
	"spec.scaling.scale_up_threshold_percent",
	"spec.scaling.target_utilization_percent",
	"spec.scaling.max_step_up",
]

# METADATA
# title: Scale down
# description: |
#   The step algorithm: utilization below scale_down_threshold_percent and
#   more replicas than min_replicas: one replica less. Never while a metric
#   the blueprint relies on is unknown, nor while a performance target is missed.
# custom:
#   id: opsgate.decide.scaling.scale_down
scale_down(ctx) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "scale", "from": desired, "to": desired - 1},
	sprintf(
		"%s %v%% < scale_down_threshold_percent %v%%",
		[scaling.metric, utilization, scaling.scale_down_threshold_percent],
	),
	["spec.scaling.metric", "spec.scaling.scale_down_threshold_percent", "spec.scaling.min_replicas"],
) if {
	scaling := ctx.blueprint.spec.scaling
	scaling.algorithm == "step"
	desired := ctx.replicas.desired
	desired > scaling.min_replicas
	utilization := ctx.metrics[metric_of[scaling.metric]]
	utilization < scaling.scale_down_threshold_percent
	count(_unknown_metrics(ctx)) == 0
	count(_missed_targets(ctx)) == 0
}

# METADATA
# title: Scale down to the recommendation
# description: |
#   The proportional algorithm: utilization below target_utilization_percent
#   less tolerance_percent recommends fewer replicas; the service goes to the
#   highest recommendation of the last scale_down_stabilization_seconds (at
#   most max_step_down fewer, never below min_replicas), and only once the
#   runner has watched it that long, every pod ready. Never while a metric
#   the blueprint relies on is unknown, nor while a performance target is missed.
# custom:
#   id: opsgate.decide.scaling.scale_down_to_recommendation
scale_down_to_recommendation(ctx) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "scale", "from": desired, "to": to},
	sprintf(
		concat("", [
			"%s %v%% < target_utilization_percent %v%% less tolerance_percent %v%%: ",
			"%v replicas, the highest recommendation of the last %vs",
		]),
		[
			scaling.metric, utilization, scaling.target_utilization_percent,
			scaling.tolerance_percent, stabilized, scaling.scale_down_stabilization_seconds,
		],
	),
	_scale_down_refs,
) if {
	scaling := ctx.blueprint.spec.scaling
	scaling.algorithm == "proportional"
	desired := ctx.replicas.desired
	desired > scaling.min_replicas
	ctx.replicas.ready == desired
	utilization := ctx.metrics[metric_of[scaling.metric]]
	recommended := recommendation(ctx)
	recommended < desired
	count(_unknown_metrics(ctx)) == 0
	count(_missed_targets(ctx)) == 0
	stabilized := _stabilized(ctx, recommended)
	stabilized < desired
	to := max([stabilized, desired - scaling.max_step_down, scaling.min_replicas])
}

_scale_down_refs := [
	"spec.scaling.metric",
	"spec.scaling.target_utilization_percent",
	"spec.scaling.tolerance_percent",
	"spec.scaling.scale_down_stabilization_seconds",
	"spec.scaling.max_step_down",
	"spec.scaling.min_replicas",
]

# METADATA
# title: Recommendation
# description: |
#   The replicas the service needs now, before any stabilization: what the
#   runner records each tick for the scale-down window. Proportional: above
#   scale_up_threshold_percent what scale_up asks; below the target less the
#   tolerance ceil(ready x utilization / target), at least min_replicas;
#   otherwise the current count. Step: the count a step rule asks, else the
#   current one. Undefined when utilization or the replica counts are unknown.
# custom:
#   id: opsgate.decide.scaling.recommendation
recommendation(ctx) := up.operation.to if {
	up := scale_up(ctx)
} else := max([needed(scaling, utilization, basis(ctx.replicas)), scaling.min_replicas]) if {
	scaling := ctx.blueprint.spec.scaling
	scaling.algorithm == "proportional"
	utilization := ctx.metrics[metric_of[scaling.metric]]
	below_target(scaling, utilization)
	ctx.replicas.desired >= 0
} else := down.operation.to if {
	down := scale_down(ctx)
} else := ctx.replicas.desired if {
	is_number(ctx.metrics[metric_of[ctx.blueprint.spec.scaling.metric]])
	is_number(ctx.replicas.desired)
}

# METADATA
# title: Below the target
# description: Utilization under target_utilization_percent less tolerance_percent (of the target).
# custom:
#   id: opsgate.decide.scaling.below_target
below_target(scaling, utilization) if {
	utilization * 100 < scaling.target_utilization_percent * (100 - scaling.tolerance_percent)
}

# the highest recommendation of the window, once the runner's ticks cover it
_stabilized(ctx, recommended) := max({recommended} | {tick.replicas |
	some tick in ctx.ticks
	tick.at_ns >= start
	is_number(tick.replicas)
}) if {
	seconds := ctx.blueprint.spec.scaling.scale_down_stabilization_seconds
	start := ctx.now_ns - (seconds * 1000000000)
	_covered(ctx.ticks, start, seconds)
}

# a tick at or before the start: the runner has watched the whole window
_covered(_, _, 0)

_covered(ticks, start, _) if {
	some tick in ticks
	tick.at_ns <= start
}

# METADATA
# title: Latency scale-out
# description: |
#   A p95 latency over spec.performance.latency_p95_ms through the last
#   latency_scale_out_seconds (every tick of them, the runner having watched
#   that long), with utilization at or under scale_up_threshold_percent (so
#   it does not explain the latency), every pod ready and fewer replicas
#   than max_replicas: one replica more, with the latency as its reason.
# custom:
#   id: opsgate.decide.scaling.latency_scale_out
latency_scale_out(ctx) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "scale", "from": desired, "to": desired + 1},
	sprintf(
		concat("", [
			"latency_p95_ms %v > spec.performance.latency_p95_ms %v for %vs ",
			"while %s %v%% is not over scale_up_threshold_percent %v%%",
		]),
		[
			ctx.metrics.latency_p95_ms, limit, seconds,
			scaling.metric, utilization, scaling.scale_up_threshold_percent,
		],
	),
	_latency_refs,
) if {
	scaling := ctx.blueprint.spec.scaling
	seconds := scaling.latency_scale_out_seconds
	seconds > 0
	limit := ctx.blueprint.spec.performance.latency_p95_ms
	is_number(limit)
	ctx.metrics.latency_p95_ms > limit
	desired := ctx.replicas.desired
	desired >= scaling.min_replicas
	desired < scaling.max_replicas
	ctx.replicas.ready == desired
	utilization := ctx.metrics[metric_of[scaling.metric]]
	utilization <= scaling.scale_up_threshold_percent
	_sustained(ctx.ticks, ctx.now_ns - (seconds * 1000000000), limit)
}

_latency_refs := [
	"spec.performance.latency_p95_ms",
	"spec.scaling.latency_scale_out_seconds",
	"spec.scaling.scale_up_threshold_percent",
	"spec.scaling.max_replicas",
]

# over the limit since at or before the start: the last tick at or before it
# and every tick after it
_sustained(ticks, start, limit) if {
	last := max({tick.at_ns | some tick in ticks; tick.at_ns <= start})
	every tick in ticks {
		_over_since(tick, last, limit)
	}
}

_over_since(tick, last, _) if tick.at_ns < last

_over_since(tick, last, limit) if {
	tick.at_ns >= last
	is_number(tick.latency_p95_ms)
	tick.latency_p95_ms > limit
}

# METADATA
# title: Restore minimum
# description: >-
#   Fewer replicas than min_replicas (someone scaled it down by hand): back to min_replicas.
# custom:
#   id: opsgate.decide.scaling.restore_minimum
restore_minimum(ctx) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "scale", "from": desired, "to": minimum},
	sprintf("replicas %v < min_replicas %v", [desired, minimum]),
	["spec.scaling.min_replicas"],
) if {
	minimum := ctx.blueprint.spec.scaling.min_replicas
	desired := ctx.replicas.desired
	desired < minimum
}

# METADATA
# title: Scaling notes
# description: Why no scaling decision was made when one might be expected.
# custom:
#   id: opsgate.decide.scaling.notes
notes(ctx) := ((_unknown_metric_notes(ctx) | _replica_notes(ctx)) | _withheld_notes(ctx)) | _unwatched_notes(ctx)

_unknown_metric_notes(ctx) := {note |
	metric := ctx.blueprint.spec.scaling.metric
	key := metric_of[metric]
	not ctx.metrics[key]
	note := sprintf("%s utilization unknown (metrics.%s missing or invalid): no scaling decision", [metric, key])
}

_replica_notes(ctx) := {"replica counts unknown: no scaling decision" | ctx.replicas == null}

_withheld_notes(ctx) := {note |
	scaling := ctx.blueprint.spec.scaling
	ctx.replicas.desired > scaling.min_replicas
	_shrink_wanted(scaling, ctx.metrics[metric_of[scaling.metric]])
	some note in _withheld_reasons(ctx)
}

_shrink_wanted(scaling, utilization) if {
	scaling.algorithm == "step"
	utilization < scaling.scale_down_threshold_percent
}

_shrink_wanted(scaling, utilization) if {
	scaling.algorithm == "proportional"
	below_target(scaling, utilization)
}

_unwatched_notes(ctx) := {note |
	scaling := ctx.blueprint.spec.scaling
	scaling.algorithm == "proportional"
	recommended := recommendation(ctx)
	recommended < ctx.replicas.desired
	ctx.replicas.ready == ctx.replicas.desired
	count(_unknown_metrics(ctx)) == 0
	count(_missed_targets(ctx)) == 0
	not _stabilized(ctx, recommended)
	note := sprintf(
		"not scaling down yet: the runner has watched the service for less than scale_down_stabilization_seconds %v",
		[scaling.scale_down_stabilization_seconds],
	)
}

_withheld_reasons(ctx) := _unknown_reasons(ctx) | _missed_reasons(ctx)

_unknown_reasons(ctx) := {sprintf("not scaling down: metrics.%s unknown", [key]) | some key in _unknown_metrics(ctx)}

_missed_reasons(ctx) := {reason |
	some target in _missed_targets(ctx)
	key := _target_metrics[target]
	reason := sprintf(
		"not scaling down: %s %v misses spec.performance.%s %v",
		[key, ctx.metrics[key], target, ctx.blueprint.spec.performance[target]],
	)
}

# the scaling metrics and every metric the blueprint sets a target for
_relied_on(ctx) := {"cpu_percent", "memory_percent"} | {metric |
	some target, metric in _target_metrics
	ctx.blueprint.spec.performance[target] != null
}

_unknown_metrics(ctx) := {key |
	some key in _relied_on(ctx)
	not key in object.keys(ctx.metrics)
}

_missed_targets(ctx) := {target |
	some target in ["latency_p95_ms", "error_rate_percent"]
	limit := ctx.blueprint.spec.performance[target]
	limit != null
	ctx.metrics[target] > limit
}
