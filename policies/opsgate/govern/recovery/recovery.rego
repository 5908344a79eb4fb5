# METADATA
# title: Recovery governance
# description: |
#   Restarting a pod (by a rollout restart) is allowed; a rollback replaces
#   the running version and asks for approval; deleting a pod is forbidden,
#   with restart_pod suggested instead.
# custom:
#   id: opsgate.govern.recovery
package opsgate.govern.recovery

import data.opsgate.lib.verdict

# METADATA
# title: Recovery findings
# description: The findings for one restart_pod, rollback or delete_pod operation.
# custom:
#   id: opsgate.govern.recovery.findings
findings(operation, ctx) := {f |
	some found in [
		{g | g := restart(operation)},
		{g | g := rollback(operation, ctx)},
		{g | g := delete_pod(operation)},
	]
	some f in found
}

# METADATA
# title: Restart a pod
# description: Restarting a pod is allowed; the runner does it with a rollout restart, never by deleting it.
# custom:
#   id: opsgate.govern.recovery.restart
restart(operation) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf("restarting pod %s is allowed (done as a rollout restart)", [operation.pod]),
	[],
) if {
	operation.type == "restart_pod"
}

# METADATA
# title: Roll back
# description: A rollback replaces the running version, so a person approves it.
# custom:
#   id: opsgate.govern.recovery.rollback
rollback(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf("a rollback replaces the running version of %s: approval needed", [ctx.service]),
	["governance.approval_workflow.approvers"],
) if {
	operation.type == "rollback"
}

# METADATA
# title: Delete a pod
# description: Deleting a pod is forbidden; restart it instead.
# custom:
#   id: opsgate.govern.recovery.delete_pod
delete_pod(operation) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("deleting pod %s is forbidden", [operation.name]),
	[],
	verdict.suggestion(
		sprintf("restart pod %s instead (restart_pod)", [operation.name]),
		{"type": "restart_pod", "pod": operation.name},
	),
) if {
	operation.type == "delete_pod"
}
