# METADATA
# title: Kubernetes quantities
# description: |
#   Parse CPU quantities to millicores and memory quantities to bytes, and
#   write them back in the units people read. Anything that isn't a quantity
#   of that resource is undefined, so a rule resting on it can't fire.
# custom:
#   id: opsgate.lib.quantity
package opsgate.lib.quantity

# METADATA
# title: Unit
# description: The key under which the compiled blueprint holds each resource in its base unit.
# custom:
#   id: opsgate.lib.quantity.unit
unit := {"cpu": "millicores", "memory": "bytes"}

_mebibyte := 1048576

_kibibyte := 1024

# METADATA
# title: Amount
# description: |
#   A quantity of the named resource in its base unit: whole millicores for
#   cpu (100m, 0.5, 2; no binary suffix), whole bytes for memory (128Mi,
#   1Gi, 2G, 512; no milli suffix). Rounded up, like Kubernetes.
# scope: document
# custom:
#   id: opsgate.lib.quantity.amount
amount("cpu", q) := n if {
	# the common case (100m) without decimal arithmetic, which is slow in OPA
	endswith(q, "m")
	n := ceil(to_number(trim_suffix(q, "m")))
	n >= 0
} else := n if {
	is_string(q)
	not endswith(q, "i")
	n := ceil(units.parse(q) * 1000)
	n >= 0
} else := ceil(q * 1000) if {
	is_number(q)
	q >= 0
}

amount("memory", q) := n if {
	is_string(q)
	not endswith(q, "m")
	n := ceil(units.parse_bytes(q))
	n >= 0
} else := ceil(q) if {
	is_number(q)
	q >= 0
}

# METADATA
# title: Format
# description: An amount of the named resource written as a quantity (90m, 116Mi, 1536Ki).
# scope: document
# custom:
#   id: opsgate.lib.quantity.format
format("cpu", n) := sprintf("%dm", [n])

format("memory", n) := sprintf("%dMi", [n / _mebibyte]) if {
	n % _mebibyte == 0
} else := sprintf("%dKi", [n / _kibibyte]) if {
	n % _kibibyte == 0
} else := sprintf("%d", [n])

# METADATA
# title: Step unit
# description: The granularity in which computed amounts are rounded (1m of CPU, 1Mi of memory).
# scope: document
# custom:
#   id: opsgate.lib.quantity.step
step("cpu") := 1

step("memory") := _mebibyte
