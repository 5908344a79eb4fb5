"""Read a kubectl command line as opsgate operations, or as a read to pass through.

``opsgate gate -- kubectl ARGS…`` puts opsgate in front of agents that shell
out to kubectl. This module only reads the command line (and, through the
caller's ``read``, the manifests it names) and says what it means:

- a read that can't change anything and touches no Secret runs as it is
  (:class:`PassThrough`);
- a change the operation catalog covers becomes one :class:`Proposal` per
  operation, each resolved to the governed service it acts on
  (:class:`Proposed`), for the caller to ask OPA about and carry out;
- everything else is :class:`Refused`, with one line saying which word of the
  command caused it and why.

It fails closed: the command is parsed the way kubectl parses it (cobra and
pflag: flags anywhere, ``--flag=v``, ``--flag v``, ``-fv``, ``-f=v``, short
flags grouped, ``--``), against the flags each command really has; a flag it
doesn't know, a form it can't read exactly, or a field no operation covers is
refused rather than guessed. Flags that point kubectl at another cluster or
identity are refused for every command, reads included.

What a change maps to, where kubectl leaves room:

- a command naming several objects (``delete pod a b``, ``scale deploy a b``)
  is one proposal per object, in order; the caller refuses the whole when any
  verdict forbids;
- a write to a Secret, NetworkPolicy or RBAC object (``create secret``,
  ``patch secret``, ``delete role``, a Secret in a manifest) is proposed as
  ``modify_*`` without reading its contents, so Rego forbids it with its own
  reasons; the audit command masks the values of such a command line;
- flags that only shape kubectl's output (``-o``, ``--template``, …) or its
  connection (``--request-timeout``) are ignored on a change, which opsgate
  carries out and reports itself; every other flag of a change is refused;
- probes: a patch may change a probe's numbers only (kubectl would merge into
  a nested handler such as ``httpGet``, opsgate replaces it), a manifest may
  give whole handlers; a null (a removal) is refused everywhere but in a
  ConfigMap's data;
- ``explain secrets`` passes (the schema, not a Secret); ``--from-file`` and
  ``--from-env-file`` of a configmap are refused (the gate doesn't read them).

Pure: no I/O of its own, no logging; never raises for bad input.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeAlias

import yaml

from engine import operations
from engine.redact import MASK, SENSITIVE_KEY

try:  # libyaml's parser is many times faster on a large manifest, and yields the same events
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

# manifests and patches larger than this are refused unread: nothing an agent proposes needs more
MAX_INPUT_BYTES = 1024 * 1024
# nesting deeper than this is refused before it is built (PyYAML composes recursively)
MAX_DEPTH = 64
# a manifest of more objects than this is refused: nobody reviews such a change
MAX_DOCUMENTS = 1000
# how much of a word from the command a reason quotes
_QUOTE_CAP = 80


# --- the answer -----------------------------------------------------------------------


@dataclass(frozen=True)
class PassThrough:
    """A read-only command: run the real kubectl with exactly these arguments."""

    args: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    """A command that is never run: exit 4 with this one-line reason, and the command for
    the audit log (as :class:`Proposed` keeps it: values that may be secret masked)."""

    reason: str
    command: str = ""


@dataclass(frozen=True)
class Proposal:
    """One catalog operation on one governed service.

    ``pod_from_observation`` (``rollout restart``): the operation is a
    ``restart_pod`` without its ``pod``; the caller fills in a pod of the
    service it observed (opsgate's restart_pod is itself a rolling restart).

    ``container``: the container a patch or manifest names for a resources or
    probe change. opsgate changes the deployment's first container only, so
    the caller must refuse unless this is the name of that first container.
    ``None`` when the command names no container.
    """

    service: str
    operation: dict[str, Any]
    pod_from_observation: bool = False
    container: str | None = None


@dataclass(frozen=True)
class Proposed:
    """The operations a command means, in its order (at least one), and the command for the
    audit log (``kubectl …`` as ``shlex.join`` writes it, values of Secret flags masked)."""

    proposals: tuple[Proposal, ...]
    command: str


Plan: TypeAlias = PassThrough | Refused | Proposed


@dataclass(frozen=True)
class Governed:
    """A deployment a blueprint governs, and the service it belongs to."""

    service: str
    namespace: str
    deployment: str
    # the ConfigMaps the blueprint says the service owns (target.configmaps)
    configmaps: tuple[str, ...] = ()


def plan(args: Sequence[str], governed: Sequence[Governed], read: Callable[[str], str]) -> Plan:
    """What a kubectl command line means for opsgate: run it, propose operations, or refuse.

    ``args`` is what follows ``kubectl``; ``governed`` the deployments blueprints
    govern; ``read(path)`` returns a file's text (``'-'`` is standard input) and
    may raise OSError. Never raises for bad input: anything not understood
    exactly is :class:`Refused`.
    """
    words = tuple(args)
    try:
        return _plan(words, tuple(governed), read)
    except _Refusal as refusal:
        return Refused(refusal.reason, audit_command(words))


def audit_command(args: Sequence[str]) -> str:
    """``kubectl …`` for the audit log, however far the command is understood: a refused
    command is audited too, and a Secret's literal or a credential-looking configmap value
    in it must not reach the log (a refusal can come before or after the words that hold
    it). A command that can't be read at all, and looks sensitive anywhere, keeps only its
    command words and flag names."""
    words = tuple(args)
    try:
        path, rest = _command_path(words)
        command = _parse(words, path, rest)
    except _Refusal:
        return _masked_unread(words)
    return _audit_command(command)


# --- refusing -------------------------------------------------------------------------


class _Refusal(Exception):
    """Raised anywhere below; :func:`plan` turns it into :class:`Refused`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _refuse(reason: str) -> NoReturn:
    raise _Refusal(reason)


def _clean(text: str, cap: int = _QUOTE_CAP) -> str:
    """``text`` safe inside a one-line reason: non-printable characters escaped, cut short."""
    short = text if len(text) <= cap else text[: cap - 1] + "…"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in short)


def _q(text: str) -> str:
    """``text`` quoted for a reason (a word from the command, never a secret's value)."""
    return f"'{_clean(text)}'"


