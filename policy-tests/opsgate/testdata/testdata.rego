# METADATA
# title: Test data
# description: |
#   Compiled blueprints the policy tests run against: frontend and backend
#   as `opsgate compile blueprints` writes them (regenerate by copying from
#   build/data.json when the examples change).
# custom:
#   id: opsgate.testdata
package opsgate.testdata

import data.opsgate.main

# METADATA
# title: Observation
# description: A stable frontend observation; tests patch it.
# custom:
#   id: opsgate.testdata.observation
observation := {
	"service": "frontend",
	"now": "2026-02-10T12:00:00Z",
	"replicas": {"desired": 2, "ready": 2},
	"metrics": {
		"cpu_percent": 60,
		"memory_percent": 40,
		"latency_p95_ms": 150,
		"error_rate_percent": 0.1,
		"throughput_rps": 80,
	},
	"resources": {
		"cpu": {"request": "100m", "usage": "95m"},
		"memory": {"request": "128Mi", "usage": "120Mi"},
	},
	"pods": [
		{"name": "frontend-1", "phase": "Running", "ready": true, "restart_count": 0, "reason": null},
		{"name": "frontend-2", "phase": "Running", "ready": true, "restart_count": 0, "reason": null},
	],
	"state": {"last_operation_at": null, "consecutive_failures": 0, "breaker_open": false},
}

