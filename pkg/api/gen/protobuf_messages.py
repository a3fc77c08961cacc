#!/usr/bin/env python3
"""Generate pkg/api/src/protobuf/messages.rs: the protobuf messages cairn-api can decode.

The table joins two sources, neither of which is copied:
  * k8s-pb (the crate's prost-generated structs): each message's fields with their numbers, wire
    types, labels (optional, repeated, map) and the message types they refer to;
  * the Go API types (k8s.io/api and k8s.io/apimachinery, the same release as k8s-pb): each
    field's JSON name and whether Go leaves it out of JSON when it holds its zero value (a
    non-pointer scalar tagged `omitempty`). Go clients always encode such fields, so a protobuf
    body from kubectl carries `uid: ""`, `generation: 0`, `status.phase: ""`; the decoder drops
    them as Go's JSON encoding would.

Usage (from the repository root; the Go sources are the v0.35.0 tags of github.com/kubernetes/api
and github.com/kubernetes/apimachinery, e.g. unpacked with `git archive v0.35.0 | tar -x -C DIR`):
    python3 pkg/api/gen/protobuf_messages.py \
        --k8s-pb ~/.cargo/registry/src/*/k8s-pb-0.9.0 \
        --k8s-api /tmp/gosrc/api --apimachinery /tmp/gosrc/apimachinery \
        > pkg/api/src/protobuf/messages.rs
"""

import argparse
import os
import re
import sys

# The kinds a protobuf body may carry: (apiVersion, kind, k8s-pb module, struct).
ROOTS = [
    ("v1", k, "api/core/v1", k)
    for k in [
        "Namespace", "Node", "Pod", "Service", "Endpoints", "ConfigMap", "Secret", "ServiceAccount",
        "Event", "Binding", "ResourceQuota", "LimitRange", "PersistentVolume",
        "PersistentVolumeClaim", "ReplicationController", "PodTemplate",
    ]
] + [
    ("apps/v1", k, "api/apps/v1", k)
    for k in ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ControllerRevision"]
] + [
    ("batch/v1", "Job", "api/batch/v1", "Job"),
    ("batch/v1", "CronJob", "api/batch/v1", "CronJob"),
    ("autoscaling/v1", "Scale", "api/autoscaling/v1", "Scale"),
    ("autoscaling/v1", "HorizontalPodAutoscaler", "api/autoscaling/v1", "HorizontalPodAutoscaler"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "api/autoscaling/v2", "HorizontalPodAutoscaler"),
] + [
    ("authorization.k8s.io/v1", k, "api/authorization/v1", k)
    for k in ["SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview",
              "LocalSubjectAccessReview"]
] + [
    ("authentication.k8s.io/v1", k, "api/authentication/v1", k)
    for k in ["TokenRequest", "TokenReview", "SelfSubjectReview"]
] + [
    ("policy/v1", "Eviction", "api/policy/v1", "Eviction"),
    ("policy/v1", "PodDisruptionBudget", "api/policy/v1", "PodDisruptionBudget"),
    ("coordination.k8s.io/v1", "Lease", "api/coordination/v1", "Lease"),
    ("discovery.k8s.io/v1", "EndpointSlice", "api/discovery/v1", "EndpointSlice"),
    ("events.k8s.io/v1", "Event", "api/events/v1", "Event"),
] + [
    ("rbac.authorization.k8s.io/v1", k, "api/rbac/v1", k)
    for k in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]
] + [
    ("networking.k8s.io/v1", k, "api/networking/v1", k)
    for k in ["Ingress", "IngressClass", "NetworkPolicy"]
] + [
    ("scheduling.k8s.io/v1", "PriorityClass", "api/scheduling/v1", "PriorityClass"),
    ("storage.k8s.io/v1", "StorageClass", "api/storage/v1", "StorageClass"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest", "api/certificates/v1",
     "CertificateSigningRequest"),
    ("meta.k8s.io/v1", "DeleteOptions", "apimachinery/pkg/apis/meta/v1", "DeleteOptions"),
]