# --- flags, the way pflag reads them --------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """One flag of a command: its names, whether it takes a value, and the value it has
    when given bare (``true`` for a boolean; kubectl's NoOptDefVal for a few others)."""

    name: str
    short: str | None
    takes_value: bool
    bare: str | None
    refused: bool


def _flag_table(text: str) -> dict[str, _Spec]:
    """Flags from a compact table: ``x/name`` has the short form ``-x``, ``name?`` is a
    boolean, ``name~v`` takes a value that is ``v`` when given bare, ``name!`` is refused."""
    table = {}
    for entry in text.split():
        refused = entry.endswith("!")
        entry = entry.rstrip("!")
        short, _, entry = entry.rpartition("/")
        boolean = entry.endswith("?")
        name, _, bare = entry.rstrip("?").partition("~")
        table[name] = _Spec(
            name=name,
            short=short or None,
            takes_value=not boolean,
            bare="true" if boolean else (bare or None),
            refused=refused,
        )
    return table


# The flags every command has (kubectl options, 1.32), and -h.
_GLOBAL = _flag_table(
    "n/namespace h/help? request-timeout log-flush-frequency disable-compression?"
    " match-server-version? warnings-as-errors?"
    " as! as-group! as-uid! certificate-authority! client-certificate! client-key! cluster!"
    " context! insecure-skip-tls-verify?! kubeconfig! password! s/server! tls-server-name!"
    " token! user! username! kuberc! cache-dir! profile! profile-output! v/v! vmodule!"
)
# Refused on sight wherever they appear, even as a value or after '--': they change which
# cluster kubectl talks to, or as whom, or send a request the gate can't read.
_RETARGETING = frozenset(
    {
        "as",
        "as-group",
        "as-uid",
        "certificate-authority",
        "client-certificate",
        "client-key",
        "cluster",
        "context",
        "insecure-skip-tls-verify",
        "kubeconfig",
        "kuberc",
        "password",
        "raw",
        "server",
        "tls-server-name",
        "token",
        "user",
        "username",
    }
)
_RETARGET_REASON = (
    "{flag} would point kubectl at another cluster, user or credentials: the gate acts only "
    "on the cluster and as the identity it was set up with"
)
_FLAG_REFUSALS = {
    **dict.fromkeys(_RETARGETING - {"raw"}, _RETARGET_REASON),
    "raw": "{flag} sends a raw API request the gate can't read: name a resource instead",
    "cache-dir": "{flag} makes kubectl write its cache where the command says",
    "profile": "{flag} makes kubectl write a profile file where the command says",
    "profile-output": "{flag} makes kubectl write a profile file where the command says",
    "v": "{flag} turns on kubectl's debug logging, which prints raw requests and responses",
    "vmodule": "{flag} turns on kubectl's debug logging, which prints raw requests and responses",
    "kustomize": "{flag} builds objects from a kustomization the gate does not read: "
    "apply plain manifests with -f",
    "recursive": "{flag} reads a whole directory tree of manifests: give each file with -f",
    "filename": "{flag} on kubectl {command} names its objects in a file: "
    "name them on the command line (only apply -f and create -f read a file)",
    "dry-run": "{flag} on kubectl {command}: the gate doesn't run changes to preview them; "
    "use check_operation / opsgate enforce to ask without acting",
    "containers": "{flag} on kubectl {command}: opsgate changes the first container only; "
    "leave out -c",
    "from-file": "{flag} on kubectl {command}: the gate doesn't read files into a configmap; "
    "give each key with --from-literal",
    "from-env-file": "{flag} on kubectl {command}: the gate doesn't read files into a "
    "configmap; give each key with --from-literal",
    "insecure-skip-tls-verify-backend": "{flag} turns off the check of the kubelet's certificate",
}

# The commands the gate reads, with their own flags (kubectl 1.32, `kubectl CMD --help`).
_TEMPLATE = "allow-missing-template-keys? o/output show-managed-fields? template"
_FILES = "f/filename! k/kustomize! R/recursive!"
_CREATE = f"{_TEMPLATE} append-hash? dry-run~unchanged! field-manager save-config? validate~strict"
_COMMAND_FLAGS: dict[tuple[str, ...], dict[str, _Spec]] = {
    path: _flag_table(text)
    for path, text in {
        ("get",): f"{_TEMPLATE} {_FILES} A/all-namespaces? chunk-size field-selector"
        " ignore-not-found? L/label-columns no-headers? output-watch-events? raw! l/selector"
        " server-print? show-kind? show-labels? sort-by subresource w/watch? watch-only?",
        ("describe",): f"{_FILES} A/all-namespaces? chunk-size l/selector show-events?",
        ("logs",): "all-containers? all-pods? c/container f/follow? ignore-errors?"
        " insecure-skip-tls-verify-backend?! limit-bytes max-log-requests pod-running-timeout"
        " prefix? p/previous? l/selector since since-time tail timestamps?",
        ("top", "pod"): "A/all-namespaces? containers? field-selector no-headers? l/selector"
        " sort-by sum? use-protocol-buffers?",
        ("top", "node"): "no-headers? l/selector show-capacity? sort-by use-protocol-buffers?",
        ("explain",): "api-version o/output recursive?",
        ("events",): f"{_TEMPLATE} A/all-namespaces? chunk-size for no-headers? types w/watch?",
        ("api-resources",): "api-group cached? categories namespaced? no-headers? o/output"
        " sort-by verbs",
        ("api-versions",): "",
        ("version",): "client? o/output",
        ("cluster-info",): "",
        ("rollout", "status"): f"{_FILES} revision l/selector timeout w/watch?",
        ("rollout", "history"): f"{_TEMPLATE} {_FILES} revision l/selector",
        ("scale",): f"{_TEMPLATE} {_FILES} all? current-replicas dry-run~unchanged! replicas"
        " resource-version l/selector timeout",
        ("set", "resources"): f"{_TEMPLATE} {_FILES} all? c/containers! dry-run~unchanged!"
        " field-manager limits local? requests l/selector",
        ("rollout", "undo"): f"{_TEMPLATE} {_FILES} dry-run~unchanged! l/selector to-revision",
        ("rollout", "restart"): f"{_TEMPLATE} {_FILES} field-manager l/selector",
        ("patch",): f"{_TEMPLATE} {_FILES} dry-run~unchanged! field-manager local? p/patch"
        " patch-file subresource type",
        ("create", "configmap"): f"{_CREATE} from-env-file! from-file! from-literal",
        ("create", "secret", "generic"): f"{_CREATE} from-env-file from-file from-literal type",
        ("create", "secret", "tls"): f"{_CREATE} cert key",
        ("create", "secret", "docker-registry"): f"{_CREATE} docker-email docker-password"
        " docker-server docker-username from-file",
        ("create",): f"{_TEMPLATE} dry-run~unchanged! edit? field-manager f/filename"
        " k/kustomize! raw! R/recursive! save-config? l/selector validate~strict"
        " windows-line-endings?",
        ("apply",): f"{_TEMPLATE} all? cascade~background dry-run~unchanged! field-manager"
        " f/filename force? force-conflicts? grace-period k/kustomize! openapi-patch?"
        " overwrite? prune? prune-allowlist R/recursive! l/selector server-side? subresource"
        " timeout validate~strict wait?",
        ("delete",): "all? A/all-namespaces? cascade~background dry-run~unchanged!"
        " field-selector f/filename! force? grace-period ignore-not-found? i/interactive?"
        " k/kustomize! now? o/output raw! R/recursive! l/selector timeout wait?",
    }.items()
}


def _same(names: str) -> dict[str, str]:
    """Each of the space-separated ``names`` standing for itself (commands without aliases)."""
    return {name: name for name in names.split()}


# kubectl's commands (1.32) and the subcommands of those the gate reads further, by alias.
_SUBCOMMANDS: dict[tuple[str, ...], dict[str, str]] = {
    (): _same(
        "alpha annotate api-resources api-versions apply attach auth autoscale certificate"
        " cluster-info completion config cordon cp create debug delete describe diff drain edit"
        " events exec explain expose get help kustomize label logs options patch plugin"
        " port-forward proxy replace rollout run scale set taint top uncordon version wait"
    ),
    ("rollout",): _same("history pause restart resume status undo"),
    ("set",): _same("env image resources selector serviceaccount subject"),
    ("top",): {"node": "node", "nodes": "node", "no": "node"}
    | {"pod": "pod", "pods": "pod", "po": "pod"},
    ("cluster-info",): _same("dump"),
    ("apply",): _same("edit-last-applied set-last-applied view-last-applied"),
    ("create",): _same(
        "clusterrole clusterrolebinding configmap cronjob deployment ingress job namespace"
        " poddisruptionbudget priorityclass quota role rolebinding secret service"
        " serviceaccount token"
    )
    | {"cm": "configmap", "cj": "cronjob", "deploy": "deployment", "ing": "ingress"}
    | {"ns": "namespace", "pdb": "poddisruptionbudget", "pc": "priorityclass"}
    | {"resourcequota": "quota", "svc": "service", "sa": "serviceaccount"},
    ("create", "secret"): _same("docker-registry generic tls"),
}
# command groups that do nothing themselves: bare, kubectl prints their help
_GROUPS = {("rollout",), ("set",), ("top",), ("create", "secret")}
# flags that change only what kubectl prints or how it talks, never what a change does:
# ignored on commands the gate turns into operations (opsgate prints its own answer)
_HARMLESS = frozenset(
    {
        "allow-missing-template-keys",
        "disable-compression",
        "field-manager",
        "log-flush-frequency",
        "match-server-version",
        "output",
        "request-timeout",
        "show-managed-fields",
        "template",
        "warnings-as-errors",
    }
)
# flags whose values are repeated or comma lists by design (kubectl StringArray/StringSlice)
_LISTS = frozenset({"filename", "from-literal", "from-file"})
# pflag's ParseBool
_BOOLEANS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


@dataclass(frozen=True)
class _Flag:
    """A flag as given: its spec, how it was spelled (never with its value), its value,
    and where the value sits (to mask it): in the flag's own word after ``prefix``, or
    in the word at ``value_at``."""

    spec: _Spec
    spelled: str
    value: str
    at: int
    prefix: str | None = None
    value_at: int | None = None


@dataclass(frozen=True)
class _Command:
    """A parsed command line: the command path, its positional words, its flags."""

    args: tuple[str, ...]
    path: tuple[str, ...]
    positionals: tuple[str, ...]
    flags: tuple[_Flag, ...]
    dashed: bool = False

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def given(self, name: str) -> list[_Flag]:
        return [f for f in self.flags if f.spec.name == name]

    def one(self, name: str) -> str | None:
        """The value of a flag given at most once (a second time is refused: kubectl
        would silently keep only the last)."""
        given = self.given(name)
        if len(given) > 1:
            _refuse(f"{given[1].spelled} is given twice on kubectl {self.name}: give it once")
        return given[0].value if given else None

    def help_wanted(self) -> bool:
        values = [f.value for f in self.given("help")]
        return bool(values) and _BOOLEANS[values[-1]]


def _refuse_flag(spec: _Spec, spelled: str, path: tuple[str, ...]) -> NoReturn:
    template = _FLAG_REFUSALS.get(spec.name, "{flag} is not accepted on kubectl {command}")
    _refuse(template.format(flag=spelled, command=" ".join(path) or "(no command)"))


def _long_name(word: str) -> str:
    """The name of a long flag as kubectl looks it up: ``--dry_run=x`` is ``dry-run``
    (kubectl's flag sets turn ``_`` into ``-``)."""
    return word[2:].partition("=")[0].replace("_", "-")


def _refuse_unknown(spelled: str, path: tuple[str, ...]) -> NoReturn:
    where = f"kubectl {' '.join(path)}" if path else "kubectl before its command"
    _refuse(f"unknown flag {_q(spelled)} for {where}: the gate passes only flags it knows")


def _refuse_retargeting(args: tuple[str, ...]) -> None:
    """Refuse a retargeting flag written anywhere, even where kubectl would read it as a
    value or an argument: the gate never needs one, so a look-alike costs nothing."""
    dashed = False
    for word in args:
        if word == "--":
            dashed = True
        elif word.startswith("--"):
            name = _long_name(word)
            if name in _RETARGETING:
                _refuse(_FLAG_REFUSALS[name].format(flag=f"--{name}", command=""))
        elif word.startswith("-s") and not dashed:
            # -s is --server in every kubectl command, and no command has a short flag of its
            # own that could stand in a group before it: a word starting -s is --server
            _refuse(_FLAG_REFUSALS["server"].format(flag="-s", command=""))


def _read_flag(
    items: list[tuple[int, str]],
    i: int,
    specs: Mapping[str, _Spec],
    path: tuple[str, ...],
) -> tuple[list[_Flag], int]:
    """The flags in the word at ``items[i]`` (and its value word), and the next index."""
    at, word = items[i]
    i += 1
    found: list[_Flag] = []
    if word.startswith("--"):
        spelled, eq, value = word.partition("=")
        spec = specs.get(_long_name(word))
        if spec is None:
            _refuse_unknown(spelled, path)
        if spec.refused:
            _refuse_flag(spec, spelled, path)
        if eq:
            found.append(_Flag(spec, spelled, value, at, prefix=f"{spelled}="))
        elif spec.bare is not None:
            found.append(_Flag(spec, spelled, spec.bare, at))
        elif i < len(items):
            found.append(_Flag(spec, spelled, items[i][1], at, value_at=items[i][0]))
            i += 1
        else:
            _refuse(f"{spelled} needs a value")
        return found, i
    shorts = {s.short: s for s in specs.values() if s.short}
    group = word[1:]
    for j, letter in enumerate(group):
        spec = shorts.get(letter)
        spelled = f"-{letter}"
        if spec is None:
            _refuse_unknown(spelled, path)
        if spec.refused:
            _refuse_flag(spec, spelled, path)
        rest = group[j + 1 :]
        if rest.startswith("="):
            found.append(_Flag(spec, spelled, rest[1:], at, prefix=word[: j + 3]))
            break
        if spec.bare is not None:
            found.append(_Flag(spec, spelled, spec.bare, at))
            continue
        if rest:
            found.append(_Flag(spec, spelled, rest, at, prefix=word[: j + 2]))
        elif i < len(items):
            found.append(_Flag(spec, spelled, items[i][1], at, value_at=items[i][0]))
            i += 1
        else:
            _refuse(f"{spelled} needs a value")
        break
    return found, i


def _is_flag(word: str) -> bool:
    return word.startswith("-") and word != "-"


def _command_path(args: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[int, str]]]:
    """kubectl's command path (canonical names, aliases resolved) and the other words,
    each with its index, found as cobra finds it: command words come first, with the
    flags of the command so far between them. A flag there that the command doesn't
    have is refused (cobra would guess what it consumes)."""
    path: tuple[str, ...] = ()
    items = list(enumerate(args))
    rest: list[tuple[int, str]] = []
    i = 0
    while i < len(items):
        children = _SUBCOMMANDS.get(path)
        word = items[i][1]
        if children is None or word == "--":
            break
        if _is_flag(word):
            specs = {**_GLOBAL, **_COMMAND_FLAGS.get(path, {})}
            if word.startswith("--"):
                spelled, known = word.partition("=")[0], _long_name(word) in specs
            else:
                spelled = word[:2]
                known = any(spec.short == word[1] for spec in specs.values())
            if not known:
                if not path:
                    _refuse(f"flag {_q(spelled)} stands before the command: put it after")
                _refuse_unknown(spelled, path)
            start = i
            _, i = _read_flag(items, i, specs, path)
            rest.extend(items[start:i])
            continue
        if word not in children:
            break
        path = (*path, children[word])
        i += 1
    if not path and i < len(items) and items[i][1] != "--":
        _refuse(
            f"kubectl {_q(items[i][1])} is not a kubectl command the gate knows "
            "(plugins are never run through the gate)"
        )
    rest.extend(items[i:])
    return path, rest


