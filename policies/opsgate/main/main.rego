# METADATA
# title: opsgate entrypoints
# description: |
#   The questions the runner, people and AI agents ask. Each checks its
#   input first, builds one context per service, and routes to the concerns:
#   decide.* computes operations, govern.* classifies them, lib.verdict
#   shapes the answer. Input that breaks the contract gets no decision or a
#   forbid, with a reason; never an allow, never an evaluation error.
# custom:
#   id: opsgate.main
package opsgate.main

import data.opsgate.decide.quiet
import data.opsgate.decide.recovery
import data.opsgate.decide.requests
import data.opsgate.decide.resources
import data.opsgate.decide.scaling
import data.opsgate.govern.agents
import data.opsgate.govern.approval
import data.opsgate.govern.classify
import data.opsgate.govern.resources as govern_resources
import data.opsgate.govern.safety
import data.opsgate.lib.observation
import data.opsgate.lib.quantity
import data.opsgate.lib.verdict

# METADATA
# title: decide
# description: The decision document for one observed service (input is an Observation).
# entrypoint: true
# custom:
#   id: opsgate.main.decide
decide := decision_document(input, _static)

# METADATA
# title: decide_all
# description: >-
#   Decision documents for many services in one evaluation (input is {"services": [Observation, ...]}).
# entrypoint: true
# custom:
#   id: opsgate.main.decide_all
decide_all := {
	"bundle_revision": _static.revision,
	"services": [decision_document(item, _static) | some item in input.services],
	"notes": [],
} if {
	is_array(input.services)
} else := {
	"bundle_revision": _static.revision,
	"services": [],
	"notes": ["input.services must be a list of observations"],
}

# METADATA
# title: enforce
# description: |
#   One verdict for one operation proposed by a person or an agent
#   (input: service, operation, state, now, and replicas or resources when known;
#   actor, the requester; approval, a signed approval, whose check the verdict then carries).
# entrypoint: true
# custom:
#   id: opsgate.main.enforce
enforce := enforcement(input, _blueprints_for(input), _static)

# METADATA
# title: authority
# description: |
#   What one actor may ask of each service (input: actor, {kind, name}): for an
#   agent, the operation types its governance.agents entry could ever get allowed
#   or approved (empty for an unknown or read-only agent); may_act says whether
#   there is any. The MCP server lists request_operation only when it is true.
# entrypoint: true
# custom:
#   id: opsgate.main.authority
authority := {
	"actor": input.actor,
	"bundle_revision": _static.revision,
	"services": services,
	"may_act": count([s | some s in services; count(s.may_request) > 0]) > 0,
} if {
	is_object(input.actor)
	input.actor.kind == "agent"
	is_string(input.actor.name)
	services := {name: {"namespace": blueprint.target.namespace, "may_request": types} |
		some name, blueprint in data.opsgate.blueprints # regal ignore:external-reference
		types := agents.may_request(input.actor.name, blueprint, _static.catalog)
	}
} else := {
	"actor": object.get(observation.as_object(input), "actor", null),
	"bundle_revision": _static.revision,
	"services": {},
	"may_act": false,
}

# METADATA
# title: breaker
# description: |
#   Whether one service's circuit breaker is open (input: service, state).
#   The runner asks after it counts a failure and records what the policies
#   decided; an unknown service or a request that can't be read is open.
# entrypoint: true
# custom:
#   id: opsgate.main.breaker
breaker := {
	"service": input.service,
	"bundle_revision": _static.revision,
	"open": reason != null,
	"reason": reason,
} if {
	ctx := _context(input, _blueprints_for(input), _static)
	reason := _breaker_reason(ctx)
} else := {
	"service": object.get(observation.as_object(input), "service", null),
	"bundle_revision": _static.revision,
	"open": true,
	"reason": _service_problem(input),
}

_breaker_reason(ctx) := reason if {
	reason := safety.breaker_reason(ctx)
} else := null

# The compiled data the entrypoints read besides the blueprint. Blueprints
# are looked up one at a time (_blueprints_for): materialising all of
# data.opsgate.blueprints costs as much as the decisions themselves.
_static := {
	"catalog": data.opsgate.catalog.operations,
	"revision": data.opsgate.bundle.revision,
}

# the blueprint of the item's service, as a set of zero or one
_blueprints_for(item) := {blueprint | blueprint := data.opsgate.blueprints[item.service]}

# METADATA
# title: Decision document
# description: |
#   Every operation one service needs now, each with its verdict; notes say
#   what could not be decided; the recommended replicas are what the runner
#   records for the scale-down stabilization window.
# custom:
#   id: opsgate.main.decision_document
decision_document(item, static) := {
	"service": item.service,
	"blueprint": {"name": blueprint.metadata.name, "version": blueprint.metadata.version},
	"bundle_revision": static.revision,
	"dry_run": blueprint.governance.safety.dry_run,
	"decisions": [],
	"notes": [],
	"recommendation": {"replicas": item.replicas.desired},
} if {
	# the hot path: one read of the blueprint, no set built around it
	blueprint := data.opsgate.blueprints[item.service] # regal ignore:external-reference
	quiet.holds(item, blueprint)
} else := full_decision_document(item, _blueprints_for(item), static)

