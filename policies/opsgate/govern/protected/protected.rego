# METADATA
# title: Protected objects
# description: |
#   Deleting the deployment, a service or a volume claim, and changing
#   secrets, network policies or RBAC are forbidden to automation, each with
#   what to do instead.
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
		{g | g := other_objects(operation)},
	]
	some f in found
}

# METADATA
# title: Delete the deployment
# description: Deleting the deployment is forbidden; scaling to min_replicas is suggested instead.
# custom:
#   id: opsgate.govern.protected.delete_deployment
delete_deployment(operation, ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("deleting deployment %s is forbidden", [operation.name]),
	["spec.scaling.min_replicas"],
	verdict.suggestion(
		sprintf("scale to min_replicas %d instead", [minimum]),
		{"type": "scale", "to": minimum},
	),
) if {
	operation.type == "delete_deployment"
	minimum := ctx.blueprint.spec.scaling.min_replicas
}

# METADATA
# title: Other protected objects
# description: Services, volume claims, secrets, network policies and RBAC are never changed by automation.
# custom:
#   id: opsgate.govern.protected.other_objects
other_objects(operation) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("%s %s is forbidden", [_what[operation.type], operation.name]),
	[],
	verdict.suggestion(_instead[operation.type], null),
) if {
	_what[operation.type]
}

_what := {
	"delete_service": "deleting service",
	"delete_pvc": "deleting volume claim",
	"modify_secret": "changing secret",
	"modify_network_policy": "changing network policy",
	"modify_rbac": "changing RBAC object",
}

_instead := {
	"delete_service": "keep the Service; to take traffic away, scale the deployment to min_replicas",
	"delete_pvc": "keep the claim: deleting it destroys data; ask the service owner",
	"modify_secret": "ask a person to rotate the secret through the secret store",
	"modify_network_policy": "propose the network policy change for security review",
	"modify_rbac": "propose the RBAC change for access review",
}