def _parse(args: tuple[str, ...], path: tuple[str, ...], items: list[tuple[int, str]]) -> _Command:
    """The words after the command path, read against the command's flags."""
    specs = {**_GLOBAL, **_COMMAND_FLAGS.get(path, {})}
    positionals: list[str] = []
    flags: list[_Flag] = []
    dashed = False
    i = 0
    while i < len(items):
        word = items[i][1]
        if dashed or not _is_flag(word):
            positionals.append(word)
            i += 1
        elif word == "--":
            dashed = True
            i += 1
        else:
            found, i = _read_flag(items, i, specs, path)
            flags.extend(found)
    for flag in flags:
        if not flag.spec.takes_value and flag.value not in _BOOLEANS:
            _refuse(f"{flag.spelled} takes true or false, not {_q(flag.value)}")
    return _Command(args, path, tuple(positionals), tuple(flags), dashed)


# --- the command line as a whole ------------------------------------------------------

_READS = {
    ("get",),
    ("describe",),
    ("logs",),
    ("top", "pod"),
    ("top", "node"),
    ("explain",),
    ("events",),
    ("api-resources",),
    ("api-versions",),
    ("version",),
    ("cluster-info",),
    ("rollout", "status"),
    ("rollout", "history"),
}
_NOT_MAPPED = {
    ("edit",): "edit opens an editor: the change can't be known before it is made; "
    "use kubectl patch",
    ("replace",): "replace swaps the whole object: the gate can't tell what it changes; "
    "use kubectl patch or apply",
    ("cluster-info", "dump"): "cluster-info dump copies logs and objects of the whole "
    "cluster; use kubectl get, describe or logs",
    ("rollout", "pause"): "a paused rollout stops every later change from rolling out",
    ("rollout", "resume"): "rollout resume is not an operation opsgate carries out",
}


def _plan(
    args: tuple[str, ...], governed: tuple[Governed, ...], read: Callable[[str], str]
) -> Plan:
    _refuse_retargeting(args)
    path, rest = _command_path(args)
    if not path or path in {("help",), ("options",)}:
        command = _parse(args, (), rest)
        if not path and command.positionals:
            _refuse("no kubectl command before '--'")
        return PassThrough(args)
    if path in _GROUPS:
        command = _parse(args, path, rest)
        if command.positionals or any(f.spec.name != "help" for f in command.flags):
            choices = ", ".join(sorted(set(_SUBCOMMANDS[path].values())))
            _refuse(f"kubectl {' '.join(path)} needs one of: {choices}")
        return PassThrough(args)
    if path not in _COMMAND_FLAGS:
        if [word for _, word in rest] in (["-h"], ["--help"]):
            return PassThrough(args)
        why = _NOT_MAPPED.get(path, "the gate runs reads and the changes in the operation catalog")
        _refuse(f"kubectl {' '.join(path)} is not mapped to an opsgate operation: {why}")
    command = _parse(args, path, rest)
    if command.help_wanted():
        return PassThrough(args)
    if path in _READS:
        _check_read(command)
        return PassThrough(args)
    if command.dashed:
        _refuse(f"'--' on kubectl {command.name}: give the objects before any '--'")
    return _propose(command, governed, read)


