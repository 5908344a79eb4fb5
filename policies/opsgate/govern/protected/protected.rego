# METADATA
# title: Protected objects
# description: |
#   Deleting the deployment, a service or a volume claim, and changing
#   secrets, network policies or RBAC are forbidden to automation, each with
#   what to do instead. Which types are protected, their tier and their
#   words come from the operation catalog (its `protected` and `floor`).
# custom:
#   id: opsgate.govern.protected
package opsgate.govern.protected

import data.opsgate.lib.verdict

# METADATA
# title: Protected-object findings
# description: The findings for one operation on a protected object.
# custom:
#   id: opsgate.govern.protected.findings
findings(operation, ctx) := {f |
	some found in [
		{g | g := delete_deployment(operation, ctx)},
		{g | g := other_objects(operation, ctx)},
	]
	some f in found
}

# METADATA
# title: Take the service down
# description: |
#   An operation that takes the whole service down (deleting the deployment:
#   its catalog entry is protected with `scale_instead_with`) gets its floor
#   tier; scaling to min_replicas with that type is suggested instead.
# custom:
#   id: opsgate.govern.protected.delete_deployment
delete_deployment(operation, ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	ctx.catalog[operation.type].floor,
	sprintf("%s %s is forbidden", [entry.what, operation.name]),
	["spec.scaling.min_replicas"],
	verdict.suggestion(
		sprintf("scale to min_replicas %v instead", [minimum]),
		{"type": entry.scale_instead_with, "to": minimum},
	),
) if {
	entry := ctx.catalog[operation.type].protected
	is_string(entry.scale_instead_with)
	minimum := ctx.blueprint.spec.scaling.min_replicas
}

# METADATA
# title: Other protected objects
# description: |
#   Services, volume claims, secrets, network policies and RBAC (each type
#   whose catalog entry is protected with an `instead`) get their floor tier,
#   with what to do instead.
# custom:
#   id: opsgate.govern.protected.other_objects
other_objects(operation, ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	ctx.catalog[operation.type].floor,
	sprintf("%s %s is forbidden", [entry.what, operation.name]),
	[],
	verdict.suggestion(entry.instead, null),
) if {
	entry := ctx.catalog[operation.type].protected
	is_string(entry.instead)
}
