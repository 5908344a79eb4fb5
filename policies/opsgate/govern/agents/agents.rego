# METADATA
# title: Per-agent authority
# description: |
#   An operation an AI agent proposes (actor.kind agent) is held to that
#   agent's entry in governance.agents as well as to everything else: an agent
#   not named there, or named read-only, or outside its namespaces, may read
#   but not act; a type its entry forbids or does not list is forbidden; a
#   type it lists as requiring approval needs approval at least. The entry
#   can only tighten the tiers (forbid always wins); people and the runner
#   are not held to it.
# custom:
#   id: opsgate.govern.agents
package opsgate.govern.agents

import data.opsgate.lib.verdict

# METADATA
# title: Agent findings
# description: What governance.agents says of one operation proposed by an agent; empty for anyone else.
# custom:
#   id: opsgate.govern.agents.findings
findings(operation, ctx) := {f |
	_is_agent(ctx)
	some f in _entry_findings(operation, ctx)
}

_entry_findings(operation, ctx) := {unknown(ctx)} if {
	not _entry(ctx)
} else := {f |
	entry := _entry(ctx)
	some found in [
		read_only(ctx, entry),
		outside_namespaces(ctx, entry),
		forbidden(operation, ctx, entry),
		not_listed(operation, ctx, entry),
		requires_approval(operation, ctx, entry),
		allowed(operation, ctx, entry),
	]
	some f in found
}

_is_agent(ctx) if _actor(ctx).kind == "agent"

_actor(ctx) := ctx.actor if is_object(ctx.actor)

else := {}

# the agent's entry; undefined for a name that is not a string or not listed
_entry(ctx) := entry if {
	name := _actor(ctx).name
	is_string(name)
	entry := ctx.blueprint.governance.agents[name]
	is_object(entry)
}

_name(ctx) := sprintf("%v", [object.get(_actor(ctx), "name", null)])

_list(entry, field) := {type | some type in object.get(entry, field, [])}

# METADATA
# title: Unknown agent
# description: An agent not named in governance.agents may read, not act.
# custom:
#   id: opsgate.govern.agents.unknown
unknown(ctx) := verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf("agent %s is not named in governance.agents: it may read, not act", [_name(ctx)]),
	["governance.agents"],
)

# METADATA
# title: Read-only agent
# description: An agent whose entry says read_only may read, not act.
# custom:
#   id: opsgate.govern.agents.read_only
read_only(ctx, entry) := [verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf("governance.agents.%s.read_only: it may read, not act", [_name(ctx)]),
	[sprintf("governance.agents.%s.read_only", [_name(ctx)])],
)] if {
	entry.read_only == true
} else := []

# METADATA
# title: Outside the agent's namespaces
# description: An agent whose entry lists namespaces acts only on services in them.
# custom:
#   id: opsgate.govern.agents.outside_namespaces
outside_namespaces(ctx, entry) := [verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf(
		"governance.agents.%s.namespaces does not list %s, the namespace of %s",
		[_name(ctx), ctx.blueprint.target.namespace, ctx.service],
	),
	[sprintf("governance.agents.%s.namespaces", [_name(ctx)]), "target.namespace"],
)] if {
	namespaces := object.get(entry, "namespaces", null)
	namespaces != null
	not ctx.blueprint.target.namespace in namespaces
} else := []

# METADATA
# title: Forbidden to the agent
# description: An operation type the agent's entry lists as forbidden is forbidden.
# custom:
#   id: opsgate.govern.agents.forbidden
forbidden(operation, ctx, entry) := [verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf("governance.agents.%s.forbidden lists %s", [_name(ctx), operation.type]),
	[sprintf("governance.agents.%s.forbidden", [_name(ctx)])],
)] if {
	operation.type in _list(entry, "forbidden")
} else := []

# METADATA
# title: Not listed for the agent
# description: |
#   An agent may propose only the types its entry lists as allowed or
#   requiring approval; any other type is forbidden to it.
# custom:
#   id: opsgate.govern.agents.not_listed
not_listed(operation, ctx, entry) := [verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf(
		"governance.agents.%s lists %s neither as allowed nor as requiring approval",
		[_name(ctx), operation.type],
	),
	[sprintf("governance.agents.%s.allowed", [_name(ctx)])],
)] if {
	not operation.type in (_list(entry, "allowed") | _list(entry, "requires_approval"))
} else := []

# METADATA
# title: Requires approval for the agent
# description: An operation type the agent's entry lists as requiring approval needs approval (or stricter).
# custom:
#   id: opsgate.govern.agents.requires_approval
requires_approval(operation, ctx, entry) := [verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf("governance.agents.%s.requires_approval lists %s", [_name(ctx), operation.type]),
	[sprintf("governance.agents.%s.requires_approval", [_name(ctx)])],
)] if {
	operation.type in _list(entry, "requires_approval")
} else := []

# METADATA
# title: Allowed to the agent
# description: An operation type the agent's entry lists as allowed keeps the tier the other rules give it.
# custom:
#   id: opsgate.govern.agents.allowed
allowed(operation, ctx, entry) := [verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf("governance.agents.%s.allowed lists %s", [_name(ctx), operation.type]),
	[sprintf("governance.agents.%s.allowed", [_name(ctx)])],
)] if {
	operation.type in _list(entry, "allowed")
} else := []

# METADATA
# title: What an agent may request
# description: |
#   Per service, the operation types an agent could ever get allowed or
#   approved: listed in its entry, not forbidden by its entry, the blueprint's
#   agent_authority or the catalog's floor, and the service in its namespaces.
#   An unknown or read-only agent may request nothing. The MCP server shows
#   request_operation only to an agent that may request something.
# custom:
#   id: opsgate.govern.agents.may_request
may_request(name, blueprint, catalog) := sorted if {
	entry := object.get(blueprint.governance, "agents", {})[name]
	is_object(entry)
	object.get(entry, "read_only", false) != true
	_in_namespaces(entry, blueprint.target.namespace)
	sorted := sort([type |
		some type in (_list(entry, "allowed") | _list(entry, "requires_approval"))
		not type in _list(entry, "forbidden")
		not type in object.get(blueprint.governance.agent_authority, "forbidden", [])
		object.get(catalog, [type, "floor"], "forbid") in {"allow", "approve"}
	])
} else := []

_in_namespaces(entry, namespace) if {
	object.get(entry, "namespaces", null) == null
} else if {
	namespace in entry.namespaces
}
