# METADATA
# title: Kubernetes quantities
# description: |
#   Parse CPU quantities to millicores and memory quantities to bytes, and
#   write them back in the units people read. Anything that isn't a quantity
#   is undefined, so a rule resting on it can't fire.
# custom:
#   id: opsgate.lib.quantity
package opsgate.lib.quantity

_mebibyte := 1048576

_kibibyte := 1024

# METADATA
# title: Millicores
# description: A CPU quantity (100m, 0.5, 2) in whole millicores.
# custom:
#   id: opsgate.lib.quantity.millicores
millicores(q) := n if {
	# the common case (100m) without decimal arithmetic, which is slow in OPA
	is_string(q)
	endswith(q, "m")
	n := ceil(to_number(trim_suffix(q, "m")))
	n >= 0
} else := n if {
	is_string(q)
	not endswith(q, "m")
	not endswith(q, "i")
	n := round(units.parse(q) * 1000)
	n >= 0
} else := round(q * 1000) if {
	is_number(q)
	q >= 0
}

# METADATA
# title: Bytes
# description: A memory quantity (128Mi, 1Gi, 2G, 512) in whole bytes.
# custom:
#   id: opsgate.lib.quantity.bytes
bytes(q) := n if {
	is_string(q)
	not endswith(q, "m")
	n := ceil(units.parse_bytes(q))
	n >= 0
} else := ceil(q) if {
	is_number(q)
	q >= 0
}

# METADATA
# title: Amount
# description: A quantity of the named resource in its base unit (millicores for cpu, bytes for memory).
# custom:
#   id: opsgate.lib.quantity.amount
amount("cpu", q) := millicores(q)

amount("memory", q) := bytes(q)

# METADATA
# title: Format
# description: An amount of the named resource written as a quantity (90m, 116Mi, 1536Ki).
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
# custom:
#   id: opsgate.lib.quantity.step
step("cpu") := 1

step("memory") := _mebibyte
