# METADATA
# title: Approval requests
# description: |
#   What the runner does about a decision that needs approval, given its own
#   open and recently refused requests for the service (state.requests):
#   ask (new); keep the open request of the same kind when the decision has
#   not moved materially; supersede it when it has; or withhold when a
#   request of the same kind was rejected or expired within the last day and
#   the decision has not moved materially since (materially_different). Same
#   kind: the catalog's same_kind.
# custom:
#   id: opsgate.decide.requests
package opsgate.decide.requests

import data.opsgate.lib.quantity

# a rejected or expired request holds back the same ask for this long
_refusal_memory_ns := (24 * 3600) * 1000000000

# METADATA
# title: Request plan
# description: |
#   For one approve-tier operation: {"action": "new" | "keep" | "supersede"
#   | "withhold", "id": the request it keeps, supersedes or was refused as
#   (null for new), "reason": why, for people}.
# custom:
#   id: opsgate.decide.requests.plan
plan(ctx, operation) := {"action": "keep", "id": open.id, "reason": null} if {
	some open in _same_kind(ctx, operation, {"pending"})
	not materially_different(ctx, open.operation, operation)
} else := {
	"action": "supersede",
	"id": open.id,
	"reason": sprintf("supersedes request %s: the decision moved materially since it was asked", [open.id]),
} if {
	some open in _same_kind(ctx, operation, {"pending"})
} else := {
	"action": "withhold",
	"id": refused.id,
	"reason": sprintf(
		concat("", [
			"not asked again: request %s for the same change was %s less than a day ago, ",
			"and the decision has not moved materially since",
		]),
		[refused.id, refused.status],
	),
} if {
	some refused in _same_kind(ctx, operation, {"rejected", "expired"})
	ctx.now_ns - refused.at_ns < _refusal_memory_ns
	not materially_different(ctx, refused.operation, operation)
} else := {"action": "new", "id": null, "reason": null}

_same_kind(ctx, operation, statuses) := [request |
	some request in ctx.requests
	request.status in statuses
	kind(ctx.catalog, request.operation) == kind(ctx.catalog, operation)
]

# METADATA
# title: Kind of change
# description: |
#   The operation's type and the parameters that name what it changes (the
#   catalog's same_kind), defaults filled.
# custom:
#   id: opsgate.decide.requests.kind
kind(catalog, operation) := [operation.type, [object.get(operation, name, _default(catalog, operation.type, name)) |
	some name in catalog[operation.type].same_kind
]]

_default(catalog, type, name) := object.get(catalog[type].parameters[name], "default", null)

# METADATA
# title: Materially different
# description: |
#   Whether two operations of the same kind differ enough to ask again. A
#   replica count: more than tolerance_percent above the one asked, or more
#   than twice that below it (a count that wavers by one around a boundary
#   keeps its request); a request or limit: beyond resource_band_percent
#   either way; any other type: any other parameter.
# scope: document
# custom:
#   id: opsgate.decide.requests.materially_different
materially_different(ctx, asked, now) if {
	asked.type == "scale"
	now.type == "scale"
	now.to > asked.to
	(now.to - asked.to) * 100 > asked.to * ctx.blueprint.spec.scaling.tolerance_percent
}

materially_different(ctx, asked, now) if {
	asked.type == "scale"
	now.type == "scale"
	now.to < asked.to
	(asked.to - now.to) * 100 > (asked.to * 2) * ctx.blueprint.spec.scaling.tolerance_percent
}

materially_different(ctx, asked, now) if {
	asked.type == "adjust_resources"
	now.type == "adjust_resources"
	before := quantity.amount(asked.resource, asked.to)
	after := quantity.amount(now.resource, now.to)
	abs(after - before) * 100 > ctx.blueprint.governance.resource_band_percent * before
}

materially_different(_, asked, now) if {
	not asked.type in {"scale", "adjust_resources"}
	object.remove(asked, ["from"]) != object.remove(now, ["from"])
}
