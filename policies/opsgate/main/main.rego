# METADATA
# title: opsgate entrypoints
# description: |
#   The entrypoints the runner queries. This first version only checks that
#   the service is known and reports the blueprint and bundle it answers for;
#   the decision rules arrive with the policy library.
# custom:
#   id: opsgate.main
package opsgate.main

# METADATA
# title: decide
# description: The decision document for one observed service.
# entrypoint: true
# custom:
#   id: opsgate.main.decide
decide := _decision_document(input)

_decision_document(observation) := {
	"service": observation.service,
	"blueprint": {
		"name": blueprint.metadata.name,
		"version": blueprint.metadata.version,
	},
	"bundle_revision": data.opsgate.bundle.revision,
	"decisions": [],
} if {
	blueprint := data.opsgate.blueprints[observation.service]
}
