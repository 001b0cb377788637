"""A small kustomize renderer: the subset of kustomize that deploy/k8s uses, so the manifests can
be rendered and checked on machines without kubectl.

Supported kustomization fields: resources (files and directories holding a kustomization),
namespace, labels (pairs with includeTemplates; includeSelectors must stay false), patches (path
only: strategic merge patches) and patchesStrategicMerge, images. Anything else is an error
rather than a silent difference from kustomize.

Strategic merge follows Kubernetes' rules for the fields that occur in these manifests: maps
merge key by key (a null value deletes the key), lists of objects merge by their patch merge key
(containers, env, volumes by `name`; volumeMounts by `mountPath`; container ports by
`containerPort`, Service ports by `port`; topologySpreadConstraints by `topologyKey`), every
other list is replaced whole. `$patch: delete` removes a list item or map; `$patch: replace`
replaces a map.

  render(path) -> list of objects (dicts)
"""
import copy
import os

import yaml

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "patches",
                    "patchesStrategicMerge", "images"}
CLUSTER_SCOPED_KINDS = {
    "Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
    "CustomResourceDefinition", "PriorityClass", "IngressClass", "RuntimeClass", "Node",
    "APIService", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}
WORKLOAD_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"}

# Patch merge keys of Kubernetes' built-in types, by list field name. Lists of objects not named
# here are replaced by a patch, as in Kubernetes (tolerations, args, command, ...).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
}


class RenderError(Exception):
    pass


def load_yaml_documents(path):
    with open(path) as f:
        try:
            return [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            raise RenderError("%s: not valid YAML: %s" % (path, e))


def find_kustomization(directory):
    for name in KUSTOMIZATION_NAMES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise RenderError("%s: no kustomization.yaml" % directory)


def object_id(obj):
    """(kind, namespace, name) of an object; namespace is '' for none."""
    meta = obj.get("metadata") or {}
    return (obj.get("kind", ""), meta.get("namespace", "") or "", meta.get("name", ""))


def render(path):
    """Renders the kustomization in directory `path`; returns its objects in resource order."""
    directory = os.path.abspath(path)
    kpath = find_kustomization(directory)
    docs = load_yaml_documents(kpath)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise RenderError("%s: expected one YAML mapping" % kpath)
    k = docs[0]
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise RenderError("%s: fields this renderer does not implement: %s"
                          % (kpath, ", ".join(sorted(unknown))))

    objects = []
    for entry in k.get("resources") or []:
        target = os.path.normpath(os.path.join(directory, entry))
        if os.path.isdir(target):
            objects += render(target)
        elif os.path.isfile(target):
            objects += [d for d in load_yaml_documents(target)]
        else:
            raise RenderError("%s: resource %r does not exist" % (kpath, entry))
    seen = set()
    for obj in objects:
        if not isinstance(obj, dict) or "kind" not in obj or "metadata" not in obj:
            raise RenderError("%s: a resource is not a Kubernetes object: %r" % (kpath, obj))
        oid = object_id(obj)
        if oid in seen:
            raise RenderError("%s: %s/%s is defined twice" % (kpath, oid[0], oid[2]))
        seen.add(oid)

    patch_paths = list(k.get("patchesStrategicMerge") or [])
    for p in k.get("patches") or []:
        if not isinstance(p, dict) or set(p) != {"path"}:
            raise RenderError("%s: only `patches: - path: FILE` (strategic merge) is supported, "
                              "got %r" % (kpath, p))
        patch_paths.append(p["path"])
    for rel in patch_paths:
        for patch in load_yaml_documents(os.path.join(directory, rel)):
            apply_patch(objects, patch, "%s (%s)" % (rel, kpath))

    if k.get("namespace"):
        set_namespace(objects, k["namespace"])
    for spec in k.get("labels") or []:
        add_labels(objects, spec, kpath)
    for image in k.get("images") or []:
        set_images(objects, image)
    return objects


def apply_patch(objects, patch, where):
    kind = patch.get("kind")
    meta = patch.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    matches = [o for o in objects if o.get("kind") == kind and o["metadata"].get("name") == name
               and (namespace is None or o["metadata"].get("namespace") == namespace)]
    if len(matches) != 1:
        raise RenderError("%s: patch for %s/%s matches %d objects" % (where, kind, name,
                                                                       len(matches)))
    target = matches[0]
    merged = merge(target, patch)
    target.clear()
    target.update(merged)


def merge(original, patch, field=None):
    """Strategic merge of `patch` into `original` (neither is modified)."""
    if isinstance(patch, dict) and isinstance(original, dict):
        directive = patch.get("$patch")
        if directive == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        out = copy.deepcopy(original)
        for key, value in patch.items():
            if key == "$patch":
                continue
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, key)
            else:
                out[key] = strip_directives(value)
        return out
    if isinstance(patch, list) and isinstance(original, list):
        key = merge_key(field, patch + original)
        if key is None:
            return strip_directives(patch)
        out = copy.deepcopy(original)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise RenderError("list %r: patch item without merge key %r: %r"
                                  % (field, key, item))
            index = next((i for i, o in enumerate(out) if o.get(key) == item[key]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del out[index]
            elif index is None:
                out.append(strip_directives(item))
            else:
                out[index] = merge(out[index], item, field)
        return out
    return strip_directives(patch)


def merge_key(field, items):
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports":  # ContainerPort merges by containerPort, ServicePort by port
        return "containerPort" if all("containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def strip_directives(value):
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if k != "$patch"}
    if isinstance(value, list):
        return [strip_directives(v) for v in value if not (isinstance(v, dict)
                                                           and v.get("$patch") == "delete")]
    return copy.deepcopy(value)


def set_namespace(objects, namespace):
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            continue
        obj["metadata"]["namespace"] = namespace
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            # kustomize's default (setRoleBindingSubjects: defaultOnly): only subjects that are
            # the `default` ServiceAccount follow the namespace.
            for s in obj.get("subjects") or []:
                if s.get("kind") == "ServiceAccount" and s.get("name") == "default":
                    s["namespace"] = namespace


def pod_templates(obj):
    spec = obj.get("spec") or {}
    if obj["kind"] in WORKLOAD_KINDS and "template" in spec:
        yield spec["template"]
    if obj["kind"] == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        if template is not None:
            yield template


def add_labels(objects, spec, where):
    unknown = set(spec) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown or spec.get("includeSelectors"):
        raise RenderError("%s: labels: only pairs and includeTemplates are supported "
                          "(includeSelectors must be false)" % where)
    pairs = spec.get("pairs") or {}
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        if spec.get("includeTemplates"):
            for template in pod_templates(obj):
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def split_image(image):
    """'repo/name:tag@sha256:...' -> (name, tag, digest); tag and digest may be None."""
    name, digest = (image.split("@", 1) + [None])[:2]
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest


def set_images(objects, image):
    for obj in objects:
        for template in pod_templates(obj):
            pod = template.get("spec") or {}
            for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                name, tag, digest = split_image(c.get("image", ""))
                if name != image.get("name"):
                    continue
                name = image.get("newName", name)
                if "digest" in image:
                    c["image"] = "%s@%s" % (name, image["digest"])
                elif "newTag" in image:
                    c["image"] = "%s:%s" % (name, image["newTag"])
                else:
                    c["image"] = name + (":" + tag if tag else "") + ("@" + digest if digest
                                                                      else "")