META = "apimachinery/pkg/apis/meta/v1"
# Messages with a JSON form of their own (see transcode.rs), by k8s-pb module and struct.
SPECIAL = {
    ("apimachinery/pkg/api/resource", "Quantity"): "Quantity",
    ("apimachinery/pkg/util/intstr", "IntOrString"): "IntOrString",
    (META, "Time"): "Time",
    (META, "MicroTime"): "MicroTime",
    (META, "FieldsV1"): "RawJson",
    ("apimachinery/pkg/runtime", "RawExtension"): "RawJson",
    (META, "Verbs"): "StringList",
}
for _group in ["authentication", "authorization", "certificates"]:
    SPECIAL[(f"api/{_group}/v1", "ExtraValue")] = "StringList"
# Messages with a JSON form of their own that the decoder does not know yet; a root that reaches
# one fails the generation.
UNSUPPORTED = {"Duration", "JsonSchemaPropsOrArray", "JsonSchemaPropsOrBool", "JsonSchemaPropsOrStringArray"}

def parse_k8s_pb(root):
    """{(module, struct): [(rust_name, kind, label, tag, map_value, type_path)]}"""
    out = {}
    src = os.path.join(root, "src")
    for d, _, files in os.walk(src):
        if "mod.rs" not in files:
            continue
        module = os.path.relpath(d, src).replace(os.sep, "/")
        text = open(os.path.join(d, "mod.rs")).read()
        for m in re.finditer(r"pub struct (\w+) \{\n(.*?)\n\}", text, re.S):
            fields = []
            body = m.group(2)
            for chunk in body.split("#[prost(")[1:]:
                attrs, rest = chunk.split(")]", 1)
                name, rtype = re.match(r"\s*pub (?:r#)?(\w+):\s*(.*?),?\s*(?:///.*)?$", rest, re.S).groups()
                rtype = re.sub(r"\s+", "", rtype).rstrip(",")
                tag = int(re.search(r'tag = "(\d+)"', attrs).group(1))
                if attrs.startswith("btree_map"):
                    key, value = re.search(r'btree_map = "(\w+), (\w+)"', attrs).groups()
                    assert key == "string", (module, m.group(1), name)
                    kind, label = value, "map"
                else:
                    parts = [p.strip() for p in attrs.split(",")]
                    kind = parts[0].split(" ")[0]
                    label = "repeated" if "repeated" in parts else "optional"
                path = None
                if kind == "message":
                    inner = re.findall(r"((?:super::)*(?:\w+::)*[A-Z]\w*)(?:,)?>*$", rtype)[0]
                    path = resolve(module, inner)
                fields.append((name, kind, label, tag, path))
            out[(module, m.group(1))] = fields
    return out


def resolve(module, path):
    parts = path.split("::")
    if parts[-1] == "Box":
        raise ValueError(path)
    mod = module.split("/")
    while parts[0] == "super":
        mod.pop()
        parts.pop(0)
    return ("/".join(mod + parts[:-1]), parts[-1])


