# METADATA
# title: Scaling decisions
# description: |
#   The replica changes a service needs, from the utilization of the metric
#   its blueprint scales on (spec.scaling.metric). Exactly at a threshold is
#   not over it. A metric that is unknown supports no decision.
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
		{q | q := restore_minimum(ctx)},
	]
	some p in found
]

# METADATA
# title: Scale up
# description: |
#   Utilization above scale_up_threshold_percent: one replica more. Needing
#   more than max_replicas is still proposed; governance asks for approval.
# custom:
#   id: opsgate.decide.scaling.scale_up
scale_up(ctx) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "scale", "from": desired, "to": desired + 1},
	sprintf(
		"%s %v%% > scale_up_threshold_percent %v%%",
		[scaling.metric, utilization, scaling.scale_up_threshold_percent],
	),
	["spec.scaling.metric", "spec.scaling.scale_up_threshold_percent"],
) if {
	scaling := ctx.blueprint.spec.scaling
	desired := ctx.replicas.desired
	desired >= scaling.min_replicas
	utilization := ctx.metrics[metric_of[scaling.metric]]
	utilization > scaling.scale_up_threshold_percent
}

# METADATA
# title: Scale down
# description: |
#   Utilization below scale_down_threshold_percent and more replicas than
#   min_replicas: one replica less. Never while a metric the blueprint
#   relies on is unknown, nor while a performance target is missed.
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
	desired := ctx.replicas.desired
	desired > scaling.min_replicas
	utilization := ctx.metrics[metric_of[scaling.metric]]
	utilization < scaling.scale_down_threshold_percent
	count(_unknown_metrics(ctx)) == 0
	count(_missed_targets(ctx)) == 0
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
notes(ctx) := (_unknown_metric_notes(ctx) | _replica_notes(ctx)) | _withheld_notes(ctx)

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
	ctx.metrics[metric_of[scaling.metric]] < scaling.scale_down_threshold_percent
	some note in _withheld_reasons(ctx)
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
