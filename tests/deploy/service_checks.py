"""Checks of the objects around the Deployments: Services, PodDisruptionBudgets,
HorizontalPodAutoscalers, PersistentVolumeClaims, and the image the containers run.
"""
from manifests import Manifests, deployments_selected, ident, quantity, subset


def check_service(m, s, containers, problems):
    where = ident(s)
    ns = s["metadata"].get("namespace") or ""
    selector = (s.get("spec") or {}).get("selector") or {}
    selected = deployments_selected(m, ns, selector)
    if len(selected) != 1:
        problems.append("%s: selector %s matches the pods of %d Deployments (%s); it should "
                        "select exactly one (pod labels: %s)"
                        % (where, selector, len(selected),
                           ", ".join(d["metadata"]["name"] for d in selected) or "none",
                           "; ".join("%s %s" % (d["metadata"]["name"],
                                                d["spec"]["template"]["metadata"].get("labels"))
                                     for d in m.of("Deployment"))))
        return
    pods = containers.get(selected[0]["metadata"]["name"], [])
    for port in s["spec"].get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if not any(c.resolve_port(target) is not None for c in pods):
            problems.append("%s: port %r targets %r, which is not a containerPort %s of "
                            "Deployment %s" % (where, port.get("name"), target,
                                               "name" if isinstance(target, str) else "number",
                                               selected[0]["metadata"]["name"]))


def check_pdb(m, pdb, problems):
    ns = pdb["metadata"].get("namespace") or ""
    selector = (pdb["spec"].get("selector") or {}).get("matchLabels") or {}
    selected = deployments_selected(m, ns, selector)
    if len(selected) != 1:
        problems.append("%s: selector %s matches %d Deployments; it should match one"
                        % (ident(pdb), selector, len(selected)))
        return
    replicas = selected[0]["spec"].get("replicas", 1)
    min_available = pdb["spec"].get("minAvailable")
    if isinstance(min_available, int) and not 0 < min_available < replicas:
        problems.append("%s: minAvailable %d with %d replicas: node drains could never evict a "
                        "pod" % (ident(pdb), min_available, replicas))


def check_hpa(m, hpa, problems):
    where = ident(hpa)
    ns = hpa["metadata"].get("namespace") or ""
    ref = hpa["spec"].get("scaleTargetRef") or {}
    target = m.get(ref.get("kind"), ns, ref.get("name"))
    if hpa.get("apiVersion") != "autoscaling/v2":
        problems.append("%s: use autoscaling/v2 (got %s)" % (where, hpa.get("apiVersion")))
    if target is None:
        problems.append("%s: scaleTargetRef %s/%s does not exist" % (where, ref.get("kind"),
                                                                    ref.get("name")))
        return
    low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"].get("maxReplicas")
    if not low <= high:
        problems.append("%s: minReplicas %s > maxReplicas %s" % (where, low, high))
    for pdb in m.of("PodDisruptionBudget"):
        selector = (pdb["spec"].get("selector") or {}).get("matchLabels") or {}
        if subset(selector, target["spec"]["template"]["metadata"].get("labels") or {}):
            min_available = pdb["spec"].get("minAvailable")
            if isinstance(min_available, int) and not min_available < low:
                problems.append("%s: minReplicas %d does not exceed %s's minAvailable %d"
                                % (where, low, ident(pdb), min_available))
    for metric in hpa["spec"].get("metrics") or []:
        name = (metric.get("resource") or {}).get("name")
        if metric.get("type") == "Resource":
            for c in target["spec"]["template"]["spec"].get("containers") or []:
                if name not in ((c.get("resources") or {}).get("requests") or {}):
                    problems.append("%s: scales on %s utilisation, but container %s has no %s "
                                    "request" % (where, name, c.get("name"), name))


def check_pvc(m, pvc, problems):
    where = ident(pvc)
    spec = pvc["spec"]
    modes = set(spec.get("accessModes") or [])
    if not modes & {"ReadOnlyMany", "ReadWriteMany"}:
        problems.append("%s: access modes %s: replicas on several nodes need ReadOnlyMany"
                        % (where, sorted(modes)))
    volume_name = spec.get("volumeName")
    if not volume_name:
        return
    pv = m.get("PersistentVolume", "", volume_name)
    if pv is None:
        problems.append("%s: volumeName %r names no PersistentVolume" % (where, volume_name))
        return
    if not modes <= set(pv["spec"].get("accessModes") or []):
        problems.append("%s: PersistentVolume %s does not offer access modes %s"
                        % (where, volume_name, sorted(modes)))
    if spec.get("storageClassName") != pv["spec"].get("storageClassName", ""):
        problems.append("%s: storageClassName %r differs from PersistentVolume %s's %r: it "
                        "would not bind" % (where, spec.get("storageClassName"), volume_name,
                                            pv["spec"].get("storageClassName", "")))
    want = quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
    have = quantity((pv["spec"].get("capacity") or {}).get("storage"))
    if want is None or have is None or have < want:
        problems.append("%s: PersistentVolume %s's capacity is smaller than the claim's request"
                        % (where, volume_name))


def check_image(objects, image, problems):
    """Containers run binaries the image has, on ports it exposes."""
    runtime = image.runtime
    files = image.installed_files(runtime)
    exposed = image.exposed_ports(runtime)
    for d in Manifests(objects).of("Deployment"):
        for c in d["spec"]["template"]["spec"].get("containers") or []:
            command = c.get("command") or []
            if command and command[0] not in files:
                problems.append("%s container %s: command %s is not in the image (%s installs "
                                "%s)" % (ident(d), c.get("name"), command[0], image.path,
                                         ", ".join(sorted(files))))
            for p in c.get("ports") or []:
                if p.get("containerPort") not in exposed:
                    problems.append("%s container %s: port %s is not EXPOSEd by the image"
                                    % (ident(d), c.get("name"), p.get("containerPort")))