# A named field (`Name Type `tags``) or an embedded one (`Type `tags``).
GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([^\s`]+)\s+`([^`]*)`")


def parse_go(dirs):
    """{(module, lower struct name): (go struct name, {tag: (json, omit_zero)})}

    An embedded struct tagged `json:",inline"` has the JSON name "": its fields are the parent's.
    """
    out = {}
    for module, d in dirs:
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.endswith(".go") or f.endswith("_test.go") or f.startswith("zz_") or "generated" in f:
                continue
            text = open(os.path.join(d, f)).read()
            for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", text, re.S | re.M):
                fields = {}
                for line in m.group(2).splitlines():
                    g = GO_FIELD.match(line)
                    if not g:
                        continue
                    _, gotype, tags = g.groups()
                    pb = re.search(r'protobuf:"(\w+),(\d+),', tags)
                    js = re.search(r'json:"([^"]*)"', tags)
                    if not pb or not js:
                        continue
                    jname, *opts = js.group(1).split(",")
                    scalar = pb.group(1) in ("bytes", "varint", "fixed64", "fixed32") and not (
                        gotype.startswith("*") or gotype.startswith("[]") or gotype.startswith("map[")
                    )
                    omit = ("omitempty" in opts or "omitzero" in opts) and scalar
                    fields[int(pb.group(2))] = (jname, omit)
                out[(module, m.group(1).lower())] = (m.group(1), fields)
    return out


def lower_camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def const_name(module, struct):
    return "M_" + re.sub(r"[^A-Z0-9]", "_", (module.replace("/", "_") + "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", struct)).upper())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s-pb", required=True)
    ap.add_argument("--k8s-api", required=True)
    ap.add_argument("--apimachinery", required=True)
    args = ap.parse_args()
    pb = parse_k8s_pb(args.k8s_pb)
    dirs = []
    for module, _ in pb:
        if module.startswith("api/"):
            dirs.append((module, os.path.join(args.k8s_api, module[len("api/"):])))
        elif module.startswith("apimachinery/"):
            dirs.append((module, os.path.join(args.apimachinery, module[len("apimachinery/"):])))
    go = parse_go(sorted(set(dirs)))

    # The closure of the roots.
    order, seen, todo = [], set(), [(m, s) for _, _, m, s in ROOTS]
    while todo:
        key = todo.pop()
        if key in seen or key in SPECIAL:
            continue
        if key[1] in UNSUPPORTED:
            sys.exit(f"unsupported message {key}")
        seen.add(key)
        order.append(key)
        for *_, path in pb[key]:
            if path:
                todo.append(path)
    order.sort()

    notes = []
    lines = []
    for module, struct in order:
        gostruct, gofields = go.get((module, struct.lower()), (struct, {}))
        if (module, struct.lower()) not in go:
            notes.append(f"{module}.{struct}: no Go type found; JSON names from the field names")
        proto = "k8s.io." + module.replace("/", ".") + "." + gostruct
        lines.append(f"static {const_name(module, struct)}: Message = Message {{")
        lines.append(f'    name: "{proto}",')
        lines.append("    fields: &[")
        for name, kind, label, tag, path in sorted(pb[(module, struct)], key=lambda f: f[3]):
            if tag in gofields:
                json, omit = gofields[tag]
                # Only scalars (and IntOrString, which Go's defaulting treats alike) are left out
                # when zero; Go's omitempty leaves structs in.
                omit = omit and (path is None or SPECIAL.get(path) == "IntOrString")
            else:
                json, omit = lower_camel(name), False
                if (module, struct.lower()) in go:
                    notes.append(f"{proto}.{name} ({tag}): not in the Go type; JSON name {json}")
            if json == "":
                assert path is not None and label == "optional", (proto, name)
                label = "inline"
            if kind == "double":
                sys.exit(f"{proto}.{name}: double fields need Ty::Double in schema.rs first")
            if path is None:
                ty = {"string": "Ty::String", "bytes": "Ty::Bytes", "bool": "Ty::Bool",
                      "int32": "Ty::Int32", "int64": "Ty::Int64"}[kind]
            elif path in SPECIAL:
                ty = f"Ty::{SPECIAL[path]}"
            else:
                ty = f"Ty::Message(&{const_name(*path)})"
            shape = {"optional": "Shape::Single", "repeated": "Shape::Repeated", "map": "Shape::Map",
                     "inline": "Shape::Inline"}[label]
            lines.append(
                f'        Field {{ tag: {tag}, json: "{json}", ty: {ty}, shape: {shape}, omit_zero: {"true" if omit else "false"} }},'
            )
        lines.append("    ],")
        lines.append("};")

    print("// @generated by pkg/api/gen/protobuf_messages.py from k8s-pb 0.9.0 (field numbers and")
    print("// types) and the Go API types of k8s.io/api and k8s.io/apimachinery v0.35.0 (JSON names,")
    print("// zero-value omission). Do not edit; regenerate.")
    for n in notes:
        print(f"// note: {n}")
    print()
    print("use super::schema::{Field, Message, Shape, Ty};")
    print()
    print("/// The kinds a protobuf body may carry: apiVersion, kind and the message of the object.")
    print("pub(super) static KINDS: &[(&str, &str, &Message)] = &[")
    for av, kind, module, struct in ROOTS:
        print(f'    ("{av}", "{kind}", &{const_name(module, struct)}),')
    print("];")
    print()
    print("\n".join(lines))


main()
