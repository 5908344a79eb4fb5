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

import data.opsgate.lib.quantity

_metric_of := {"cpu": "cpu_percent", "memory": "memory_percent"}

_failure_reasons := {"CrashLoopBackOff", "Error", "OOMKilled"}

# METADATA
# title: Quiet
# description: True when the observation is well-formed, inside every threshold, and has no failed pod.
# custom:
#   id: opsgate.decide.quiet.quiet
quiet(item, blueprint) if {
	scaling := blueprint.spec.scaling
	desired := item.replicas.desired
	_count(desired)
	_count(item.replicas.ready)
	desired >= scaling.min_replicas
	is_object(item.metrics)
	utilization := item.metrics[_metric_of[scaling.metric]]
	utilization <= scaling.scale_up_threshold_percent
	_not_shrinking(utilization, desired, scaling)
	every value in item.metrics {
		is_number(value)
		value >= 0
	}
	pods := object.get(item, "pods", [])
	is_array(pods)
	every pod in pods {
		is_string(pod.name)
		_count(pod.restart_count)
		not pod.reason in _failure_reasons
		pod.phase != "Failed"
	}
	_resources_in_band(object.get(item, "resources", {}), blueprint.governance.resource_band_percent)
	_breaker_flag_ok(object.get(item, "state", {}))
	time.parse_rfc3339_ns(item.now)
}

_not_shrinking(utilization, _, scaling) if utilization >= scaling.scale_down_threshold_percent

_not_shrinking(_, desired, scaling) if desired == scaling.min_replicas

_resources_in_band(resources, band) if {
	is_object(resources)
	every resource, fields in resources {
		_in_band(resource, fields, band)
	}
}

_in_band(resource, fields, band) if {
	request := quantity.amount(resource, fields.request)
	usage := quantity.amount(resource, fields.usage)
	request > 0
	abs(usage - request) * 100 <= band * request
}

_breaker_flag_ok(state) if {
	is_object(state)
	object.get(state, "breaker_open", false) in {true, false}
}

_count(value) if {
	is_number(value)
	value >= 0
	value == floor(value)
}
