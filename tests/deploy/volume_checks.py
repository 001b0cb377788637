"""Checks of a container's volumes and the files its flags name: ConfigMaps and claims exist,
config files lie in mounted volumes (and in the ConfigMap's keys), and the model and batching
configs make sense.
"""
import re

import binaries


def check_volumes(m, ns, pod, c, problems):
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = []
    for mount in c.spec.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name"))
        if volume is None:
            problems.append("%s: volumeMount %r names no volume of the pod" % (c.where,
                                                                                mount.get("name")))
            continue
        mounts.append((mount, volume))
    for volume in volumes.values():
        if "configMap" in volume:
            name = volume["configMap"].get("name")
            cm = m.get("ConfigMap", ns, name)
            if cm is None:
                problems.append("%s: volume %r uses ConfigMap %r, which does not exist"
                                % (c.where, volume["name"], name))
            else:
                for item in volume["configMap"].get("items") or []:
                    if item.get("key") not in (cm.get("data") or {}):
                        problems.append("%s: volume %r uses key %r, which ConfigMap %s does not "
                                        "have" % (c.where, volume["name"], item.get("key"), name))
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"].get("claimName")
            if m.get("PersistentVolumeClaim", ns, claim) is None:
                problems.append("%s: volume %r uses PersistentVolumeClaim %r, which does not "
                                "exist" % (c.where, volume["name"], claim))
    for flag in binaries.PATH_FLAGS:
        value = c.flags.get(flag)
        if value:
            file_in_volume(m, ns, c, mounts, "--%s=%s" % (flag, value), value, problems)
    if c.binary_name == "inferd-server" and c.flags.get("model_config_file"):
        text = file_in_volume(m, ns, c, mounts, None, c.flags["model_config_file"], [])
        if text is not None:
            check_model_config(c, mounts, text, problems)
    if c.binary_name == "inferd-server" and c.flags.get("batching_parameters_file"):
        text = file_in_volume(m, ns, c, mounts, None, c.flags["batching_parameters_file"], [])
        if text is not None:
            check_batching_config(c, text, problems)


def mount_for(mounts, path):
    """The (mount, volume, path inside the volume) whose mountPath holds `path`, or None."""
    best = None
    for mount, volume in mounts:
        root = mount.get("mountPath", "").rstrip("/")
        if path == root or path.startswith(root + "/"):
            if best is None or len(root) > len(best[0].get("mountPath", "").rstrip("/")):
                best = (mount, volume, path[len(root):].lstrip("/"))
    return best


def file_in_volume(m, ns, c, mounts, what, path, problems):
    """The content of a file a flag names, when it comes from a ConfigMap (else None); reports a
    path outside every mounted volume, or a ConfigMap key that does not exist."""
    found = mount_for(mounts, path)
    if found is None:
        problems.append("%s: %s is not under a mounted volume (mounts: %s)"
                        % (c.where, what, ", ".join(mt.get("mountPath") for mt, _ in mounts)))
        return None
    mount, volume, inner = found
    if "configMap" not in volume:
        return None
    cm = m.get("ConfigMap", ns, volume["configMap"].get("name"))
    if cm is None:
        return None
    key = mount.get("subPath") or inner
    items = volume["configMap"].get("items")
    if items:
        key = next((i.get("key") for i in items if i.get("path") == key), None)
    data = cm.get("data") or {}
    if key not in data:
        problems.append("%s: %s names %r in ConfigMap %s, which has only the keys %s"
                        % (c.where, what, key, cm["metadata"]["name"], ", ".join(sorted(data))))
        return None
    return data[key]


def check_model_config(c, mounts, text, problems):
    if "model_config_list" not in text:
        problems.append("%s: the model config file has no model_config_list" % c.where)
    names = re.findall(r'\bname:\s*["\']([^"\']*)["\']', text)
    base_paths = re.findall(r'\bbase_path:\s*["\']([^"\']*)["\']', text)
    platforms = re.findall(r'\bmodel_platform:\s*["\']([^"\']*)["\']', text)
    if not names or len(names) != len(base_paths):
        problems.append("%s: the model config must give every model a name and a base_path "
                        "(names %s, base paths %s)" % (c.where, names, base_paths))
    if len(set(names)) != len(names):
        problems.append("%s: the model config names a model twice: %s" % (c.where, names))
    for p in platforms:
        if p not in ("", "onnx", "tensorflow"):
            problems.append("%s: model_platform %r is not one inferd serves (onnx)" % (c.where, p))
    for name, base in zip(names, base_paths):
        found = mount_for(mounts, base)
        if found is None or "persistentVolumeClaim" not in found[1]:
            problems.append("%s: model %r has base_path %r, which is not on the mounted model "
                            "volume" % (c.where, name, base))
        elif not found[0].get("readOnly"):
            problems.append("%s: the model volume is not mounted readOnly" % c.where)


def check_batching_config(c, text, problems):
    known = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
             "num_batch_threads", "allowed_batch_sizes", "thread_pool_name",
             "pad_variable_length_inputs", "enable_large_batch_splitting",
             "max_execution_batch_size"}
    fields = re.findall(r"^\s*(\w+)\s*[:{]", text, re.MULTILINE)
    for f in fields:
        if f not in known and f != "value":
            problems.append("%s: batching config field %r is not a BatchingParameters field"
                            % (c.where, f))
    values = {k: int(v) for k, v in re.findall(r"(\w+)\s*\{\s*value:\s*(-?\d+)\s*\}", text)}
    sizes = [int(v) for v in re.findall(r"allowed_batch_sizes:\s*(\d+)", text)]
    if values.get("max_batch_size", 1000) <= 0:
        problems.append("%s: batching max_batch_size must be positive" % c.where)
    if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != values.get("max_batch_size", 1000)):
        problems.append("%s: allowed_batch_sizes %s must increase and end at max_batch_size %s"
                        % (c.where, sizes, values.get("max_batch_size", 1000)))
