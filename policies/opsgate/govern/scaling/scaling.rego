# METADATA
# title: Scaling governance
# description: |
#   The tier of a scale operation from the blueprint's replica limits:
#   inside min_replicas..max_replicas is allowed, outside asks for approval
#   naming the limit, and 0 replicas is forbidden.
# custom:
#   id: opsgate.govern.scaling
package opsgate.govern.scaling

import data.opsgate.lib.verdict

# METADATA
# title: Scaling findings
# description: The findings for one scale operation.
# custom:
#   id: opsgate.govern.scaling.findings
findings(operation, ctx) := {f |
	some found in [
		{g | g := within_limits(operation, ctx)},
		{g | g := above_maximum(operation, ctx)},
		{g | g := below_minimum(operation, ctx)},
		{g | g := to_zero(operation, ctx)},
	]
	some f in found
}

# METADATA
# title: Within limits
# description: A replica count between min_replicas and max_replicas (both included) is allowed.
# custom:
#   id: opsgate.govern.scaling.within_limits
within_limits(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf(
		"%v replicas is within min_replicas %v and max_replicas %v",
		[operation.to, scaling.min_replicas, scaling.max_replicas],
	),
	["spec.scaling.min_replicas", "spec.scaling.max_replicas"],
) if {
	operation.type == "scale"
	scaling := ctx.blueprint.spec.scaling
	operation.to >= scaling.min_replicas
	operation.to <= scaling.max_replicas
}

# METADATA
# title: Above max_replicas
# description: Needing more replicas than max_replicas asks for approval.
# custom:
#   id: opsgate.govern.scaling.above_maximum
above_maximum(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf("needs %v replicas, above max_replicas %v", [operation.to, ctx.blueprint.spec.scaling.max_replicas]),
	["spec.scaling.max_replicas"],
) if {
	operation.type == "scale"
	operation.to > ctx.blueprint.spec.scaling.max_replicas
}

# METADATA
# title: Below min_replicas
# description: Fewer replicas than min_replicas (but at least one) asks for approval.
# custom:
#   id: opsgate.govern.scaling.below_minimum
below_minimum(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf("needs %v replicas, below min_replicas %v", [operation.to, ctx.blueprint.spec.scaling.min_replicas]),
	["spec.scaling.min_replicas"],
) if {
	operation.type == "scale"
	operation.to > 0
	operation.to < ctx.blueprint.spec.scaling.min_replicas
}

# METADATA
# title: Scale to zero
# description: Zero replicas takes the service down and is forbidden.
# custom:
#   id: opsgate.govern.scaling.to_zero
to_zero(operation, ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	"scaling to 0 replicas takes the service down",
	["spec.scaling.min_replicas"],
	verdict.suggestion(
		sprintf("keep min_replicas >= 1: scale to min_replicas %v instead", [minimum]),
		{"type": "scale", "to": minimum},
	),
) if {
	operation.type == "scale"
	operation.to == 0
	minimum := ctx.blueprint.spec.scaling.min_replicas
}
