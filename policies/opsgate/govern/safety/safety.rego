# METADATA
# title: Safety
# description: |
#   The circuit breaker forbids every operation while it is open (halted,
#   or as many consecutive failures as the blueprint's threshold); the
#   cooldown defers an allowed operation until spec.scaling.cooldown_seconds
#   have passed since the service's last operation; dry-run marks decisions
#   without changing their tiers.
# custom:
#   id: opsgate.govern.safety
package opsgate.govern.safety

import data.opsgate.lib.verdict

# METADATA
# title: Safety findings
# description: Findings that hold for every operation on the service.
# custom:
#   id: opsgate.govern.safety.findings
findings(ctx) := {f | f := breaker_open(ctx)}

# METADATA
# title: Circuit breaker open
# description: While the breaker is open every operation is forbidden, until a person resets it.
# custom:
#   id: opsgate.govern.safety.breaker_open
breaker_open(ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	breaker_reason(ctx),
	["governance.safety.circuit_breaker_threshold"],
	verdict.suggestion(
		sprintf("investigate, then run: opsgate breaker reset %s --key PATH --reason TEXT", [ctx.service]),
		null,
	),
)

# METADATA
# title: Why the breaker is open
# description: |
#   The breaker is open when the runner halted the service (a failed
#   rollback, or a reset no approver signed: state.breaker_open) or when the
#   consecutive failures reached governance.safety.circuit_breaker_threshold.
#   Undefined while it is closed.
# custom:
#   id: opsgate.govern.safety.breaker_reason
breaker_reason(ctx) := "circuit breaker open: human reset required" if {
	ctx.state.breaker_open == true
} else := sprintf(
	"circuit breaker open: %d consecutive failures reached circuit_breaker_threshold %d: human reset required",
	[ctx.state.consecutive_failures, threshold],
) if {
	threshold := ctx.blueprint.governance.safety.circuit_breaker_threshold
	ctx.state.consecutive_failures >= threshold
}

# METADATA
# title: Postponements
# description: Reasons to defer an otherwise allowed operation (the cooldown).
# custom:
#   id: opsgate.govern.safety.postponements
postponements(ctx) := {p |
	some found in [{q | q := cooldown(ctx)}, {q | q := unknown_time(ctx)}]
	some p in found
}

# METADATA
# title: Cooldown
# description: |
#   An allowed operation less than cooldown_seconds after the last one is
#   deferred; at exactly cooldown_seconds it is not.
# custom:
#   id: opsgate.govern.safety.cooldown
cooldown(ctx) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf(
		"last operation %ds ago, within cooldown_seconds %v",
		[floor(elapsed / 1000000000), ctx.blueprint.spec.scaling.cooldown_seconds],
	),
	["spec.scaling.cooldown_seconds"],
) if {
	elapsed := ctx.now_ns - ctx.state.last_operation_ns
	elapsed < ctx.blueprint.spec.scaling.cooldown_seconds * 1000000000
}

# METADATA
# title: Time unknown
# description: |
#   With a last operation on record but no readable time for it or for now,
#   the cooldown can't be measured, so allowed operations wait.
# custom:
#   id: opsgate.govern.safety.unknown_time
unknown_time(ctx) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	"the time of the last operation or of now is unknown: cooldown can't be measured",
	["spec.scaling.cooldown_seconds"],
) if {
	ctx.state.last_operation_at != null
	_unmeasurable(ctx)
}

_unmeasurable(ctx) if ctx.now_ns == null

_unmeasurable(ctx) if ctx.state.last_operation_ns == null

# METADATA
# title: Dry run
# description: governance.safety.dry_run marks every decision dry_run; tiers are unchanged and nothing is executed.
# custom:
#   id: opsgate.govern.safety.dry_run
dry_run(ctx) := ctx.blueprint.governance.safety.dry_run
