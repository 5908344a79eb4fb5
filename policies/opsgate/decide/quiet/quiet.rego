# METADATA
# title: Quiet services
# description: |
#   A cheap test that an observation needs no decision and carries no note,
#   so decide can skip the full rules for it; most services on most ticks
#   are quiet. It must never be true where the full rules would decide or
#   note something: policy-tests/opsgate/decide/quiet checks that over a
#   grid of observations. When in doubt it is false, and the full rules run.
# custom:
#   id: opsgate.decide.quiet
package opsgate.decide.quiet

import data.opsgate.decide.recovery
import data.opsgate.decide.resources as resource_rules
import data.opsgate.decide.scaling as scaling_rules
import data.opsgate.lib.observation
import data.opsgate.lib.quantity

# METADATA
# title: Quiet
# description: True when the observation is well-formed, inside every threshold, and has no failed pod.
# custom:
#   id: opsgate.decide.quiet.holds
holds(item, blueprint) if {
	# split into small bodies: OPA keeps up to 16 variables of a body in a
	# flat array and switches to a hash map beyond that
	scaling := blueprint.spec.scaling
	_replicas_quiet(item.replicas, scaling)
	_scaling_quiet(item.metrics[scaling_rules.metric_of[scaling.metric]], item.replicas, scaling)
	observation.plausible_measurements(item.metrics)
	_pods_quiet(object.get(item, "pods", []))
	_latency_quiet(item.metrics, blueprint)
	_resources_quiet(object.get(item, "resources", {}), object.get(item, "state", {}), blueprint)
	is_boolean(object.get(item, ["state", "breaker_open"], false))
	is_number(time.parse_rfc3339_ns(item.now))
}

_replicas_quiet(replicas, scaling) if {
	desired := replicas.desired
	is_number(desired)
	desired >= scaling.min_replicas
	floor(desired) == desired
	ready := replicas.ready
	is_number(ready)
	ready >= 0
	floor(ready) == ready
}

_scaling_quiet(utilization, replicas, scaling) if {
	utilization <= scaling.scale_up_threshold_percent
	_not_shrinking(utilization, replicas, scaling)
}

_pods_quiet(pods) if {
	is_array(pods)
	every pod in pods {
		is_string(pod.name)
		is_number(pod.restart_count)
		pod.restart_count >= 0
		floor(pod.restart_count) == pod.restart_count
		not recovery.failure_reasons[object.get(pod, "reason", null)]
		pod.phase != "Failed"
	}
}

# no request outside the band of what the recorded usage recommends
_resources_quiet(resources, state, blueprint) if {
	is_object(resources)
	every name, fields in resources {
		request := quantity.amount(name, fields.request)
		request > 0
		quantity.amount(name, fields.usage) >= 0 # a usage that does not parse gets its note
		not _right_sized(name, request, state, blueprint)
	}
}

_right_sized(name, request, state, blueprint) if {
	recommendation := resource_rules.recommended(name, request, observation.usage_summary(state, name), blueprint)
	resource_rules.outside_band(request, recommendation, blueprint.governance.resource_band_percent)
}

# no latency over its target that could add a replica
_latency_quiet(_, blueprint) if blueprint.spec.scaling.latency_scale_out_seconds == 0

_latency_quiet(_, blueprint) if blueprint.spec.performance.latency_p95_ms == null

_latency_quiet(metrics, _) if not "latency_p95_ms" in object.keys(metrics)

_latency_quiet(metrics, blueprint) if metrics.latency_p95_ms <= blueprint.spec.performance.latency_p95_ms

_not_shrinking(utilization, _, scaling) if {
	scaling.algorithm == "step"
	utilization >= scaling.scale_down_threshold_percent
}

_not_shrinking(utilization, _, scaling) if {
	scaling.algorithm == "proportional"
	not scaling_rules.below_target(scaling, utilization)
}

# below the target, the recommendation may still be the current count
_not_shrinking(utilization, replicas, scaling) if {
	scaling.algorithm == "proportional"
	scaling_rules.below_target(scaling, utilization)
	pods := scaling_rules.basis(replicas)
	max([scaling_rules.needed(scaling, utilization, pods), scaling.min_replicas]) == replicas.desired
}

_not_shrinking(_, replicas, scaling) if replicas.desired == scaling.min_replicas
