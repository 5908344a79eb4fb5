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
	_scaling_quiet(item.metrics[scaling_rules.metric_of[scaling.metric]], item.replicas.desired, scaling)
	observation.plausible_measurements(item.metrics)
	_pods_quiet(object.get(item, "pods", []))
	_resources_quiet(object.get(item, "resources", {}), blueprint.governance.resource_band_percent)
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

_scaling_quiet(utilization, desired, scaling) if {
	utilization <= scaling.scale_up_threshold_percent
	_not_shrinking(utilization, desired, scaling)
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

_resources_quiet(resources, band) if {
	is_object(resources)
	every name, fields in resources {
		request := quantity.amount(name, fields.request)
		request > 0
		abs(quantity.amount(name, fields.usage) - request) * 100 <= band * request
	}
}

_not_shrinking(utilization, _, scaling) if utilization >= scaling.scale_down_threshold_percent

_not_shrinking(_, desired, scaling) if desired == scaling.min_replicas