# METADATA
# title: Decide
# description: main.decide on the stable observation changed by JSON patch operations.
# custom:
#   id: opsgate.testdata.decide
decide(changes) := document if {
	document := main.decide with input as json.patch(observation, changes)
		with data.opsgate.blueprints as blueprints
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Enforce
# description: main.enforce on a request, with the test blueprints.
# custom:
#   id: opsgate.testdata.enforce
enforce(request) := verdict if {
	verdict := main.enforce with input as request
		with data.opsgate.blueprints as blueprints
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Enforce with blueprints
# description: main.enforce on a request, with the given compiled blueprints.
# custom:
#   id: opsgate.testdata.enforce_with
enforce_with(request, compiled) := verdict if {
	verdict := main.enforce with input as request
		with data.opsgate.blueprints as compiled
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Decide with blueprints
# description: main.decide on the stable observation changed by JSON patch operations, with the given blueprints.
# custom:
#   id: opsgate.testdata.decide_with
decide_with(changes, compiled) := document if {
	document := main.decide with input as json.patch(observation, changes)
		with data.opsgate.blueprints as compiled
		with data.opsgate.bundle as bundle
}

# METADATA
# title: Frontend changed
# description: The test blueprints with the frontend blueprint changed by JSON patch operations.
# custom:
#   id: opsgate.testdata.frontend_with
frontend_with(changes) := object.union(blueprints, {"frontend": json.patch(blueprints.frontend, changes)})

# METADATA
# title: Request
# description: An enforce request for the frontend, 2 replicas, no history.
# custom:
#   id: opsgate.testdata.request
request(operation) := {
	"service": "frontend",
	"operation": operation,
	"now": "2026-02-10T12:00:00Z",
	"replicas": {"desired": 2, "ready": 2},
	"state": {"last_operation_at": null, "consecutive_failures": 0, "breaker_open": false},
}

# METADATA
# title: Set
# description: A JSON patch operation that sets a value.
# custom:
#   id: opsgate.testdata.set
set(path, value) := {"op": "add", "path": path, "value": value}

# METADATA
# title: Remove
# description: A JSON patch operation that removes a value.
# custom:
#   id: opsgate.testdata.remove
remove(path) := {"op": "remove", "path": path}

# METADATA
# title: Operations
# description: The operations of a decision document, in order.
# custom:
#   id: opsgate.testdata.operations
operations(document) := [d.operation | some d in document.decisions]

# METADATA
# title: Tiers
# description: Each decision's operation and tier, in order.
# custom:
#   id: opsgate.testdata.tiers
tiers(document) := [[d.operation, d.tier] | some d in document.decisions]

# METADATA
# title: Blueprints
# description: The compiled frontend and backend blueprints.
# custom:
#   id: opsgate.blueprints
blueprints := {
	"backend": {
		"apiVersion": "opsgate/v1",
		"governance": {
			"agent_authority": {
				"allowed": [
					"scale",
					"adjust_resources",
					"restart_pod",
					"update_configmap",
				],
				"forbidden": [
					"delete_pod",
					"delete_deployment",
					"delete_service",
					"delete_pvc",
					"modify_secret",
					"modify_network_policy",
					"modify_rbac",
				],
				"requires_approval": [
					"rollback",
					"update_strategy",
					"update_health_checks",
				],
			},
			"approval_workflow": {
				"approvers": [
					"orders-oncall",
					"sre-lead",
				],
				"timeout_seconds": 1800,
			},
			"audit": {
				"format": "json",
				"retention_days": 90,
			},
			"resource_band_percent": 10,
			"safety": {
				"circuit_breaker_threshold": 3,
				"dry_run": false,
			},
		},
		"kind": "Blueprint",
		"metadata": {
			"description": "Order API; each replica holds 20 database connections",
			"name": "backend",
			"owner": "orders-team",
			"version": "1.2.0",
		},
		"source": "backend/blueprint.yaml",
		"spec": {
			"deployment": {
				"max_surge": 1,
				"max_unavailable": 0,
				"strategy": "RollingUpdate",
			},
			"performance": {
				"availability_percent": 99.95,
				"error_rate_percent": 0.5,
				"latency_p95_ms": 300,
				"throughput_rps": 60,
			},
			"reliability": {
				"max_restart_count": 2,
				"rollback_on_failure": true,
				"stabilization_seconds": 120,
			},
			"resources": {
				"cpu": {
					"limit": "1",
					"millicores": {
						"limit": 1000,
						"minimum": 100,
						"request": 250,
					},
					"minimum": "100m",
					"request": "250m",
				},
				"memory": {
					"bytes": {
						"limit": 536870912,
						"minimum": 201326592,
						"request": 268435456,
					},
					"limit": "512Mi",
					"minimum": "192Mi",
					"request": "256Mi",
				},
			},
			"scaling": {
				"cooldown_seconds": 600,
				"max_replicas": 3,
				"metric": "cpu",
				"min_replicas": 2,
				"scale_down_threshold_percent": 25,
				"scale_up_threshold_percent": 75,
			},
		},
		"target": {
			"deployment": "backend",
			"namespace": "shop",
		},
	},
	"frontend": {
		"apiVersion": "opsgate/v1",
		"governance": {
			"agent_authority": {
				"allowed": [
					"scale",
					"adjust_resources",
					"restart_pod",
					"update_configmap",
				],
				"forbidden": [
					"delete_pod",
					"delete_deployment",
					"delete_service",
					"delete_pvc",
					"modify_secret",
					"modify_network_policy",
					"modify_rbac",
				],
				"requires_approval": [
					"rollback",
					"update_strategy",
					"update_health_checks",
				],
			},
			"approval_workflow": {
				"approvers": [
					"platform-oncall",
					"sre-lead",
				],
				"timeout_seconds": 3600,
			},
			"audit": {
				"format": "json",
				"retention_days": 90,
			},
			"resource_band_percent": 10,
			"safety": {
				"circuit_breaker_threshold": 3,
				"dry_run": false,
			},
		},
		"kind": "Blueprint",
		"metadata": {
			"description": "Public web frontend serving the storefront pages",
			"name": "frontend",
			"owner": "web-platform",
			"version": "1.0.0",
		},
		"source": "frontend/blueprint.yaml",
		"spec": {
			"deployment": {
				"max_surge": 1,
				"max_unavailable": 0,
				"strategy": "RollingUpdate",
			},
			"performance": {
				"availability_percent": 99.9,
				"error_rate_percent": 1,
				"latency_p95_ms": 200,
				"throughput_rps": 100,
			},
			"reliability": {
				"max_restart_count": 3,
				"rollback_on_failure": true,
				"stabilization_seconds": 60,
			},
			"resources": {
				"cpu": {
					"limit": "500m",
					"millicores": {
						"limit": 500,
						"minimum": 50,
						"request": 100,
					},
					"minimum": "50m",
					"request": "100m",
				},
				"memory": {
					"bytes": {
						"limit": 268435456,
						"minimum": 67108864,
						"request": 134217728,
					},
					"limit": "256Mi",
					"minimum": "64Mi",
					"request": "128Mi",
				},
			},
			"scaling": {
				"cooldown_seconds": 300,
				"max_replicas": 5,
				"metric": "cpu",
				"min_replicas": 2,
				"scale_down_threshold_percent": 30,
				"scale_up_threshold_percent": 80,
			},
		},
		"target": {
			"deployment": "frontend",
			"namespace": "shop",
		},
	},
}

# METADATA
# title: Bundle
# description: A bundle revision for the tests.
# custom:
#   id: opsgate.bundle
bundle := {"revision": "test-revision", "blueprint_versions": {"frontend": "1.0.0", "backend": "1.2.0"}}