def _check_read(command: _Command) -> None:
    """Refuse a read of a Secret: a resource type of ``get``/``describe`` that is a Secret in
    any spelling kubectl accepts (``secret``, ``Secrets``, ``secrets.v1.``, ``secret/db``,
    ``pods,secrets``), in any API group. Refuse too an output format that reads a file."""
    if command.path == ("cluster-info",) and command.positionals:
        _refuse(f"kubectl cluster-info takes no arguments, not {_q(command.positionals[0])}")
    for flag in command.given("output"):
        # go-template-file, jsonpath-file, custom-columns-file, templatefile: kubectl would
        # read a file of the gate's host (its kubeconfig, say) and print it as a template
        output = flag.value.partition("=")[0].lower()
        if output.endswith("-file") or output == "templatefile":
            _refuse(
                f"{flag.spelled} {_q(output)} makes kubectl read a local file as a template: "
                "give the template inline (-o go-template=…, -o jsonpath=…)"
            )
    if command.path not in {("get",), ("describe",)}:
        return
    for index, word in enumerate(command.positionals):
        if "/" in word:
            types = word.partition("/")[0]
        elif index == 0:
            types = word
        else:
            continue
        for kind in types.split(","):
            if kind.partition(".")[0].lower() in {"secret", "secrets"}:
                _refuse(
                    f"secrets are never read through the gate: kubectl {command.name} "
                    f"{_q(word)} reads a Secret; ask a person with access to the secret store"
                )


# --- what objects a command names -----------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """A Kubernetes kind the gate maps, the words kubectl accepts for it and its group."""

    kind: str
    label: str
    words: frozenset[str]
    group: str
    version: str


_KINDS = tuple(
    _Kind(kind, kind.lower(), frozenset(words.split()), group, version)
    for kind, words, group, version in (
        ("Deployment", "deployment deployments deploy", "apps", "v1"),
        ("Pod", "pod pods po", "", "v1"),
        ("Service", "service services svc", "", "v1"),
        ("PersistentVolumeClaim", "persistentvolumeclaim persistentvolumeclaims pvc", "", "v1"),
        ("Secret", "secret secrets", "", "v1"),
        ("ConfigMap", "configmap configmaps cm", "", "v1"),
        ("ServiceAccount", "serviceaccount serviceaccounts sa", "", "v1"),
        ("NetworkPolicy", "networkpolicy networkpolicies netpol", "networking.k8s.io", "v1"),
        ("Role", "role roles", "rbac.authorization.k8s.io", "v1"),
        ("ClusterRole", "clusterrole clusterroles", "rbac.authorization.k8s.io", "v1"),
        ("RoleBinding", "rolebinding rolebindings", "rbac.authorization.k8s.io", "v1"),
        (
            "ClusterRoleBinding",
            "clusterrolebinding clusterrolebindings",
            "rbac.authorization.k8s.io",
            "v1",
        ),
    )
)
_BY_KIND = {k.kind: k for k in _KINDS}
_RBAC = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ServiceAccount"})
# the catalog type a write of each protected kind is (Rego forbids them, with its reasons)
_PROTECTED_TYPES = {
    "Secret": "modify_secret",
    "NetworkPolicy": "modify_network_policy",
    **dict.fromkeys(_RBAC, "modify_rbac"),
}
_DELETE_TYPES = {
    "Pod": "delete_pod",
    "Deployment": "delete_deployment",
    "Service": "delete_service",
    "PersistentVolumeClaim": "delete_pvc",
    **_PROTECTED_TYPES,
}

_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9.:]{0,251}[a-z0-9])?")
_NAMESPACE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_CONTAINER = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def _kind_of(word: str) -> _Kind | None:
    """The kind a resource word names (``deploy``, ``Deployments``, ``deployments.apps``,
    ``deployments.v1.apps``), or None for one the gate doesn't map."""
    base, dot, rest = word.lower().partition(".")
    for kind in _KINDS:
        if base in kind.words:
            groups = {kind.group, f"{kind.version}.{kind.group}"}
            if not dot or rest in groups:
                return kind
    return None


def _checked_name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        _refuse(f"{what} name {_q(name)} is not a Kubernetes object name")
    return name


@dataclass(frozen=True)
class _Target:
    kind: _Kind
    name: str


def _targets(command: _Command) -> list[_Target]:
    """The objects a command names: ``TYPE NAME…`` or ``TYPE/NAME…``, kinds the gate maps."""
    words = command.positionals
    if not words:
        _refuse(f"kubectl {command.name} names no object: give TYPE NAME or TYPE/NAME")
    if any("/" in w for w in words):
        if not all("/" in w for w in words):
            _refuse(
                f"kubectl {command.name}: mix of TYPE/NAME and separate words "
                f"({', '.join(_q(w) for w in words[:3])}): use one form"
            )
        pairs = [w.partition("/")[::2] for w in words]
    else:
        pairs = [(words[0], name) for name in words[1:]]
        if not pairs:
            _refuse(f"kubectl {command.name} {_q(words[0])} names no object: give its name")
    targets: list[_Target] = []
    for word, name in pairs:
        kind = _kind_of(word)
        if kind is None:
            _refuse(
                f"kubectl {command.name} of {_q(word)} is not mapped to an opsgate operation: "
                "no catalog operation changes that kind of object"
            )
        target = _Target(kind, _checked_name(name, kind.label))
        if target in targets:
            _refuse(f"kubectl {command.name} names {kind.label} {_q(name)} twice")
        targets.append(target)
    return targets


# --- which governed service ---------------------------------------------------------------


def _namespace(command: _Command) -> str | None:
    namespace = command.one("namespace")
    if namespace is not None and not _NAMESPACE.fullmatch(namespace):
        _refuse(f"namespace {_q(namespace)} is not a Kubernetes namespace name")
    return namespace


def _deployment_service(name: str, namespace: str | None, governed: Sequence[Governed]) -> str:
    """The governed service of deployment ``name`` (in ``namespace`` when given)."""
    found = [g for g in governed if g.deployment == name and namespace in (None, g.namespace)]
    where = f"{namespace}/{name}" if namespace else name
    if not found:
        _refuse(
            f"deployment {where} is not governed by any blueprint: the gate changes only what "
            "opsgate governs"
        )
    if len({g.namespace for g in found}) > 1:
        namespaces = ", ".join(sorted({g.namespace for g in found}))
        _refuse(f"deployment {name} is governed in several namespaces ({namespaces}): give -n")
    if len({g.service for g in found}) > 1:
        services = ", ".join(sorted({g.service for g in found}))
        _refuse(f"deployment {where} is governed by several blueprints ({services})")
    return found[0].service


# what a pod of a deployment is called: <deployment>-<template hash>-<5 letters>
_POD_SUFFIX = re.compile(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}")


def _forbidden_everywhere(kind: _Kind) -> bool:
    """Whether every change of this kind is an operation the catalog forbids outright (a
    pod is not: it belongs to its deployment's service, found by its name)."""
    if kind.kind == "Pod":
        return False
    kinds = {_DELETE_TYPES.get(kind.kind), _PROTECTED_TYPES.get(kind.kind)} - {None}
    return bool(kinds) and all(operations.floor_of({"type": t}) == "forbid" for t in kinds)