# METADATA
# title: Full decision document
# description: |
#   The decision document computed by every rule, without the quiet shortcut
#   (the policy tests compare the two).
# custom:
#   id: opsgate.main.full_decision_document
full_decision_document(item, blueprints, static) := {
	"service": item.service,
	"blueprint": _blueprint_name(ctx.blueprint),
	"bundle_revision": static.revision,
	"dry_run": dry_run,
	"decisions": [object.union_n([decision, {"dry_run": dry_run}, _request(ctx, decision)]) |
		some proposals in [recovery.proposals(ctx), scaling.proposals(ctx), resources.proposals(ctx)]
		some proposal in proposals
		decision := _decision(ctx, [proposal], proposal.operation)
	],
	"notes": array.concat(observation.notes(item), sort(scaling.notes(ctx))),
	"recommendation": {"replicas": _recommended_replicas(ctx)},
} if {
	ctx := _context(item, blueprints, static)
	dry_run := safety.dry_run(ctx)
} else := _unknown_service(item, static)

# a decision that needs approval says whether to ask, keep, supersede or withhold
_request(ctx, decision) := {"request": requests.plan(ctx, decision.operation)} if {
	decision.tier == "approve"
} else := {}

# what the runner records for the scale-down window; null when it can't be known
_recommended_replicas(ctx) := replicas if {
	replicas := scaling.recommendation(ctx)
} else := null

_blueprint_name(blueprint) := {"name": blueprint.metadata.name, "version": blueprint.metadata.version}

# METADATA
# title: Enforcement
# description: The verdict on one proposed operation; forbid with a reason when the request can't be understood.
# custom:
#   id: opsgate.main.enforcement
enforcement(request, blueprints, static) := object.union_n([
	_decision(ctx, [], _with_from(request.operation, ctx)),
	{
		"service": request.service,
		"blueprint": _blueprint_name(ctx.blueprint),
		"bundle_revision": static.revision,
		"dry_run": safety.dry_run(ctx),
	},
	_approval_check(request, ctx, static),
]) if {
	ctx := _context(request, blueprints, static)
} else := _refusal(request, static)

# a request that carries a signed approval gets the check of it; the tier stays
_approval_check(request, ctx, static) := {"approval": check} if {
	"approval" in object.keys(request)
	check := approval.check(request, ctx.blueprint, static.revision, ctx.now_ns)
} else := {}

_decision(ctx, leading, operation) := verdict.combined(
	verdict.decision_id(ctx.service, ctx.now, operation),
	operation,
	leading,
	findings,
	safety.postponements(ctx),
) if {
	findings := classify.findings(operation, ctx)
}

_context(item, blueprints, static) := {
	"service": item.service,
	"blueprint": blueprint,
	"catalog": static.catalog,
	"metrics": observation.metrics(item),
	"replicas": observation.replicas(observation.as_object(object.get(item, "replicas", {}))),
	"pods": observation.pods(item),
	"resources": observation.amounts(observation.as_object(object.get(item, "resources", {}))),
	"state": observation.state(object.get(item, "state", {})),
	"ticks": observation.ticks(object.get(item, "state", {})),
	"requests": observation.requests(object.get(item, "state", {})),
	"usage": {resource: summary |
		some resource in ["cpu", "memory"]
		summary := observation.usage_summary(object.get(item, "state", {}), resource)
	},
	"now": object.get(item, "now", null),
	# who proposes it (enforce): the agent rules read it; null for the runner's own decisions
	"actor": object.get(item, "actor", null),
	"now_ns": observation.time_ns(object.get(item, "now", null)),
} if {
	is_object(item)
	is_string(item.service)
	some blueprint in blueprints
}

# scale and adjust_resources report where they start from
_with_from(operation, ctx) := object.union(operation, {"from": ctx.replicas.desired}) if {
	operation.type == "scale"
	ctx.replicas != null
} else := object.union(operation, {"from": quantity.format(operation.resource, amount)}) if {
	operation.type == "adjust_resources"
	amount := govern_resources.current(ctx, operation.resource, object.get(operation, "field", "request"))
} else := operation

_unknown_service(item, static) := {
	"service": object.get(observation.as_object(item), "service", null),
	"blueprint": null,
	"bundle_revision": static.revision,
	"dry_run": false,
	"decisions": [],
	"notes": [_service_problem(item)],
	"recommendation": {"replicas": null},
}

_refusal(request, static) := {
	"id": verdict.decision_id(
		object.get(observation.as_object(request), "service", null),
		null,
		object.get(observation.as_object(request), "operation", null),
	),
	"operation": object.get(observation.as_object(request), "operation", null),
	"tier": "forbid",
	"reasons": [_service_problem(request)],
	"rules": ["opsgate.main.enforcement"],
	"blueprint_refs": [],
	"suggestion": null,
	"service": object.get(observation.as_object(request), "service", null),
	"blueprint": null,
	"bundle_revision": static.revision,
	"dry_run": false,
}

_service_problem(item) := "input is not an object" if {
	not is_object(item)
} else := "service is missing or not a string" if {
	not is_string(object.get(item, "service", null))
} else := sprintf("unknown service %q: no blueprint has that name", [item.service])
