# METADATA
# title: Agent authority
# description: |
#   A blueprint's governance.agent_authority can make an operation type
#   stricter than the built-in tiers, never looser: listed as forbidden it is
#   forbidden, listed as requiring approval it needs approval at least, and
#   listed as allowed it keeps its built-in tier.
# custom:
#   id: opsgate.govern.authority
package opsgate.govern.authority

import data.opsgate.lib.verdict

# METADATA
# title: Authority findings
# description: What the blueprint's agent_authority says of one operation type.
# custom:
#   id: opsgate.govern.authority.findings
findings(operation, ctx) := {f |
	# only the lists that name the type are looked at closely
	some list, listed in ctx.blueprint.governance.agent_authority
	operation.type in listed
	f := _listed(list, operation, ctx)
}

_listed("forbidden", operation, ctx) := forbidden(operation, ctx)

_listed("requires_approval", operation, ctx) := requires_approval(operation, ctx)

_listed("allowed", operation, ctx) := allowed(operation, ctx)

# METADATA
# title: Listed as forbidden
# description: An operation type in governance.agent_authority.forbidden is forbidden.
# custom:
#   id: opsgate.govern.authority.forbidden
forbidden(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf("governance.agent_authority.forbidden lists %s", [operation.type]),
	["governance.agent_authority.forbidden"],
) if {
	operation.type in ctx.blueprint.governance.agent_authority.forbidden
}

# METADATA
# title: Listed as requiring approval
# description: An operation type in governance.agent_authority.requires_approval needs approval (or stricter).
# custom:
#   id: opsgate.govern.authority.requires_approval
requires_approval(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf("governance.agent_authority.requires_approval lists %s", [operation.type]),
	["governance.agent_authority.requires_approval"],
) if {
	operation.type in ctx.blueprint.governance.agent_authority.requires_approval
}

# METADATA
# title: Listed as allowed
# description: An operation type in governance.agent_authority.allowed keeps its built-in tier; it is never loosened.
# custom:
#   id: opsgate.govern.authority.allowed
allowed(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf("governance.agent_authority.allowed lists %s", [operation.type]),
	["governance.agent_authority.allowed"],
) if {
	operation.type in ctx.blueprint.governance.agent_authority.allowed
}