def _object_service(
    kind: _Kind, name: str, namespace: str | None, governed: Sequence[Governed]
) -> str:
    """The governed service an object other than a deployment belongs to: by namespace
    (the one governed service there), or, for a pod, by its deployment's name."""
    if namespace is None:
        namespaces = sorted({g.namespace for g in governed})
        if len(namespaces) > 1:
            _refuse(
                f"{kind.label} {name}: governed services live in several namespaces "
                f"({', '.join(namespaces)}): give -n"
            )
        namespace = namespaces[0] if namespaces else None
    if not governed:
        _refuse(f"{kind.label} {name}: no service is governed by any blueprint")
    here = [g for g in governed if g.namespace == namespace]
    if not here:
        _refuse(
            f"{kind.label} {namespace or '?'}/{name}: no governed service lives in namespace "
            f"{namespace or '?'}: the gate changes only what opsgate governs"
        )
    if kind.kind == "Pod":
        owners = [g for g in here if name.startswith(f"{g.deployment}-")]
        if len(owners) > 1:
            owners = [g for g in owners if _POD_SUFFIX.fullmatch(name[len(g.deployment) + 1 :])]
        if len({g.service for g in owners}) == 1:
            return owners[0].service
    if kind.kind == "ConfigMap":
        # the service whose blueprint owns it (target.configmaps) answers for it
        owners = [g for g in here if name in g.configmaps]
        if len({g.service for g in owners}) == 1:
            return owners[0].service
    services = sorted({g.service for g in here})
    if len(services) > 1 and _forbidden_everywhere(kind):
        # whichever service answers, the catalog forbids it: the agent gets that reason
        return services[0]
    if len(services) > 1:
        _refuse(
            f"{kind.label} {namespace}/{name}: several services live in {namespace} "
            f"({', '.join(services)}): use opsgate execute --service S"
        )
    return services[0]


def _service(target: _Target, namespace: str | None, governed: Sequence[Governed]) -> str:
    if target.kind.kind == "Deployment":
        return _deployment_service(target.name, namespace, governed)
    return _object_service(target.kind, target.name, namespace, governed)


# --- changes ------------------------------------------------------------------------------


def _propose(command: _Command, governed: Sequence[Governed], read: Callable[[str], str]) -> Plan:
    handler = _HANDLERS[command.path]
    proposals = handler(command, governed, read)
    if not proposals:
        _refuse(f"kubectl {command.name} changes nothing a catalog operation covers")
    return Proposed(tuple(proposals), _audit_command(command))


def _only_flags(command: _Command, allowed: set[str]) -> None:
    """Refuse any flag but ``allowed`` and the harmless ones, and a flag given twice."""
    seen: set[str] = set()
    for flag in command.flags:
        name = flag.spec.name
        if name not in allowed and name not in _HARMLESS and name != "help":
            _refuse(
                f"{flag.spelled} on kubectl {command.name} is not mapped to an opsgate "
                "operation: leave it out"
            )
        if name in seen and name not in _LISTS:
            _refuse(f"{flag.spelled} is given twice on kubectl {command.name}: give it once")
        seen.add(name)


def _deployments(command: _Command) -> list[_Target]:
    targets = _targets(command)
    for target in targets:
        if target.kind.kind != "Deployment":
            _refuse(
                f"kubectl {command.name} of {target.kind.label} {_q(target.name)}: the gate "
                "changes deployments only this way"
            )
    return targets


_COUNT = re.compile(r"0|[1-9][0-9]{0,8}")


def _count(text: str | None, spelled: str, minimum: int = 0) -> int:
    if text is None or not _COUNT.fullmatch(text) or int(text) < minimum:
        _refuse(f"{spelled} takes a whole number >= {minimum}, not {_q(text or '')}")
    return int(text)


def _scale(
    command: _Command, governed: Sequence[Governed], _: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace", "replicas"})
    namespace = _namespace(command)
    replicas = command.one("replicas")
    if replicas is None:
        _refuse("kubectl scale needs --replicas=N")
    to = _count(replicas, "--replicas")
    return [
        Proposal(_service(t, namespace, governed), {"type": "scale", "to": to})
        for t in _deployments(command)
    ]


_QUANTITY = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?"
)


