# METADATA
# title: Failure recovery decisions
# description: |
#   Failed pods (CrashLoopBackOff, Error, OOMKilled, or phase Failed) are
#   restarted while their restart count is below
#   spec.reliability.max_restart_count; at or above it, a rollback is
#   proposed instead (and governance asks for approval).
# custom:
#   id: opsgate.decide.recovery
package opsgate.decide.recovery

import data.opsgate.lib.verdict

# METADATA
# title: Failure reasons
# description: Pod reasons that count as a failed pod.
# custom:
#   id: opsgate.decide.recovery.failure_reasons
failure_reasons := {"CrashLoopBackOff", "Error", "OOMKilled"}

# METADATA
# title: Recovery proposals
# description: Every recovery operation the service needs now.
# custom:
#   id: opsgate.decide.recovery.proposals
proposals(ctx) := [proposal] if {
	proposal := rollback(ctx)
} else := [p |
	some pod in _failed_pods(ctx)
	p := restart(ctx, pod)
]

# METADATA
# title: Restart a failed pod
# description: A failed pod with restart_count below max_restart_count is restarted.
# custom:
#   id: opsgate.decide.recovery.restart
restart(ctx, pod) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "restart_pod", "pod": pod.name},
	sprintf("pod %s is %s with %v restarts < max_restart_count %v", [pod.name, _state(pod), pod.restart_count, limit]),
	["spec.reliability.max_restart_count"],
) if {
	limit := ctx.blueprint.spec.reliability.max_restart_count
	pod.restart_count < limit
}

# METADATA
# title: Roll back a crashing version
# description: A failed pod with restart_count at or above max_restart_count means the version is broken.
# custom:
#   id: opsgate.decide.recovery.rollback
rollback(ctx) := verdict.proposal(
	rego.metadata.rule(),
	{"type": "rollback"},
	sprintf("%s at or above max_restart_count %v", [concat(", ", exhausted), limit]),
	["spec.reliability.max_restart_count"],
) if {
	limit := ctx.blueprint.spec.reliability.max_restart_count
	exhausted := sort([sprintf("pod %s is %s with %v restarts", [pod.name, _state(pod), pod.restart_count]) |
		some pod in _failed_pods(ctx)
		pod.restart_count >= limit
	])
	count(exhausted) > 0
}

_failed_pods(ctx) := [pod |
	some pod in ctx.pods
	_failed(pod)
]

_failed(pod) if pod.reason in failure_reasons

_failed(pod) if pod.phase == "Failed"

_state(pod) := pod.reason if pod.reason in failure_reasons

else := "Failed"