def _quantity(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(text, str) or len(text) > 64 or not _QUANTITY.fullmatch(text):
        shown = _q(text) if isinstance(text, str) else type(value).__name__
        _refuse(f"{where} is not a Kubernetes quantity: {shown}")
    return text


def _set_resources(
    command: _Command, governed: Sequence[Governed], _: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace", "requests", "limits"})
    namespace = _namespace(command)
    operations: list[dict[str, Any]] = []
    for flag_name, field_name in (("requests", "request"), ("limits", "limit")):
        text = command.one(flag_name)
        if text is None:
            continue
        seen: set[str] = set()
        for pair in text.split(","):
            resource, eq, amount = pair.partition("=")
            if not eq:
                _refuse(f"--{flag_name} takes cpu=Q,memory=Q, not {_q(pair)}")
            if resource not in {"cpu", "memory"}:
                _refuse(f"--{flag_name} {_q(resource)}: opsgate changes only cpu and memory")
            if resource in seen:
                _refuse(f"--{flag_name} names {resource} twice")
            seen.add(resource)
            operations.append(
                {
                    "type": "adjust_resources",
                    "resource": resource,
                    "field": field_name,
                    "to": _quantity(amount, f"--{flag_name} {resource}"),
                }
            )
    if not operations:
        _refuse("kubectl set resources needs --requests or --limits")
    return [
        Proposal(_service(t, namespace, governed), dict(operation))
        for t in _deployments(command)
        for operation in operations
    ]


def _rollout_undo(
    command: _Command, governed: Sequence[Governed], _: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace", "to-revision"})
    namespace = _namespace(command)
    operation: dict[str, Any] = {"type": "rollback"}
    revision = command.one("to-revision")
    if revision is not None and _count(revision, "--to-revision") > 0:
        operation["to_revision"] = int(revision)
    return [
        Proposal(_service(t, namespace, governed), dict(operation)) for t in _deployments(command)
    ]


def _rollout_restart(
    command: _Command, governed: Sequence[Governed], _: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace"})
    namespace = _namespace(command)
    return [
        Proposal(
            _service(t, namespace, governed), {"type": "restart_pod"}, pod_from_observation=True
        )
        for t in _deployments(command)
    ]


def _delete(
    command: _Command, governed: Sequence[Governed], _: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace"})
    namespace = _namespace(command)
    proposals = []
    for target in _targets(command):
        operation_type = _DELETE_TYPES.get(target.kind.kind)
        if operation_type is None:
            _refuse(
                f"kubectl delete of {target.kind.label} {_q(target.name)} is not mapped to an "
                "opsgate operation"
            )
        service = _service(target, namespace, governed)
        proposals.append(Proposal(service, {"type": operation_type, "name": target.name}))
    return proposals


def _only_name(command: _Command) -> str:
    if len(command.positionals) != 1:
        _refuse(f"kubectl {command.name} takes exactly one NAME")
    return command.positionals[0]


def _create_configmap(
    command: _Command, governed: Sequence[Governed], _: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace", "from-literal"})
    namespace = _namespace(command)
    name = _checked_name(_only_name(command), "configmap")
    changes: dict[str, Any] = {}
    for flag in command.given("from-literal"):
        key, eq, value = flag.value.partition("=")
        if not eq:
            _refuse(f"{flag.spelled} takes KEY=VALUE, not {_q(flag.value)}")
        _config_key(key, flag.spelled)
        if key in changes:
            _refuse(f"{flag.spelled} names key {_q(key)} twice")
        changes[key] = value
    if not changes:
        _refuse("kubectl create configmap without --from-literal changes no key")
    target = _Target(_BY_KIND["ConfigMap"], name)
    operation = {"type": "update_configmap", "name": name, "changes": changes}
    return [Proposal(_service(target, namespace, governed), operation)]


def _config_key(key: str, where: str) -> None:
    if not _CONFIG_KEY.fullmatch(key) or key in {".", ".."}:
        _refuse(f"{where}: {_q(key)} is not a configmap key")


def _create_secret(
    command: _Command, governed: Sequence[Governed], _: Callable[[str], str]
) -> list[Proposal]:
    # its contents don't matter: a Secret is never changed through the gate, and Rego says why
    _only_flags(command, {"namespace", *_COMMAND_FLAGS[command.path]})
    namespace = _namespace(command)
    name = _checked_name(_only_name(command), "secret")
    target = _Target(_BY_KIND["Secret"], name)
    return [
        Proposal(_service(target, namespace, governed), {"type": "modify_secret", "name": name})
    ]


def _patch(
    command: _Command, governed: Sequence[Governed], read: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace", "patch", "patch-file", "type"})
    namespace = _namespace(command)
    style = command.one("type") or "strategic"
    if style == "json":
        _refuse(
            "--type json on kubectl patch: a JSON patch's paths can't be mapped to operations "
            "safely; use a strategic or merge patch"
        )
    if style not in {"strategic", "merge"}:
        _refuse(f"--type {_q(style)} on kubectl patch: use strategic or merge")
    text, file = command.one("patch"), command.one("patch-file")
    if (text is None) == (file is None):
        _refuse("kubectl patch needs exactly one of -p PATCH and --patch-file FILE")
    proposals: list[Proposal] = []
    document: Any = None
    for target in _targets(command):
        kind = target.kind.kind
        service = _service(target, namespace, governed)
        if kind in _PROTECTED_TYPES:
            proposals.append(
                Proposal(service, {"type": _PROTECTED_TYPES[kind], "name": target.name})
            )
            continue
        if kind not in {"Deployment", "ConfigMap"}:
            _refuse(
                f"kubectl patch of {target.kind.label} {_q(target.name)} is not mapped to an "
                "opsgate operation"
            )
        if document is None:
            source = text if text is not None else _read_file(read, file or "", "--patch-file")
            document = _load_patch(source)
        where = f"kubectl patch {target.kind.label} {target.name}"
        if kind == "ConfigMap":
            changes = _configmap_changes(document, where, removals=True)
            update = {"type": "update_configmap", "name": target.name, "changes": changes}
            proposals.append(Proposal(service, update))
        else:
            for operation, container in _deployment_changes(document, style, where):
                proposals.append(Proposal(service, operation, container=container))
    return proposals


def _apply(
    command: _Command, governed: Sequence[Governed], read: Callable[[str], str]
) -> list[Proposal]:
    _only_flags(command, {"namespace", "filename"})
    if command.positionals:
        _refuse(f"kubectl {command.name} takes no arguments, not {_q(command.positionals[0])}")
    namespace = _namespace(command)
    files = [path for flag in command.given("filename") for path in _file_list(flag)]
    if not files:
        _refuse(f"kubectl {command.name} needs -f FILE (or -f - for standard input)")
    if files.count("-") > 1:
        _refuse("-f - is given twice: standard input can be read once")
    proposals: list[Proposal] = []
    for path in files:
        where = f"{'standard input' if path == '-' else _q(path)}: " if len(files) > 1 else ""
        text = _read_file(read, path, "-f")
        for label, document in _documents(text, where):
            proposals.extend(_document_proposals(document, label, namespace, governed, command))
    return proposals


def _create(
    command: _Command, governed: Sequence[Governed], read: Callable[[str], str]
) -> list[Proposal]:
    if command.positionals:
        _refuse(
            f"kubectl create {_q(command.positionals[0])} is not mapped to an opsgate operation: "
            "the gate creates configmaps (create configmap), or objects from a file with -f"
        )
    return _apply(command, governed, read)


_Handler = Callable[[_Command, Sequence[Governed], Callable[[str], str]], list[Proposal]]
_HANDLERS: dict[tuple[str, ...], _Handler] = {
    ("scale",): _scale,
    ("set", "resources"): _set_resources,
    ("rollout", "undo"): _rollout_undo,
    ("rollout", "restart"): _rollout_restart,
    ("patch",): _patch,
    ("delete",): _delete,
    ("create", "configmap"): _create_configmap,
    ("create", "secret", "generic"): _create_secret,
    ("create", "secret", "tls"): _create_secret,
    ("create", "secret", "docker-registry"): _create_secret,
    ("create",): _create,
    ("apply",): _apply,
}


# --- the command for the audit log ------------------------------------------------------------

# on these commands every flag value but these is masked: they carry the Secret's contents
_SECRET_COMMANDS = {("create", "secret", s) for s in ("generic", "tls", "docker-registry")}
_KEPT_ON_SECRETS = frozenset({"namespace", "type", "output", "help"})
# flags whose values carry a configmap's contents: masked when a key looks like a credential
_CONTENT_FLAGS = frozenset({"from-literal", "patch"})


def _names_a_secret(command: _Command) -> bool:
    """Whether a patch names a Secret among its objects (``secret db``, ``secrets/db``)."""
    words = command.positionals
    types = [w.partition("/")[0] for w in words if "/" in w] or list(words[:1])
    kinds = [_kind_of(t) for t in types]
    return any(kind is not None and kind.kind == "Secret" for kind in kinds)


def _audit_command(command: _Command) -> str:
    """``kubectl …`` for the audit log. On a command that writes a Secret from the command
    line (create secret, patch secret), every flag value but the namespace and the like is
    masked, so a literal or a patch with a secret in it never reaches the log; a
    ``--from-literal`` or ``-p`` whose key looks like a credential (the words the policies
    and engine.redact treat as sensitive) is masked on any command."""
    words = list(command.args)
    secret = command.path in _SECRET_COMMANDS or (
        command.path == ("patch",) and _names_a_secret(command)
    )
    for flag in command.flags:
        if not flag.spec.takes_value:
            continue
        if secret:
            masked = flag.spec.name not in _KEPT_ON_SECRETS
        else:
            key = flag.value.partition("=")[0] if flag.spec.name == "from-literal" else flag.value
            masked = flag.spec.name in _CONTENT_FLAGS and SENSITIVE_KEY.search(key) is not None
        if not masked:
            continue
        if flag.value_at is not None:
            words[flag.value_at] = MASK
        elif flag.prefix is not None:
            words[flag.at] = f"{flag.prefix}{MASK}"
    return shlex.join(["kubectl", *words])


def _masked_unread(words: tuple[str, ...]) -> str:
    """A command that could not be parsed, for the audit log: as given, unless some word
    looks sensitive (a Secret, a credential's key word); then only command words and flag
    names are kept, every other word (and every flag's value) is masked."""
    if not any("secret" in w.lower() or SENSITIVE_KEY.search(w) for w in words):
        return shlex.join(["kubectl", *words])
    commands = {w for children in _SUBCOMMANDS.values() for w in children}
    kept: list[str] = []
    for word in words:
        if word in commands or word == "--":
            kept.append(word)
        elif word.startswith("--"):
            name, eq, _ = word.partition("=")
            kept.append(f"{name}={MASK}" if eq else name)
        elif word.startswith("-") and len(word) > 1:
            kept.append(word if len(word) == 2 else f"{word[:2]}{MASK}")
        else:
            kept.append(MASK)
    return shlex.join(["kubectl", *kept])


# --- files and documents ------------------------------------------------------------------------


def _file_list(flag: _Flag) -> list[str]:
    """The files of one -f (kubectl splits its value at commas)."""
    if '"' in flag.value:
        _refuse(f"{flag.spelled} {_q(flag.value)}: quoted file names are not accepted")
    paths = flag.value.split(",")
    for path in paths:
        if not path:
            _refuse(f"{flag.spelled} needs a file name")
        if re.match(r"(?i)https?://", path):
            _refuse(
                f"{flag.spelled} {_q(path)}: the gate doesn't fetch manifests from URLs; "
                "download and review the file, then apply it"
            )
    return paths


def _read_file(read: Callable[[str], str], path: str, spelled: str) -> str:
    if spelled == "--patch-file" and path == "-":
        _refuse("--patch-file - : kubectl reads patches from files, not standard input")
    shown = "standard input" if path == "-" else _q(path)
    try:
        text = read(path)
    except OSError as e:
        _refuse(f"can't read {shown} ({spelled}): {_clean(e.strerror or type(e).__name__)}")
    except UnicodeError:
        _refuse(f"can't read {shown} ({spelled}): not UTF-8 text")
    if not isinstance(text, str):
        _refuse(f"can't read {shown} ({spelled}): not text")
    if len(text) > MAX_INPUT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        _refuse(f"{shown} ({spelled}) is over the 1 MiB limit for the gate")
    return text


class _ManifestLoader(_SafeLoader):
    """A safe YAML loader that reads scalars as kubectl's YAML library does, or refuses:
    timestamps and ``=`` stay text, ``y``/``n`` are booleans, and a number written any
    way but plain decimal (``0x10``, ``010``, ``1_0``, ``1:30``, ``.inf``) is refused,
    because the two libraries read those differently. Duplicate keys are refused."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag not in {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ManifestLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN")
)
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _scalar_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(node.value)


def _plain_number(node: yaml.Node, pattern: re.Pattern[str], longest: int) -> str:
    """The scalar's text when kubectl reads it as PyYAML does (plain decimal), else an error."""
    text = str(node.value)
    if not pattern.fullmatch(text) or len(text) > longest:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"number {_q(text)} is read differently by kubectl: write it in plain "
            "decimal, or quote it",
            node.start_mark,
        )
    return text


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    return int(_plain_number(node, _PLAIN_INT, 20))


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    return float(_plain_number(node, _PLAIN_FLOAT, 40))


def _construct_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return _scalar_text(loader, node).lower() in {"y", "yes", "true", "on"}


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    assert isinstance(node, yaml.MappingNode)
    loader.flatten_mapping(node)
    seen: set[str] = set()
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode):
            if key.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key.value!r}", key.start_mark
                )
            seen.add(key.value)
    return loader.construct_mapping(node, deep=True)


_ManifestLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_ManifestLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_ManifestLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_ManifestLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _yaml_problem(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    line = f" (line {mark.line + 1})" if mark is not None else ""
    return f"{_clean(str(problem), cap=200)}{line}"


def _scan_yaml(text: str, label: Callable[[int], str]) -> None:
    """Refuse, before anything is built, YAML that is malformed, uses aliases (a few bytes
    of them can stand for gigabytes) or nests deeper than :data:`MAX_DEPTH`."""
    number, depth = 0, 0
    try:
        for event in yaml.parse(text, Loader=_ManifestLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                number += 1
                if number > MAX_DOCUMENTS:
                    _refuse(f"{label(number)}: over {MAX_DOCUMENTS} documents in one file")
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    _refuse(f"{label(number)}: nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                _refuse(
                    f"{label(number)}: uses a YAML alias (*{_clean(event.anchor or '')}): "
                    "write the value out"
                )
    except yaml.YAMLError as e:
        _refuse(f"{label(max(number, 1))} is not valid YAML: {_yaml_problem(e)}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _json_depth_ok(text: str) -> bool:
    """Whether JSON ``text`` nests no deeper than :data:`MAX_DEPTH` (brackets inside strings
    don't count): Python's decoder recurses, so deeper input is refused before decoding."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _documents(text: str, where: str) -> Iterator[tuple[str, Any]]:
    """The objects of a manifest file, each with its label (``document 2``, ``document 1,
    item 3``): a stream of JSON objects, or YAML documents; ``List`` kinds are unpacked.
    Empty documents are skipped, as kubectl does."""
    raw: list[Any] = []
    if text.lstrip().startswith("{"):
        if not _json_depth_ok(text):
            _refuse(f"{where}document 1: nested deeper than {MAX_DEPTH} levels")
        position = 0
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                position += 1
            if position == len(text):
                break
            try:
                document, position = _JSON.raw_decode(text, position)
            except ValueError as e:
                _refuse(f"{where}document {len(raw) + 1} is not valid JSON: {_clean(str(e))}")
            raw.append(document)
            if len(raw) > MAX_DOCUMENTS:
                _refuse(f"{where}document {len(raw)}: over {MAX_DOCUMENTS} documents in one file")
    else:
        _scan_yaml(text, lambda number: f"{where}document {number}")
        loaded = yaml.load_all(text, Loader=_ManifestLoader)
        while True:
            try:
                raw.append(next(loaded))
            except StopIteration:
                break
            except yaml.YAMLError as e:
                _refuse(f"{where}document {len(raw) + 1} is not valid YAML: {_yaml_problem(e)}")
    found = False
    for number, document in enumerate(raw, 1):
        label = f"{where}document {number}"
        if document is None:
            continue
        if not isinstance(document, dict):
            _refuse(f"{label} is not a Kubernetes object (a mapping)")
        kind = document.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in document:
            items = document["items"]
            if not isinstance(items, list):
                _refuse(f"{label}: items of a {_clean(kind)} is not a list")
            for index, item in enumerate(items, 1):
                if not isinstance(item, dict):
                    _refuse(f"{label}, item {index} is not a Kubernetes object (a mapping)")
                found = True
                yield f"{label}, item {index}", item
            continue
        found = True
        yield label, document
    if not found:
        _refuse(f"{where.removesuffix(': ') or 'the file'} holds no Kubernetes object")


def _load_patch(text: str) -> Any:
    """A patch as kubectl reads it: JSON, or else YAML."""
    if len(text) > MAX_INPUT_BYTES:
        _refuse("the patch is over the 1 MiB limit for the gate")
    if text.lstrip().startswith("{") and _json_depth_ok(text):
        try:
            return _JSON.decode(text)
        except ValueError:
            pass  # YAML flow style ({spec: {replicas: 3}}) is accepted too
    _scan_yaml(text, lambda _: "the patch")
    try:
        return yaml.load(text, Loader=_ManifestLoader)
    except yaml.YAMLError as e:
        _refuse(f"the patch is not valid JSON or YAML: {_yaml_problem(e)}")


# --- what a patch or a manifest changes ---------------------------------------------------------


def _path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return _clean(text)


@dataclass(frozen=True)
class _Walk:
    """Where a mapping sits and what to say about a field no operation covers."""

    where: str
    unmapped: str
    parts: tuple[str | int, ...] = ()

    def at(self, *parts: str | int) -> _Walk:
        return _Walk(self.where, self.unmapped, (*self.parts, *parts))

    def mapping(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            what = "null (a removal)" if value is None else type(value).__name__
            _refuse(f"{self.where}: {_path(self.parts)} is {what}, not a mapping")
        for key in value:
            if not isinstance(key, str):
                _refuse(f"{self.where}: {_path(self.parts)} has a key that is not a string")
        return value

    def only(self, value: dict[str, Any], allowed: Sequence[str]) -> None:
        for key in value:
            if key not in allowed:
                _refuse(f"{self.where}: {self.unmapped.format(path=_path((*self.parts, key)))}")
            if value[key] is None:
                _refuse(
                    f"{self.where}: removes {_path((*self.parts, key))} (null), which no "
                    "catalog operation does"
                )


_PROBE_NUMBERS = (
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
)
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_PROBES = (
    ("livenessProbe", "liveness"),
    ("readinessProbe", "readiness"),
    ("startupProbe", "startup"),
)
_SURGE = re.compile(r"[0-9]{1,9}%?")


def _whole(value: Any, walk: _Walk, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        _refuse(f"{walk.where}: {_path((*walk.parts, key))} is not a whole number >= 0")
    return value


def _plain_json(value: Any, walk: _Walk, depth: int = 0) -> Any:
    """``value`` if it is plain JSON (what goes into an operation), else refused."""
    if depth > MAX_DEPTH:
        _refuse(f"{walk.where}: {_path(walk.parts)} nests too deep")
    if isinstance(value, dict):
        return {k: _plain_json(v, walk.at(k), depth + 1) for k, v in walk.mapping(value).items()}
    if isinstance(value, list):
        return [_plain_json(v, walk.at(i), depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, str | int | float):
        return value
    _refuse(f"{walk.where}: {_path(walk.parts)} is not plain JSON ({type(value).__name__})")


def _deployment_changes(
    document: Any, style: str, where: str
) -> list[tuple[dict[str, Any], str | None]]:
    """The operations a Deployment patch (``style`` strategic or merge: the whole patch) or
    manifest (``style`` apply: its spec) means, each with the container it names:
    spec.replicas, spec.strategy.rollingUpdate and the one container's resources and
    probes. Any other field is refused, naming it."""
    if style == "apply":
        unmapped = (
            "apply would also set {path}, which no catalog operation covers: apply only "
            "replicas, the rolling update and the container's resources and probes, "
            "or use kubectl patch"
        )
        root = _Walk(where, unmapped)
        spec_walk = root.at("spec")
        spec = spec_walk.mapping(document)
    else:
        unmapped = (
            "the patch also sets {path}, which no catalog operation covers: patch only "
            "spec.replicas, spec.strategy.rollingUpdate and the first container's "
            "resources and probes"
        )
        root = _Walk(where, unmapped)
        top = root.mapping(document)
        root.only(top, ("spec",))
        if "spec" not in top:
            return []
        spec_walk = root.at("spec")
        spec = spec_walk.mapping(top["spec"])
    spec_walk.only(spec, ("replicas", "strategy", "template"))
    changes: list[tuple[dict[str, Any], str | None]] = []
    if "replicas" in spec:
        changes.append(
            ({"type": "scale", "to": _whole(spec["replicas"], spec_walk, "replicas")}, None)
        )
    if "strategy" in spec:
        strategy_walk = spec_walk.at("strategy")
        strategy = strategy_walk.mapping(spec["strategy"])
        strategy_walk.only(strategy, ("rollingUpdate",))
        if "rollingUpdate" in strategy:
            rolling_walk = strategy_walk.at("rollingUpdate")
            rolling = rolling_walk.mapping(strategy["rollingUpdate"])
            rolling_walk.only(rolling, ("maxSurge", "maxUnavailable"))
            strategy_changes: dict[str, Any] = {}
            for key, name in (("maxSurge", "max_surge"), ("maxUnavailable", "max_unavailable")):
                if key not in rolling:
                    continue
                value = rolling[key]
                if isinstance(value, str) and _SURGE.fullmatch(value) and value.endswith("%"):
                    strategy_changes[name] = value
                else:
                    strategy_changes[name] = _whole(value, rolling_walk, key)
            if strategy_changes:
                changes.append(({"type": "update_strategy", "changes": strategy_changes}, None))
    if "template" in spec:
        changes.extend(_container_changes(spec["template"], spec_walk.at("template"), style))
    return changes


def _container_changes(
    value: Any, walk: _Walk, style: str
) -> list[tuple[dict[str, Any], str | None]]:
    template = walk.mapping(value)
    walk.only(template, ("spec",))
    if "spec" not in template:
        return []
    pod_walk = walk.at("spec")
    pod = pod_walk.mapping(template["spec"])
    pod_walk.only(pod, ("containers",))
    if "containers" not in pod:
        return []
    if style == "merge":
        _refuse(
            f"{walk.where}: a merge patch replaces the whole list "
            f"{_path((*pod_walk.parts, 'containers'))}: use a strategic patch (the default)"
        )
    containers = pod["containers"]
    if not isinstance(containers, list) or len(containers) != 1:
        count = len(containers) if isinstance(containers, list) else "no list of"
        _refuse(
            f"{walk.where}: names {count} containers: opsgate changes the first container "
            "only; name just that one"
        )
    container_walk = pod_walk.at("containers", 0)
    container = container_walk.mapping(containers[0])
    container_walk.only(container, ("name", "resources", *(p for p, _ in _PROBES)))
    name = container.get("name")
    if not isinstance(name, str) or not _CONTAINER.fullmatch(name):
        _refuse(f"{walk.where}: {_path(container_walk.parts)} needs the container's name")
    changes: list[tuple[dict[str, Any], str | None]] = []
    if "resources" in container:
        resources_walk = container_walk.at("resources")
        resources = resources_walk.mapping(container["resources"])
        resources_walk.only(resources, ("requests", "limits"))
        for key, field_name in (("requests", "request"), ("limits", "limit")):
            if key not in resources:
                continue
            amounts_walk = resources_walk.at(key)
            amounts = amounts_walk.mapping(resources[key])
            amounts_walk.only(amounts, ("cpu", "memory"))
            for resource, amount in amounts.items():
                adjust: dict[str, Any] = {
                    "type": "adjust_resources",
                    "resource": resource,
                    "field": field_name,
                    "to": _quantity(
                        amount, f"{walk.where}: {_path((*amounts_walk.parts, resource))}"
                    ),
                }
                changes.append((adjust, name))
    for key, probe in _PROBES:
        if key not in container:
            continue
        probe_walk = container_walk.at(key)
        fields = probe_walk.mapping(container[key])
        handlers = _PROBE_HANDLERS if style == "apply" else ()
        if style != "apply":
            for handler in _PROBE_HANDLERS:
                if handler in fields:
                    _refuse(
                        f"{walk.where}: a patch merges into {_path((*probe_walk.parts, handler))}"
                        ", while opsgate replaces it whole: give the whole probe with kubectl "
                        "apply, or patch only its numbers"
                    )
        probe_walk.only(fields, (*_PROBE_NUMBERS, *handlers))
        probe_changes: dict[str, Any] = {}
        for field_name, field_value in fields.items():
            if field_name in _PROBE_NUMBERS:
                probe_changes[field_name] = _whole(field_value, probe_walk, field_name)
            else:
                probe_walk.at(field_name).mapping(field_value)
                probe_changes[field_name] = _plain_json(field_value, probe_walk.at(field_name))
        if probe_changes:
            update = {"type": "update_health_checks", "probe": probe, "changes": probe_changes}
            changes.append((update, name))
    return changes


def _configmap_changes(document: Any, where: str, removals: bool) -> dict[str, Any]:
    """The keys a ConfigMap patch (``removals``: null removes a key) sets."""
    walk = _Walk(where, "the patch also sets {path}, which no catalog operation covers")
    top = walk.mapping(document)
    walk.only(top, ("data",))
    if "data" not in top:
        _refuse(f"{where}: sets no data key")
    return _data_changes(top["data"], walk.at("data"), removals)


def _data_changes(value: Any, walk: _Walk, removals: bool) -> dict[str, Any]:
    """The keys of a ConfigMap's ``data`` (text values; with ``removals``, null too)."""
    where = walk.where
    data = walk.mapping(value)
    changes: dict[str, Any] = {}
    for key, text in data.items():
        _config_key(key, where)
        if text is None and removals:
            changes[key] = None
        elif isinstance(text, str):
            changes[key] = text
        else:
            _refuse(
                f"{where}: {_path(('data', key))} is not a string (quote it: configmap values "
                "are text)"
            )
    if not changes:
        _refuse(f"{where}: sets no data key")
    return changes


def _document_proposals(
    document: dict[str, Any],
    label: str,
    namespace: str | None,
    governed: Sequence[Governed],
    command: _Command,
) -> list[Proposal]:
    """The operations one object of a manifest means, on the service it belongs to."""
    where = f"kubectl {command.name}: {label}"
    kind_name = document.get("kind")
    kind = _BY_KIND.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None or (
        kind.kind not in _PROTECTED_TYPES and kind.kind not in {"Deployment", "ConfigMap"}
    ):
        shown = _q(kind_name) if isinstance(kind_name, str) else "no kind"
        _refuse(
            f"{where}: kind {shown} is not mapped to an opsgate operation "
            "(the gate applies ConfigMaps and Deployments; Secrets, RBAC and NetworkPolicies "
            "are proposed for Rego to judge)"
        )
    expected = f"{kind.group}/{kind.version}" if kind.group else kind.version
    if document.get("apiVersion") != expected:
        version = document.get("apiVersion")
        shown = _q(version) if isinstance(version, str) else "none"
        _refuse(f"{where}: {kind.kind} has apiVersion {shown}, not {expected}")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        _refuse(f"{where}: {kind.kind} has no metadata")
    name = metadata.get("name")
    if not isinstance(name, str):
        _refuse(f"{where}: {kind.kind} has no metadata.name")
    _checked_name(name, kind.label)
    own = metadata.get("namespace")
    if own is not None:
        if not isinstance(own, str) or not _NAMESPACE.fullmatch(own):
            _refuse(f"{where}: metadata.namespace is not a namespace name")
        if namespace is not None and own != namespace:
            _refuse(f"{where}: {kind.label} {name} is in namespace {own}, but -n says {namespace}")
    target = _Target(kind, name)
    service = _service(target, own or namespace, governed)
    if kind.kind in _PROTECTED_TYPES:
        # never read further: it is a Secret, RBAC or a NetworkPolicy, which Rego forbids
        return [Proposal(service, {"type": _PROTECTED_TYPES[kind.kind], "name": name})]
    identity = _Walk(where, "apply would also set {path}, which no catalog operation covers")
    body = "data" if kind.kind == "ConfigMap" else "spec"
    identity.only(document, ("apiVersion", "kind", "metadata", body))
    identity.at("metadata").only(metadata, ("name", "namespace"))
    if body not in document:
        _refuse(f"{where}: {kind.kind} {name} sets nothing a catalog operation covers")
    if kind.kind == "ConfigMap":
        changes = _data_changes(document["data"], identity.at("data"), removals=False)
        return [Proposal(service, {"type": "update_configmap", "name": name, "changes": changes})]
    changes_made = _deployment_changes(document["spec"], "apply", where)
    if not changes_made:
        _refuse(f"{where}: Deployment {name} sets nothing a catalog operation covers")
    return [
        Proposal(service, operation, container=container) for operation, container in changes_made
    ]
